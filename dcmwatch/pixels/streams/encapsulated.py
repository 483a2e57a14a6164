"""Encapsulated Pixel Data on its way out: every frame walked and cleaned, the tables rebuilt.

Encapsulated Pixel Data (PS3.5 A.4) is a Basic Offset Table item, fragment items and a sequence
delimiter. A file no pixel rule touches keeps its pixels byte for byte, and with them whatever
the writer put around the image: comments and application segments in each JPEG stream, bytes
after its end, arbitrary bytes in the offset table item, fragments beyond the last frame.

Frames are found by their bytes, never by the offset tables (claims like any other): the first
fragment starts the first frame, the walker for the transfer syntax's family follows the
stream to its end marker, and the next frame starts at the first fragment boundary after it.
Whatever lies between a stream's end and the next boundary is dropped. A fragment whose bytes
are not a stream of the family the syntax declares makes the file unrecognised: what cannot be
walked never passes.

Written back: one fragment per frame (padded to even length with a zero byte), a Basic Offset
Table holding each frame's offset for multi-frame images, empty for one frame or when an
(7FE0,0001) *Extended Offset Table* is present (PS3.5 A.4: both must not be used), and the
Extended Offset Table and (7FE0,0002) *Extended Offset Table Lengths* recomputed when present.
Native Pixel Data is left alone after one dictionary lookup.
"""

from __future__ import annotations

import bisect
import functools
import struct
from collections.abc import Callable
from typing import Final

from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    JPEG2000TransferSyntaxes,
    JPEGLSTransferSyntaxes,
    MPEGTransferSyntaxes,
    RLELossless,
)

from dcmwatch.pixels import header
from dcmwatch.pixels.errors import PixelStreamError, PixelStreamUnsupportedError
from dcmwatch.pixels.streams.j2k import clean_j2k
from dcmwatch.pixels.streams.jpeg import clean_jpeg
from dcmwatch.pixels.streams.report import StreamReport, Tally, report
from dcmwatch.pixels.streams.rle import clean_rle

__all__ = ["clean_pixel_data"]

_PIXEL_DATA, _EOT, _EOT_LENGTHS = Tag(0x7FE00010), Tag(0x7FE00001), Tag(0x7FE00002)
_TRANSFER_SYNTAX_UID = Tag(0x00020010)
_NUMBER_OF_FRAMES, _ROWS, _COLUMNS = Tag(0x00280008), Tag(0x00280010), Tag(0x00280011)
_SAMPLES, _BITS_ALLOCATED = Tag(0x00280002), Tag(0x00280100)
_UNDEFINED: Final = 0xFFFFFFFF
_ITEM: Final = b"\xfe\xff\x00\xe0"
_U32 = struct.Struct("<L")
#: The JPEG (ISO 10918-1) syntaxes: baseline, extended, lossless, and the retired processes.
_JPEG: Final = frozenset(
    UID(f"1.2.840.10008.1.2.4.{n}") for n in (*range(50, 67), 70)
)
_J2K: Final = frozenset(JPEG2000TransferSyntaxes)
_JPEG_LS: Final = frozenset(JPEGLSTransferSyntaxes)
_VIDEO: Final = frozenset(MPEGTransferSyntaxes)

Walker = Callable[[bytes, int, Tally], tuple[bytes, int]]


def clean_pixel_data(ds: Dataset) -> StreamReport | None:
    """Clean encapsulated (7FE0,0010) *Pixel Data* in place; None when it is native or absent.

    Raises `PixelStreamError` (`PixelStreamUnsupportedError` for syntaxes never walked).
    """
    elem = ds.get_item(_PIXEL_DATA)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        if elem.length != _UNDEFINED:
            return None
    elif not elem.is_undefined_length:
        return None
    value = elem.value
    if not isinstance(value, bytes):
        raise PixelStreamError("encapsulated Pixel Data is not a byte string")
    walker = _walker(ds)
    # 0 is read as one frame, as the size check and the pixel rules read it
    frames = _count(ds, _NUMBER_OF_FRAMES, 1, zero=1)
    tally = Tally()
    fragments = _fragments(value, tally)
    cleaned = _frames(fragments, frames, walker, tally)
    new = _assemble(cleaned, with_bot=frames > 1 and _EOT not in ds)
    if new != value:
        fresh = DataElement(_PIXEL_DATA, "OB", new, validation_mode=pydicom_config.IGNORE)
        fresh.is_undefined_length = True
        ds[_PIXEL_DATA] = fresh
    _extended_tables(ds, cleaned)
    return report(tally, frames=frames, fragments_in=len(fragments), bytes_in=len(value),
                  bytes_out=len(new))


