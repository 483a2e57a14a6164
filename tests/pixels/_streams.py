"""Helpers for the compressed-stream tests: frames in and out, and streams with planted text.

Frames are taken apart here by hand and by pydicom's own `pydicom.encaps`, never by
`dcmwatch.pixels.streams`, which is what the tests check.
"""

from __future__ import annotations

import io
import struct

import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from dcmwatch import dicomfile

#: Every planted value starts with this: no output byte string may contain it.
MARK = b"PHIMARK"
ITEM = b"\xfe\xff\x00\xe0"


def frames(ds: Dataset) -> list[bytes]:
    """Each frame's bytes as pydicom's encapsulation reader finds them."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return list(generate_frames(ds.PixelData, number_of_frames=n))


def encapsulated(fragments: list[bytes], bot: bytes = b"") -> bytes:
    """An encapsulated Pixel Data value: offset table item holding `bot`, then the fragments."""
    parts = [ITEM, struct.pack("<L", len(bot)), bot]
    for fragment in fragments:
        parts += [ITEM, struct.pack("<L", len(fragment)), fragment]
    return b"".join(parts)


def with_fragments(ds: Dataset, fragments: list[bytes], bot: bytes = b"") -> Dataset:
    """`ds` written and read back with Pixel Data made of `fragments` (all even length)."""
    ds.PixelData = encapsulated(fragments, bot)
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    return reread(ds)


def reread(ds: Dataset) -> Dataset:
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))


def output(ds: Dataset) -> bytes:
    """The Part 10 bytes dcmwatch writes for `ds`."""
    return dicomfile.encode(ds)


def even(data: bytes) -> bytes:
    return data + b"\x00" if len(data) % 2 else data


def segment(marker: int, payload: bytes) -> bytes:
    """A JPEG (or JPEG 2000) marker segment: FFxx, a 2-byte length, the payload."""
    return bytes([0xFF, marker & 0xFF]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_header_end(stream: bytes) -> int:
    """Offset of the first SOS marker, found by walking the header segments by their lengths."""
    pos = 2
    while stream[pos + 1] != 0xDA:
        pos += 2 + struct.unpack_from(">H", stream, pos + 2)[0]
    return pos


def plant_jpeg(stream: bytes) -> bytes:
    """`stream` with EXIF, ICC, Photoshop, JFIF thumbnail, comments and trailing bytes added."""
    eoi = stream.rindex(b"\xff\xd9")
    sos = jpeg_header_end(stream)
    # a 3 x 1 RGB thumbnail: 9 bytes
    thumbnail = b"JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x03\x01" + MARK + b"-t"
    front = b"".join([
        segment(0xE0, thumbnail),
        segment(0xE0, b"JFXX\x00\x10" + MARK + b"-jfxx"),
        segment(0xE1, b"Exif\x00\x00" + MARK + b"-exif-owner"),
        segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x>" + MARK + b"</x>"),
        segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + MARK + b"-icc"),
        segment(0xED, b"Photoshop 3.0\x00" + MARK + b"-caption"),
        segment(0xFE, MARK + b"-comment"),
    ])
    before_scan = segment(0xFE, MARK + b"-between") + segment(0xEB, MARK + b"-app11")
    return (stream[:2] + front + stream[2:sos] + before_scan + stream[sos : eoi + 2]
            + MARK + b"-after-eoi")


def j2k_main_header_end(stream: bytes) -> int:
    """Offset of the first SOT marker, walking the main header segments by their lengths."""
    pos = 2
    while stream[pos : pos + 2] != b"\xff\x90":
        pos += 2 + struct.unpack_from(">H", stream, pos + 2)[0]
    return pos


def plant_j2k(stream: bytes) -> bytes:
    """A COM in the main header and in the first tile-part header (Psot grown to match), and
    bytes after EOC."""
    sot = j2k_main_header_end(stream)
    main_com = segment(0x64, b"\x00\x01" + MARK + b"-main")
    tile_com = segment(0x64, b"\x00\x01" + MARK + b"-tile")
    psot = struct.unpack_from(">L", stream, sot + 6)[0]
    new_psot = psot + len(tile_com) if psot else 0
    sot_segment = stream[sot : sot + 6] + struct.pack(">L", new_psot) + stream[sot + 10 : sot + 12]
    return (stream[:sot] + main_com + sot_segment + tile_com + stream[sot + 12 :]
            + MARK + b"-after-eoc")


def box(kind: bytes, content: bytes) -> bytes:
    """A JP2 box: 4-byte length, 4-byte type, content."""
    return struct.pack(">L", 8 + len(content)) + kind + content


def psot_zero(stream: bytes) -> bytes:
    """A one-tile-part codestream with its tile-part's Psot set to 0 ("runs to EOC")."""
    sot = j2k_main_header_end(stream)
    psot = struct.unpack_from(">L", stream, sot + 6)[0]
    assert sot + psot == len(stream) - 2, "more than one tile-part"
    return stream[: sot + 6] + b"\x00\x00\x00\x00" + stream[sot + 10 :]
