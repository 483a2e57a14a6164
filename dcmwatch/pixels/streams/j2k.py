"""JPEG 2000 and HTJ2K codestreams (ISO 15444-1/-2/-15), and the JP2 file wrapper around one.

A codestream is SOC, a main header of marker segments, tile-parts (SOT, their own header
segments, SOD, packet data of the length SOT's Psot gives) and EOC. Comments (COM, FF64) may sit
in the main header and in every tile-part header; encoders fill them (OpenJPEG writes its name
and version, others the software and site). They are removed; a tile-part that loses one gets
its Psot shortened by as much, and a TLM segment (tile-part lengths, an index no decoder needs)
is dropped when any length changed. Bytes after EOC are dropped. Packet data is not read: its
length comes from Psot, so the walk costs one step per marker segment and tile-part. Only the
last tile-part may say Psot = 0 ("to EOC"): its data ends at the first marker in the FF90-FFFF
range that is not SOP or EPH, because bit stuffing keeps every such pair out of packet data.
That marker must be EOC; anything after it (text, an appended thumbnail, the next frame) is
not part of the codestream, however it ends.

DICOM forbids the JP2 wrapper (PS3.5 A.4.4), yet some writers add it. When met, it is rebuilt
from what decodes: the signature, a fixed ``ftyp`` (brand and compatibility "jp2 "), the
``jp2h`` header and the codestream box. In the header the image header is cut to its 14
defined bytes with the IPR flag cleared, the first colour box becomes an enumerated colour
space (an ICC profile carries description, device and copyright text), and the bit depth,
palette, component mapping and channel definition boxes stay, cut to their fields. XML, UUID,
IPR, resolution, reader requirements and any other box go.
"""

from __future__ import annotations

import re
import struct
from typing import Final

from dcmwatch.pixels.errors import PixelStreamError
from dcmwatch.pixels.streams.report import Tally

__all__ = ["JP2_SIGNATURE", "clean_j2k"]

_SOC: Final = b"\xff\x4f"
_SOT, _SOD, _EOC, _COM, _TLM = 0xFF90, 0xFF93, 0xFFD9, 0xFF64, 0xFF55
#: Header segments a decoder reads: SIZ, CAP, COD, COC, TLM, PRF, PLM, PLT, CPF, QCD, QCC, RGN,
#: POC, PPM, PPT, CRG, and the Part 2 extensions DCO, VMS, DFS, ADS, MCT, MCC, NLT, MCO, CBD, ATK.
_KEEP: Final = frozenset(
    {0xFF50, 0xFF51, 0xFF52, 0xFF53, 0xFF55, 0xFF56, 0xFF57, 0xFF58, 0xFF59, 0xFF5C, 0xFF5D,
     0xFF5E, 0xFF5F, 0xFF60, 0xFF61, 0xFF63, *range(0xFF70, 0xFF7A)}
)
JP2_SIGNATURE: Final = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
#: What every JP2 file we write says of itself: brand "jp2 ", version 0, compatible with "jp2 ".
_FTYP: Final = b"\x00\x00\x00\x14ftypjp2 \x00\x00\x00\x00jp2 "
#: Header boxes kept, cut to their defined fields: bit depth, palette, mapping, channels.
_JP2H_KEEP: Final = frozenset({b"bpcc", b"pclr", b"cmap", b"cdef"})
#: The enumerated colour spaces of JP2 (ISO 15444-1 I.5.3.3): sRGB, greyscale, sYCC.
_SRGB, _GREY, _SYCC = 16, 17, 18
_ENUMERATED: Final = frozenset({_SRGB, _GREY, _SYCC})
#: A marker packet data cannot hold: FF90-FFFF except SOP (FF91) and EPH (FF92).
_MARKER: Final = re.compile(rb"\xff[\x90\x93-\xff]")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">L")
_U64 = struct.Struct(">Q")


def clean_j2k(buf: bytes, start: int, tally: Tally) -> tuple[bytes, int]:
    """The codestream (or JP2 file) at ``buf[start:]`` without metadata, and where it ended."""
    if buf[start : start + 12] == JP2_SIGNATURE:
        return _clean_jp2(buf, start, tally)
    if buf[start : start + 2] != _SOC:
        raise PixelStreamError("a frame does not start with a JPEG 2000 SOC marker")
    return _clean_codestream(buf, start, len(buf), tally)


def _segment_end(buf: bytes, pos: int, limit: int) -> int:
    if pos + 4 > limit:
        raise PixelStreamError("a JPEG 2000 header runs past the end of the data")
    end: int = pos + 2 + _U16.unpack_from(buf, pos + 2)[0]
    if end < pos + 4 or end > limit:
        raise PixelStreamError("a JPEG 2000 segment runs past the end of the data")
    return end


