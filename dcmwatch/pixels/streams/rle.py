"""RLE Lossless frames (PS3.5 Annex G): a 64-byte header, then byte-plane segments.

The header gives the number of segments and where each starts; nothing says where a segment
ends but the next one's start, so bytes can sit between a segment's last packet and the next
segment, between the header and the first segment, and after the last segment, and a decoder
never reads them. Each segment is walked packet by packet (a packet is one byte header and one
or up to 128 bytes: the loop runs per packet, not per byte) until it has produced the
Rows x Columns bytes of its plane; it is cut there, padded to even length with one zero byte as
G.5 requires, and the header is rebuilt with the new offsets.
"""

from __future__ import annotations

import itertools
import struct
from typing import Final

from dcmwatch.pixels.errors import PixelStreamError
from dcmwatch.pixels.streams.report import Tally

__all__ = ["clean_rle"]

_HEADER: Final = struct.Struct("<16L")


def clean_rle(
    buf: bytes, start: int, tally: Tally, *, segments: int, plane: int
) -> tuple[bytes, int]:
    """The frame at ``buf[start:]`` as exactly its `segments` segments of `plane` decoded bytes
    each, and the offset where its last segment ended."""
    if start + 64 > len(buf):
        raise PixelStreamError("an RLE frame is shorter than its header")
    header = _HEADER.unpack_from(buf, start)
    count, offsets = header[0], header[1 : 1 + segments]
    if count != segments or any(header[1 + segments :]):
        raise PixelStreamError("an RLE header does not have the segments the image needs")
    if offsets[0] != 64 or any(b <= a for a, b in itertools.pairwise(offsets)):
        raise PixelStreamError("an RLE header's segment offsets are not in order")
    bounds = [start + o for o in offsets] + [len(buf)]
    if bounds[-2] >= len(buf):
        raise PixelStreamError("an RLE header's segment offsets run past the end of the data")
    parts: list[bytes] = []
    new_offsets: list[int] = []
    position = 64
    end = start + 64
    for i in range(segments):
        seg_start, limit = bounds[i], bounds[i + 1]
        end = _segment_end(buf, seg_start, limit, plane)
        segment = buf[seg_start:end]
        gap = limit - end
        if len(segment) % 2:
            segment += b"\x00"
            gap -= 1  # the pad byte, rewritten as zero
        if gap > 0 and i + 1 < segments:
            tally.drop("RLE_gap", gap)
        new_offsets.append(position)
        position += len(segment)
        parts.append(segment)
    head = _HEADER.pack(segments, *new_offsets, *([0] * (15 - segments)))
    return head + b"".join(parts), end


def _segment_end(buf: bytes, pos: int, limit: int, plane: int) -> int:
    """Where the segment starting at `pos` has produced `plane` bytes."""
    produced = 0
    while produced < plane:
        if pos >= limit:
            raise PixelStreamError("an RLE segment ends before its plane is complete")
        n = buf[pos]
        if n < 128:
            produced += n + 1
            pos += n + 2
        elif n > 128:
            produced += 257 - n
            pos += 2
        else:
            pos += 1
    if pos > limit:
        raise PixelStreamError("an RLE segment runs past the next one")
    return pos
