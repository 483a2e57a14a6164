"""JPEG 2000 streams whose extent is not written down: a last tile-part of unknown length
(Psot = 0) ends at its own EOC, never at a later FFD9; the decoded pixels stay identical."""

from __future__ import annotations

import io
from copy import deepcopy

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder

from dcmwatch.pixels.errors import PixelStreamError
from dcmwatch.pixels.streams import StreamReport, clean_pixel_data

from ._streams import MARK, box, even, frames, output, psot_zero, with_fragments
from ._support import read

#: Text after the real EOC that happens to end in an EOC marker (even length).
TAIL = MARK + b"  DOE^JOHN 19510829\xff\xd9"


def _decoded(ds: Dataset) -> np.ndarray:
    arr, _ = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, raw=True)
    return np.asarray(arr)


def _pillow(stream: bytes) -> np.ndarray:
    """A codestream or JP2 file decoded by Pillow (OpenJPEG through another binding); a JP2
    file without the pad byte of an odd-length fragment, which Pillow's box reader refuses."""
    if stream.startswith(b"\x00\x00\x00\x0cjP  "):
        end = 0
        while end + 8 <= len(stream):
            end += int.from_bytes(stream[end : end + 4], "big")
        stream = stream[:end]
    with Image.open(io.BytesIO(stream)) as image:
        return np.asarray(image)


def _cleaned(ds: Dataset) -> tuple[Dataset, bytes, StreamReport]:
    report = clean_pixel_data(ds)
    assert report is not None
    data = output(ds)
    return pydicom.dcmread(io.BytesIO(data)), data, report


def _trailing(report: StreamReport) -> int:
    return sum(b for kind, _, b in report.removed if kind == "trailing")


def _mr() -> tuple[Dataset, bytes]:
    ds = read("MR_small_jp2klossless.dcm")
    return ds, psot_zero(frames(ds)[0])


def _jp2(ds: Dataset, codestream: bytes) -> bytes:
    ihdr = box(b"ihdr", np.array([ds.Rows, ds.Columns], ">u4").tobytes()
               + b"\x00\x01\x8f\x07\x00\x00")
    colr = box(b"colr", b"\x01\x00\x00\x00\x00\x00\x11")
    return b"".join([b"\x00\x00\x00\x0cjP  \r\n\x87\n", box(b"ftyp", b"jp2 \0\0\0\0jp2 "),
                     box(b"jp2h", ihdr + colr), box(b"jp2c", codestream)])


class TestLastTilePartOfUnknownLength:
    def test_text_after_eoc_that_ends_in_ffd9_goes(self) -> None:
        """One frame: the tail is dropped and counted, the codestream decodes the same in
        pydicom's decoder and in Pillow."""
        ds, stream = _mr()
        before = _decoded(ds)
        planted = with_fragments(ds, [stream + TAIL])
        assert np.array_equal(_decoded(planted), before)
        after_ds, data, report = _cleaned(planted)
        assert MARK not in data
        assert _trailing(report) == len(TAIL)
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_pillow(frames(after_ds)[0]), _pillow(stream))

    def test_a_frame_does_not_swallow_the_next(self) -> None:
        """Two frames, each followed by such a tail: two frames come out, each its own."""
        ds, stream = _mr()
        single = _decoded(ds)
        ds.NumberOfFrames = 2
        planted = with_fragments(ds, [stream + TAIL, stream + TAIL])
        after_ds, data, report = _cleaned(planted)
        assert MARK not in data
        assert _trailing(report) == 2 * len(TAIL)
        out = frames(after_ds)
        assert len(out) == 2
        assert all(frame.endswith(b"\xff\xd9") and frame.count(b"\xff\x4f") == 1 for frame in out)
        decoded = _decoded(after_ds)
        assert np.array_equal(decoded[0], single)
        assert np.array_equal(decoded[1], single)

    def test_inside_a_jp2_codestream_box(self) -> None:
        """The tail inside the jp2c box, after EOC: dropped and counted, pixels the same."""
        ds, stream = _mr()
        before = _decoded(ds)
        planted = with_fragments(ds, [even(_jp2(ds, stream + TAIL))])
        assert np.array_equal(_decoded(planted), before)
        after_ds, data, report = _cleaned(planted)
        assert MARK not in data
        assert _trailing(report) == len(TAIL)
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_pillow(frames(after_ds)[0]), _pillow(_jp2(ds, stream)))

    @pytest.mark.parametrize("damage", ["no EOC", "a marker before EOC"])
    def test_without_its_own_eoc_it_is_refused(self, damage: str) -> None:
        """Without EOC the tile-part's end cannot be known: refused, never guessed."""
        ds, stream = _mr()
        if damage == "no EOC":
            bad = stream[:-2] + MARK + b"!"
        else:  # an SOT in what would be packet data (the next codestream, say)
            bad = stream[:-2] + b"\xff\x90" + MARK + b"\xff\xd9"
        with pytest.raises(PixelStreamError) as caught:
            clean_pixel_data(with_fragments(deepcopy(ds), [bad]))
        assert MARK.decode() not in str(caught.value)