def _header(buf: bytes, pos: int, limit: int, stop: int, tally: Tally) -> tuple[list[bytes], int]:
    """The segments from `pos` up to the marker `stop` (not included), comments dropped."""
    kept: list[bytes] = []
    while True:
        if pos + 2 > limit:
            raise PixelStreamError("a JPEG 2000 header runs past the end of the data")
        marker = _U16.unpack_from(buf, pos)[0]
        if marker == stop:
            return kept, pos
        end = _segment_end(buf, pos, limit)
        if marker == _COM:
            tally.drop("J2K_COM", end - pos)
        elif marker in _KEEP:
            kept.append(buf[pos:end])
        else:
            raise PixelStreamError("a JPEG 2000 marker dcmwatch does not know")
        pos = end


def _clean_codestream(buf: bytes, start: int, limit: int, tally: Tally) -> tuple[bytes, int]:
    main, pos = _header(buf, start + 2, limit, _SOT, tally)
    tiles: list[bytes] = []
    lengths_changed = False
    while True:
        if pos == limit:
            end = pos  # no EOC: the codestream ends with its last tile-part
            break
        if pos + 2 > limit:
            raise PixelStreamError("a JPEG 2000 codestream ends inside a marker")
        marker = _U16.unpack_from(buf, pos)[0]
        if marker == _EOC:
            end = pos + 2
            break
        if marker != _SOT or pos + 12 > limit or _U16.unpack_from(buf, pos + 2)[0] != 10:
            raise PixelStreamError("a JPEG 2000 codestream has bytes where a tile-part belongs")
        psot = _U32.unpack_from(buf, pos + 6)[0]
        if psot:
            tile_end = pos + psot
            if tile_end > limit or tile_end < pos + 14:
                raise PixelStreamError("a JPEG 2000 tile-part runs past the end of the data")
            segments, sod = _header(buf, pos + 12, tile_end, _SOD, tally)
        else:  # the last tile-part, which runs to EOC
            segments, sod = _header(buf, pos + 12, limit, _SOD, tally)
            tile_end = _eoc(buf, sod + 2, limit)
        removed = (sod - pos - 12) - sum(len(s) for s in segments)
        sot = buf[pos : pos + 12]
        if removed and psot:
            sot = sot[:6] + _U32.pack(psot - removed) + sot[10:]
            lengths_changed = True
        tiles.append(sot)
        tiles.extend(segments)
        tiles.append(buf[sod:tile_end])
        pos = tile_end
    if lengths_changed:
        for segment in [s for s in main if _U16.unpack_from(s)[0] == _TLM]:
            main.remove(segment)
            tally.drop("J2K_TLM", len(segment))
    return b"".join([_SOC, *main, *tiles, b"\xff\xd9"]), end


def _eoc(buf: bytes, pos: int, limit: int) -> int:
    """Where the packet data of a last tile-part of unknown length, starting at `pos`, ends."""
    found = _MARKER.search(buf, pos, limit)
    if found is None:
        raise PixelStreamError("a JPEG 2000 tile-part of unknown length ends without EOC")
    if buf[found.start() + 1] != 0xD9:
        raise PixelStreamError("a JPEG 2000 tile-part of unknown length holds a marker")
    return found.start()


def _box_at(buf: bytes, pos: int, limit: int) -> tuple[bytes, int, int, bool] | None:
    """(type, content start, box end, open) of the box at `pos`, None when none fits there.

    A box of length 0 runs to the end of the file holding it, which in a multi-frame buffer is
    not the end of the buffer: it is `open`, its end given as `limit` for the caller to settle.
    """
    if pos + 8 > limit:
        return None
    length = _U32.unpack_from(buf, pos)[0]
    kind = bytes(buf[pos + 4 : pos + 8])
    content = pos + 8
    if not kind.isascii():
        return None
    if length == 0:
        return kind, content, limit, True
    if length == 1:
        if pos + 16 > limit:
            return None
        length = _U64.unpack_from(buf, pos + 8)[0]
        content = pos + 16
    if length < content - pos or pos + length > limit:
        return None
    return kind, content, pos + length, False


def _box(kind: bytes, content: bytes) -> bytes:
    return _U32.pack(8 + len(content)) + kind + content