def _walker(ds: Dataset) -> Walker:
    meta = getattr(ds, "file_meta", None)
    uid = UID(header.text(meta, _TRANSFER_SYNTAX_UID) if meta is not None else "")
    if uid in _JPEG:
        return functools.partial(clean_jpeg, jpeg_ls=False)
    if uid in _JPEG_LS:
        return functools.partial(clean_jpeg, jpeg_ls=True)
    if uid in _J2K:
        return clean_j2k
    if uid == RLELossless:
        samples = _count(ds, _SAMPLES, 1)
        depth = (_count(ds, _BITS_ALLOCATED, 8) + 7) // 8
        plane = _count(ds, _ROWS, 0) * _count(ds, _COLUMNS, 0)
        return functools.partial(clean_rle, segments=samples * depth, plane=plane)
    if uid in _VIDEO:
        raise PixelStreamUnsupportedError(
            "video pixel data (MPEG-2, MPEG-4, HEVC) is not walked: its user data and SEI "
            "messages could carry text"
        )
    raise PixelStreamUnsupportedError(
        "encapsulated pixel data in a transfer syntax whose streams dcmwatch does not walk"
    )


def _count(ds: Dataset, tag: int, default: int, *, zero: int = 0) -> int:
    value = header.number(ds, tag)
    try:
        number = default if value is None else int(value) or zero
    except (TypeError, ValueError):
        raise PixelStreamError("an image attribute the frames depend on is not a number") from None
    if number < 1:
        raise PixelStreamError("an image attribute the frames depend on is not positive")
    return number


def _fragments(value: bytes, tally: Tally) -> list[bytes]:
    """The fragments after the Basic Offset Table item (whose content is ignored)."""
    if value[:4] != _ITEM or len(value) < 8:
        raise PixelStreamError("encapsulated Pixel Data does not start with an offset table item")
    pos = 8 + _U32.unpack_from(value, 4)[0]
    size = len(value)
    fragments: list[bytes] = []
    while pos + 8 <= size and value[pos : pos + 4] == _ITEM:
        length = _U32.unpack_from(value, pos + 4)[0]
        if pos + 8 + length > size:
            raise PixelStreamError("a pixel data fragment runs past the end of its element")
        fragments.append(value[pos + 8 : pos + 8 + length])
        pos += 8 + length
    if pos > size:
        raise PixelStreamError("the offset table item runs past the end of its element")
    if pos < size:
        tally.drop("trailing", size - pos)
    if not fragments:
        raise PixelStreamError("encapsulated Pixel Data without fragments")
    return fragments


def _frames(fragments: list[bytes], frames: int, walker: Walker, tally: Tally) -> list[bytes]:
    """Each frame's cleaned stream, padded to even length; fragments are joined once."""
    buf = fragments[0] if len(fragments) == 1 else b"".join(fragments)
    starts = [0]
    for fragment in fragments[:-1]:
        starts.append(starts[-1] + len(fragment))
    out: list[bytes] = []
    i = 0
    while i < len(starts) and len(out) < frames:
        start = starts[i]
        stream, end = walker(buf, start, tally)
        out.append(stream + b"\x00" if len(stream) % 2 else stream)
        i = bisect.bisect_left(starts, end, i + 1)
        gap = (starts[i] if i < len(starts) else len(buf)) - end
        gap -= (end - start) % 2  # the pad byte an odd stream needs
        if gap > 0:
            tally.drop("trailing", gap)
    if len(out) < frames:
        raise PixelStreamError("the fragments hold fewer frames than (0028,0008) declares")
    if i < len(starts):
        tally.drop("fragments", len(buf) - starts[i])
    return out


def _assemble(frames: list[bytes], *, with_bot: bool) -> bytes:
    offsets = _offsets(frames)
    bot = b""
    if with_bot and offsets[-1] <= 0xFFFFFFFF:
        bot = struct.pack(f"<{len(offsets)}L", *offsets)
    parts = [_ITEM, _U32.pack(len(bot)), bot]
    for frame in frames:
        parts += (_ITEM, _U32.pack(len(frame)), frame)
    return b"".join(parts)


def _offsets(frames: list[bytes]) -> list[int]:
    """Each frame's item offset from the first fragment item (PS3.5 A.4, Table A.4-1)."""
    offsets = [0]
    for frame in frames[:-1]:
        offsets.append(offsets[-1] + 8 + len(frame))
    return offsets


def _extended_tables(ds: Dataset, frames: list[bytes]) -> None:
    """Recompute (7FE0,0001)/(7FE0,0002) when present; lengths alone mean nothing and go."""
    if _EOT not in ds:
        if _EOT_LENGTHS in ds:
            del ds[_EOT_LENGTHS]
        return
    n = len(frames)
    header.set_value(ds, _EOT, "OV", struct.pack(f"<{n}Q", *_offsets(frames)))
    header.set_value(ds, _EOT_LENGTHS, "OV", struct.pack(f"<{n}Q", *map(len, frames)))
