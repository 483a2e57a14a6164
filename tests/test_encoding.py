"""The encoding facts several modules share: declared pixel bytes and the long VRs.

The oracles are pydicom's: ``get_expected_length`` for the size of native Pixel Data, and
``EXPLICIT_VR_LENGTH_32`` for the VRs with a 4-byte length. The two call sites that used to
count pixel bytes each their own way (the reader's check, the pixel codec) must agree on every
photometric interpretation, and a real subsampled file is judged by its true length.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels.utils import get_expected_length
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from dcmwatch import dicomfile, encoding
from dcmwatch.errors import PixelDataError
from dcmwatch.pixels import codec
from dcmwatch.pixels.errors import PixelDataTooLargeError

LIMIT = 1 << 30
#: Every photometric interpretation PS3.3 C.7.6.3.1.2 defines (retired ones included), with its
#: Samples per Pixel.
PHOTOMETRIC = {
    "MONOCHROME1": 1, "MONOCHROME2": 1, "PALETTE COLOR": 1, "RGB": 3, "HSV": 3, "ARGB": 4,
    "CMYK": 4, "YBR_FULL": 3, "YBR_FULL_422": 3, "YBR_PARTIAL_422": 3, "YBR_PARTIAL_420": 3,
    "YBR_ICT": 3, "YBR_RCT": 3,
}


def _image(photometric: str, rows: int, columns: int, frames: int, bits: int) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = PHOTOMETRIC[photometric]
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = b""
    return ds


@given(
    photometric=st.sampled_from(sorted(PHOTOMETRIC)),
    rows=st.integers(1, 40),
    columns=st.integers(1, 40).map(lambda c: 2 * c),  # subsampled rows hold pairs of pixels
    frames=st.integers(1, 4),
    bits=st.sampled_from([1, 8, 16, 32]),
)
def test_reader_and_codec_count_the_same_bytes(
    photometric: str, rows: int, columns: int, frames: int, bits: int
) -> None:
    """The reader's check and the codec's layout give pydicom's expected length."""
    if bits == 1 and PHOTOMETRIC[photometric] > 1:
        return  # 1-bit colour: pydicom counts it otherwise, and no decoder reads it
    ds = _image(photometric, rows, columns, frames, bits)
    reader = dicomfile._declared_pixel_bytes(ds)
    layout = codec.read_layout(ds).nbytes
    assert reader == layout == get_expected_length(ds)


@pytest.mark.parametrize("photometric", sorted(PHOTOMETRIC))
def test_subsampled_images_count_two_samples_a_pixel(photometric: str) -> None:
    """Independent of pydicom: YBR_FULL_422 stores Y Y Cb Cr per pair of pixels (PS3.3
    C.7.6.3.1.2), every other interpretation all its samples for each pixel."""
    ds = _image(photometric, 10, 20, 2, 16)
    per_pixel = 2 if photometric == "YBR_FULL_422" else PHOTOMETRIC[photometric]
    expected = 10 * 20 * 2 * per_pixel * 2
    assert dicomfile._declared_pixel_bytes(ds) == codec.read_layout(ds).nbytes == expected


def _ybr_422() -> bytes:
    path = get_testdata_file("SC_ybr_full_422_uncompressed.dcm", download=False)
    if path is None:
        pytest.skip("SC_ybr_full_422_uncompressed.dcm is not bundled with this pydicom")
    return Path(path).read_bytes()


def _with_pixel_bytes(data: bytes, size: int) -> bytes:
    ds = pydicom.dcmread(BytesIO(data))
    value = ds.PixelData
    ds.PixelData = (value * 2)[:size]
    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


class TestSubsampledFile:
    """SC_ybr_full_422_uncompressed.dcm: 100 x 100 8-bit YBR_FULL_422, 20,000 bytes."""

    def test_a_file_of_the_right_length_is_accepted(self) -> None:
        ds = dicomfile.decode(_ybr_422(), max_inflated=LIMIT)
        assert len(ds.PixelData) == 100 * 100 * 2
        dicomfile.check_pixels(ds, max_pixel_bytes=LIMIT, verify_compressed=True)
        layout = codec.read_layout(ds)
        codec.check_size(layout, len(ds.PixelData))  # exactly the declared size: within it
        with pytest.raises(PixelDataTooLargeError):
            codec.check_size(layout, len(ds.PixelData) - 1)

    @pytest.mark.parametrize("size", [100 * 100 * 2 - 2, 100 * 100 * 3])
    def test_a_file_of_another_length_is_refused(self, size: int) -> None:
        """Short by one pixel pair, or as long as a full-resolution image (3 samples)."""
        data = _with_pixel_bytes(_ybr_422(), size)
        ds = dicomfile.decode(data, max_inflated=LIMIT)
        assert len(ds.PixelData) == size
        with pytest.raises(PixelDataError):
            dicomfile.check_pixels(ds, max_pixel_bytes=LIMIT, verify_compressed=True)


def test_long_vrs_are_the_standards() -> None:
    """PS3.5 Table 7.1-1, as pydicom's reader knows it; the bytes form is the same set."""
    assert {str(vr) for vr in EXPLICIT_VR_LENGTH_32} == encoding.LONG_VRS
    assert {vr.decode() for vr in encoding.LONG_VRS_BYTES} == encoding.LONG_VRS
