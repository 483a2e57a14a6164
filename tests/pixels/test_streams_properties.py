"""Properties of the stream cleaner: whatever metadata is planted where, the result is the
cleaned original; whatever bytes are damaged, the answer is a clean stream or our error."""

from __future__ import annotations

import contextlib
import struct
from copy import deepcopy

from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from dcmwatch.pixels.errors import PixelStreamError
from dcmwatch.pixels.streams import clean_pixel_data

from ._streams import (
    MARK,
    encapsulated,
    even,
    frames,
    j2k_main_header_end,
    jpeg_header_end,
    psot_zero,
    segment,
)
from ._support import read

_JPEG = read("SC_rgb_jpeg_dcmtk.dcm")
_JPEG_LS = read("MR_small_jpeg_ls_lossless.dcm")
_J2K = read("MR_small_jp2klossless.dcm")
_RLE = read("SC_rgb_rle.dcm")
#: APPn that are never kept (APP0 JFIF, APP8 mrfx and APP14 Adobe are cut, not dropped).
_DROPPED_APPS = [0xE0 + n for n in range(16) if n not in (0, 8, 14)] + [0xFE]


def _cleaned(ds: Dataset, fragments: list[bytes]) -> bytes:
    """The cleaned Pixel Data value of `ds` holding `fragments`."""
    copy = deepcopy(ds)  # the module's datasets stay as read
    copy.PixelData = encapsulated(fragments)
    copy["PixelData"].is_undefined_length = True
    clean_pixel_data(copy)
    value: bytes = copy.PixelData
    return value


def _boundaries(stream: bytes, end: int) -> list[int]:
    """Offsets of the header segment boundaries between SOI and `end`."""
    found, pos = [2], 2
    while pos < end:
        pos += 2 + struct.unpack_from(">H", stream, pos + 2)[0]
        found.append(pos)
    return found


planted_segments = st.lists(
    st.tuples(st.sampled_from(_DROPPED_APPS), st.binary(max_size=200), st.integers(0, 1000)),
    max_size=6,
)


@given(planted=planted_segments, trailing=st.binary(max_size=64))
@settings(max_examples=60)
def test_jpeg_planted_anywhere_in_the_header_cleans_to_the_original(
    planted: list[tuple[int, bytes, int]], trailing: bytes
) -> None:
    for ds in (_JPEG, _JPEG_LS):
        stream = frames(ds)[0]
        bounds = _boundaries(stream, jpeg_header_end(stream))
        out = stream
        # from the last position to the first, so that earlier offsets stay valid
        for at, marker, payload in sorted(
            ((bounds[w % len(bounds)], m, p) for m, p, w in planted), reverse=True
        ):
            out = out[:at] + segment(marker, MARK + payload) + out[at:]
        out += MARK + trailing
        cleaned = _cleaned(ds, [even(out)])
        assert cleaned == _cleaned(ds, [even(stream)])
        assert MARK not in cleaned


@given(comments=st.lists(st.tuples(st.binary(max_size=100), st.integers(0, 100)), max_size=5),
       trailing=st.binary(max_size=64))
@settings(max_examples=40)
def test_j2k_comments_anywhere_in_the_main_header_clean_to_the_original(
    comments: list[tuple[bytes, int]], trailing: bytes
) -> None:
    stream = frames(_J2K)[0]
    bounds = _boundaries(stream, j2k_main_header_end(stream))
    out = stream
    for at, payload in sorted(((bounds[w % len(bounds)], p) for p, w in comments),
                              reverse=True):
        out = out[:at] + segment(0x64, b"\x00\x01" + MARK + payload) + out[at:]
    cleaned = _cleaned(_J2K, [even(out + MARK + trailing)])
    assert cleaned == _cleaned(_J2K, [even(stream)])
    assert MARK not in cleaned


@given(tails=st.lists(st.binary(max_size=60), min_size=2, max_size=2))
@settings(max_examples=40)
def test_j2k_tile_part_of_unknown_length_ends_at_its_own_eoc(tails: list[bytes]) -> None:
    """Two frames whose last tile-part says Psot = 0, each followed by any bytes that end in
    EOC: each cleans to its codestream alone."""
    stream = psot_zero(frames(_J2K)[0])
    ds = deepcopy(_J2K)
    ds.NumberOfFrames = 2
    planted = [even(stream + MARK + tail + b"\xff\xd9") for tail in tails]
    cleaned = _cleaned(ds, planted)
    assert cleaned == _cleaned(ds, [even(stream), even(stream)])
    assert MARK not in cleaned


@given(gaps=st.lists(st.binary(max_size=40), min_size=3, max_size=3))
@settings(max_examples=40)
def test_rle_bytes_after_any_segment_clean_to_the_original(gaps: list[bytes]) -> None:
    frame = frames(_RLE)[0]
    count, *offsets = struct.unpack_from("<16L", frame)
    bounds = [*offsets[:count], len(frame)]
    parts, new_offsets, at = [], [], 64
    for i in range(count):
        part = frame[bounds[i] : bounds[i + 1]] + MARK + gaps[i]
        new_offsets.append(at)
        at += len(part)
        parts.append(part)
    header = struct.pack("<16L", count, *new_offsets, *[0] * (15 - count))
    cleaned = _cleaned(_RLE, [even(header + b"".join(parts))])
    assert cleaned == _cleaned(_RLE, [even(frame)])
    assert MARK not in cleaned


@given(data=st.data())
@settings(max_examples=150)
def test_damaged_streams_are_cleaned_or_refused_with_our_error(data: st.DataObject) -> None:
    """Flipped bytes and cuts anywhere: a result, or `PixelStreamError`; nothing else."""
    ds = data.draw(st.sampled_from([_JPEG, _JPEG_LS, _J2K, _RLE]))
    stream = bytearray(frames(ds)[0])
    for _ in range(data.draw(st.integers(1, 4))):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(stream)))
    with contextlib.suppress(PixelStreamError):
        _cleaned(ds, [even(bytes(stream[:cut]))])
