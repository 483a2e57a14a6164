"""JPEG (ISO 10918-1, processes 1-14) and JPEG-LS (ISO 14495-1) streams: keep only what decodes.

A JPEG stream is a list of marker segments with the entropy-coded data of each scan after its
SOS segment. Decoding needs the frame, table, restart and scan segments; application segments
(APPn) and comments (COM) are free for any writer to fill, and cameras and viewers do: EXIF
(APP1) holds owners, dates and places, APP13 Photoshop captions, APP2 ICC profiles with device
names, JFIF extensions thumbnails of the very image. Everything after EOI is read by nobody.

Kept, because a decoder reads them: SOFn, DHT, DAC, DQT, DRI, DNL, DHP, EXP, SOS and the scans,
the JPEG-LS frame (SOF55) and LSE segments; and, rewritten to hold nothing else, the Adobe APP14
segment's colour-transform flag (libjpeg decodes three components as RGB or YCbCr by it: the
tests plant one into pydicom's ``SC_jpeg_no_color_transform.dcm`` and see Pillow's pixels
change without it), the JPEG-LS colour transform of an APP8 ``mrfx`` segment, and a JFIF APP0
as version 1.02 without density or thumbnail (libjpeg assumes YCbCr when it sees JFIF and
guesses from the component ids otherwise, so dropping it could change an image whose ids read
"RGB"). Every other marker, including the
reserved ones, makes the stream unrecognised.

Entropy-coded data is skipped with one regular-expression search per scan (C speed): in JPEG a
0xFF data byte is followed by a stuffed 0x00 and restart markers FFD0-FFD7 sit inside scans; in
JPEG-LS a 0xFF data byte is followed by a byte below 0x80 and restart markers are passed over.
"""

from __future__ import annotations

import re
from typing import Final

from dcmwatch.pixels.errors import PixelStreamError
from dcmwatch.pixels.streams.report import Tally

__all__ = ["clean_jpeg"]

_SOI: Final = b"\xff\xd8"
_EOI: Final = 0xD9
_SOS: Final = 0xDA
_SOF55: Final = 0xF7
#: SOF0-SOF15 (DHT C4, JPG C8 and DAC CC share the range and are not frames).
_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Segments a decoder reads: SOFn, DHT, DAC, DQT, DNL, DRI, DHP, EXP, SOF55, LSE.
_KEEP: Final = _SOF | {0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, _SOF55, 0xF8}
_APP0, _APP8, _APP14, _COM = 0xE0, 0xE8, 0xEE, 0xFE
#: The next marker after entropy-coded data (not stuffing, not a restart marker).
_NEXT_JPEG: Final = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_NEXT_LS: Final = re.compile(rb"\xff[\x80-\xff]")
_FILL: Final = re.compile(rb"\xff+")


def clean_jpeg(buf: bytes, start: int, tally: Tally, *, jpeg_ls: bool) -> tuple[bytes, int]:
    """The stream at ``buf[start:]`` without metadata, and the offset just after its EOI.

    `jpeg_ls` says which family the transfer syntax declares; a frame header of the other
    family makes the stream unrecognised.
    """
    if buf[start : start + 2] != _SOI:
        raise PixelStreamError("a frame does not start with a JPEG SOI marker")
    walk = _Walk(buf, tally, jpeg_ls)
    pos = start + 2
    size = len(buf)
    while True:
        if pos + 2 > size or buf[pos] != 0xFF:
            raise PixelStreamError("a JPEG frame ends without EOI or has bytes outside segments")
        if buf[pos + 1] == 0xFF:  # fill bytes before a marker carry nothing and are dropped
            pos = _FILL.match(buf, pos).end() - 1  # type: ignore[union-attr]
            if pos + 2 > size:
                raise PixelStreamError("a JPEG frame ends in fill bytes")
        marker = buf[pos + 1]
        pos += 2
        if marker == _EOI:
            walk.out.append(b"\xff\xd9")
            return b"".join(walk.out), pos
        if 0xD0 <= marker <= 0xD7:
            raise PixelStreamError("a JPEG restart marker outside a scan")
        if pos + 2 > size:
            raise PixelStreamError("a JPEG segment runs past the end of the data")
        end = pos + ((buf[pos] << 8) | buf[pos + 1])
        if end < pos + 2 or end > size:
            raise PixelStreamError("a JPEG segment runs past the end of the data")
        pos = walk.segment(marker, pos - 2, end)


class _Walk:
    """One stream's output so far, and whether its frame header was seen."""

    __slots__ = ("buf", "frame_seen", "jpeg_ls", "out", "tally")

    def __init__(self, buf: bytes, tally: Tally, jpeg_ls: bool) -> None:
        self.buf = buf
        self.tally = tally
        self.jpeg_ls = jpeg_ls
        self.out = [_SOI]
        self.frame_seen = False

    def segment(self, marker: int, pos: int, end: int) -> int:
        """Keep, cut or drop the segment ``buf[pos:end]``; return where the next marker is."""
        buf = self.buf
        if marker in _KEEP:
            if marker in _SOF or marker == _SOF55:
                if (marker == _SOF55) != self.jpeg_ls:
                    raise PixelStreamError("a JPEG frame of another family than the syntax's")
                self.frame_seen = True
            self.out.append(buf[pos:end])
            return end
        if marker == _SOS:
            if not self.frame_seen:
                raise PixelStreamError("a JPEG scan before any frame header")
            scan_end = _scan_end(buf, end, self.jpeg_ls)
            self.out.append(buf[pos:scan_end])
            return scan_end
        if 0xE0 <= marker <= 0xEF or marker == _COM:
            kept = _reduced(marker, buf[pos + 4 : end])
            if len(kept) != end - pos:
                name = "COM" if marker == _COM else f"APP{marker - 0xE0}"
                self.tally.drop(name, end - pos - len(kept))
            if kept:
                self.out.append(kept)
            return end
        raise PixelStreamError("a JPEG marker dcmwatch does not know")


def _scan_end(buf: bytes, pos: int, jpeg_ls: bool) -> int:
    """Offset of the first marker after the entropy-coded data starting at `pos`."""
    if not jpeg_ls:
        found = _NEXT_JPEG.search(buf, pos)
        if found is None:
            raise PixelStreamError("a JPEG scan runs to the end of the data")
        return found.start()
    while True:
        found = _NEXT_LS.search(buf, pos)
        if found is None:
            raise PixelStreamError("a JPEG-LS scan runs to the end of the data")
        if not 0xD0 <= buf[found.start() + 1] <= 0xD7:
            return found.start()
        pos = found.start() + 2  # a restart marker inside the scan


def _reduced(marker: int, payload: bytes) -> bytes:
    """The part of an APPn/COM segment a decoder reads, as a whole segment; b"" to drop it."""
    if marker == _APP14 and payload[:5] == b"Adobe" and len(payload) >= 12:
        # version 100 and no flags (what encoders write; decoders read only the transform)
        return b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00" + payload[11:12]
    if marker == _APP8 and payload[:4] == b"mrfx" and len(payload) >= 5:
        return b"\xff\xe8\x00\x07" + payload[:5]  # "mrfx" then the transform id (CharLS)
    if marker == _APP0 and payload[:5] == b"JFIF\x00" and len(payload) >= 14:
        # version 1.02, density 1:1 without units, no thumbnail
        return b"\xff\xe0\x00\x10JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00"
    return b""