def _clean_jp2(buf: bytes, start: int, tally: Tally) -> tuple[bytes, int]:
    """The JP2 file at ``buf[start:]`` rebuilt from what decodes, and where it ended.

    It ends before the next signature box (the next frame's file), before any box other than
    the codestream that runs to the end of the file (whose end only the fragments can tell), or
    at the first bytes that are not a box; the caller drops the rest of the frame's fragments.
    """
    out = [JP2_SIGNATURE, _FTYP]
    pos, limit = start + 12, len(buf)
    header = codestream = False
    while (box := _box_at(buf, pos, limit)) is not None:
        kind, content, box_end, open_ended = box
        if kind == b"jP  ":
            break
        if kind == b"jp2c" and not codestream:
            if buf[content : content + 2] != _SOC:
                raise PixelStreamError("a JP2 codestream box without a codestream")
            stream, used = _clean_codestream(buf, content, box_end, tally)
            if open_ended:  # to the end of the file: the codestream's own end is the box's
                box_end = used
            elif used < box_end:
                tally.drop("trailing", box_end - used)
            out.append(_box(b"jp2c", stream))
            codestream = True
        elif open_ended:
            break
        elif kind == b"jp2h" and not header and not codestream:
            out.append(_box(b"jp2h", _clean_jp2h(buf, content, box_end, tally)))
            header = True
        elif kind == b"ftyp" and not header and not codestream:
            if buf[pos:box_end] != _FTYP:
                tally.drop("JP2_ftyp", max(box_end - pos - len(_FTYP), 0))
        else:
            tally.drop("JP2_box", box_end - pos)
        pos = box_end
    if not codestream:
        raise PixelStreamError("a JP2 file without a codestream box")
    return b"".join(out), pos


def _clean_jp2h(buf: bytes, pos: int, limit: int, tally: Tally) -> bytes:
    """The header boxes a decoder reads, the image header and colour cut to numbers."""
    kept: list[bytes] = []
    components: int | None = None
    colour = False
    while (box := _box_at(buf, pos, limit)) is not None:
        kind, content, end, _ = box
        if kind == b"ihdr":
            if end - content < 14:
                raise PixelStreamError("a JP2 image header box is too short")
            components = _U16.unpack_from(buf, content + 8)[0]
            kept.append(_box(b"ihdr", buf[content : content + 13] + b"\x00"))  # IPR: no rights box
            if end - content > 14:
                tally.drop("JP2_ihdr", end - content - 14)
        elif kind == b"colr" and not colour:
            reduced = _box(b"colr", _colour(buf[content:end], components))
            if buf[pos:end] != reduced:
                tally.drop("JP2_colr", max(end - pos - len(reduced), 0))
            kept.append(reduced)
            colour = True
        elif kind in _JP2H_KEEP:
            size = _defined_size(kind, buf[content:end], components)
            kept.append(_box(kind, buf[content : content + size]))
            if end - content > size:
                tally.drop(f"JP2_{kind.decode()}", end - content - size)
        else:
            tally.drop("JP2_box", end - pos)
        pos = end
    if pos < limit:
        tally.drop("JP2_box", limit - pos)
    return b"".join(kept)


def _defined_size(kind: bytes, content: bytes, components: int | None) -> int:
    """How many of a bit depth, palette, mapping or channel box's bytes its fields define
    (ISO 15444-1 I.5.3); bytes after them are read by no decoder and could hold anything."""
    if kind == b"bpcc":
        if components is None:
            raise PixelStreamError("a JP2 bit depth box before its image header")
        size = components
    elif kind == b"cdef":
        size = 2 + 6 * _U16.unpack_from(content)[0] if len(content) >= 2 else 2
    elif kind == b"pclr":
        if len(content) < 3 or len(content) < 3 + content[2]:
            raise PixelStreamError("a JP2 palette box is too short")
        depths = content[3 : 3 + content[2]]
        entry = sum(((depth & 0x7F) + 8) // 8 for depth in depths)
        size = 3 + len(depths) + _U16.unpack_from(content)[0] * entry
    else:  # cmap: four bytes a channel
        size = len(content) - len(content) % 4
    if size > len(content):
        raise PixelStreamError("a JP2 header box is shorter than its fields say")
    return size


def _colour(content: bytes, components: int | None) -> bytes:
    """A colour box's content as an enumerated colour space (method 1).

    The box's own sRGB, greyscale or sYCC stays. Anything else, an ICC profile above all (its
    description, device and copyright tags are text; it goes as an ICC APP2 segment goes from
    JPEG), becomes greyscale or sRGB by the image header's component count: decoders that
    ignore the profile show the samples as they are, and so do they under those two, whereas
    sYCC would make them convert (Pillow does) and change the pixels.
    """
    if content[:1] == b"\x01" and len(content) >= 7:
        space: int = _U32.unpack_from(content, 3)[0]
        if space in _ENUMERATED:
            return b"\x01\x00\x00" + _U32.pack(space)
    if components is None:
        raise PixelStreamError("a JP2 colour box before its image header")
    return b"\x01\x00\x00" + _U32.pack(_GREY if components < 3 else _SRGB)
