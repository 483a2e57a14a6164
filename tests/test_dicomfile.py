"""Bytes to Dataset: truncation, non-DICOM input, deflate bombs, files without a header."""

from __future__ import annotations

import zlib
from io import BytesIO

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian

from dcmwatch import dicomfile
from dcmwatch.errors import EmptyFileError, NotDicomError, TooLargeError, TruncatedError
from dcmwatch.testing import ct_series_bytes

LIMIT = 1 << 30


def _bundled(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None, name
    with open(path, "rb") as fh:
        return fh.read()


class TestDecode:
    @pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm",
                                      "JPEG2000.dcm", "MR_small_bigendian.dcm"])
    def test_complete_files_decode(self, name: str) -> None:
        """Bundled complete files (sequences, encapsulated pixels, big endian) are accepted."""
        ds = dicomfile.decode(_bundled(name), max_inflated=LIMIT)
        assert "SOPInstanceUID" in ds

    # Not rtplan.dcm: a non-image cut exactly between two elements is a valid shorter dataset;
    # nothing in DICOM says where a dataset ends. Images are caught by their missing pixels.
    @pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm"])
    def test_every_truncation_is_detected(self, name: str) -> None:
        """An image cut anywhere after its header is reported truncated, never silently short."""
        data = _bundled(name)
        full = pydicom.dcmread(BytesIO(data))
        for cut in range(140, len(data) - 1, max(1, len(data) // 400)):
            try:
                ds = dicomfile.decode(data[:cut], max_inflated=LIMIT)
            except (TruncatedError, NotDicomError):
                continue
            # Only a cut in what follows Pixel Data (trailing padding) may pass, pixels whole.
            assert ds.PixelData == full.PixelData, cut

    def test_non_image_cut_inside_an_element(self) -> None:
        """A non-image cut inside an element (the usual case) is truncated too."""
        data = _bundled("rtplan.dcm")
        for cut in range(400, len(data) - 1, 37):
            try:
                ds = dicomfile.decode(data[:cut], max_inflated=LIMIT)
            except (TruncatedError, NotDicomError):
                continue
            # accepted only when the cut fell exactly on an element boundary
            assert len(ds) < len(pydicom.dcmread(BytesIO(data)))

    def test_synthetic_series_truncated_inside_pixel_data(self) -> None:
        """The commonest case, a slice cut inside Pixel Data, is truncated (not not_dicom)."""
        data = ct_series_bytes(1, rows=32, columns=32)[0]
        with pytest.raises(TruncatedError):
            dicomfile.decode(data[:-10], max_inflated=LIMIT)

    def test_empty_and_random(self) -> None:
        """Empty input and random bytes have their own reasons."""
        with pytest.raises(EmptyFileError):
            dicomfile.decode(b"", max_inflated=LIMIT)
        with pytest.raises(NotDicomError):
            dicomfile.decode(bytes(range(256)) * 20, max_inflated=LIMIT)

    def test_dataset_without_preamble_or_meta_is_read_leniently(self) -> None:
        """A bare dataset (no preamble, no file meta) is read and given a transfer syntax."""
        ds = pydicom.dcmread(BytesIO(_bundled("CT_small.dcm")))
        buf = BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        # strip preamble + file meta: keep only the dataset bytes
        data = buf.getvalue()
        start = dicomfile._dataset_offset(data)
        assert start is not None
        bare = dicomfile.decode(data[start:], max_inflated=LIMIT)
        assert bare.SOPInstanceUID == ds.SOPInstanceUID
        assert "TransferSyntaxUID" in bare.file_meta

    def test_deflate_bomb_is_refused_before_inflating(self) -> None:
        """A deflated dataset that would inflate past the limit is refused."""
        data = _bundled("CT_small.dcm")
        start = dicomfile._dataset_offset(data)
        assert start is not None
        ds = pydicom.dcmread(BytesIO(data))
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        buf = BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        deflated = buf.getvalue()
        assert dicomfile.decode(deflated, max_inflated=LIMIT).SOPInstanceUID == ds.SOPInstanceUID
        with pytest.raises(TooLargeError):
            dicomfile.decode(deflated, max_inflated=4096)

    def test_corrupt_deflate_stream(self) -> None:
        """Garbage where deflated data should be is not_dicom, not a crash."""
        data = _bundled("CT_small.dcm")
        ds = pydicom.dcmread(BytesIO(data))
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        buf = BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        raw = buf.getvalue()
        start = dicomfile._dataset_offset(raw)
        assert start is not None
        with pytest.raises((NotDicomError, TruncatedError)):
            dicomfile.decode(raw[:start] + zlib.compress(b"x")[:3] + b"\xff" * 50,
                             max_inflated=LIMIT)


class TestEncode:
    def test_round_trip_sets_our_implementation_and_meta(self) -> None:
        """Encoded files carry our implementation UID and the instance's UIDs in the meta."""
        ds = dicomfile.decode(_bundled("CT_small.dcm"), max_inflated=LIMIT)
        ds.file_meta.SourceApplicationEntityTitle = "SCANNER1"
        out = pydicom.dcmread(BytesIO(dicomfile.encode(ds)))
        assert out.file_meta.ImplementationClassUID == dicomfile.IMPLEMENTATION_UID
        assert out.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert "SourceApplicationEntityTitle" not in out.file_meta
