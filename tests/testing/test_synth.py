"""Tests for the synthetic CT generator that every other test suite builds its inputs from."""

from __future__ import annotations

import itertools
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from dcmwatch.testing import (
    MARKERS,
    PRIVATE_CREATOR,
    PRIVATE_GROUP,
    PhiMarkers,
    ct_series,
    ct_series_bytes,
    find_markers,
    to_bytes,
    write_series,
)

SMALL = {"rows": 64, "columns": 64}


def _read(blob: bytes) -> Dataset:
    return pydicom.dcmread(BytesIO(blob))


def _max_depth(ds: Dataset, depth: int = 0) -> int:
    deepest = depth
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                deepest = max(deepest, _max_depth(item, depth + 1))
    return deepest


@pytest.fixture(scope="module")
def series_bytes() -> list[bytes]:
    return ct_series_bytes(3, seed=7, **SMALL)


class TestRoundTrip:
    def test_reads_back_as_ct_part10(self, series_bytes: list[bytes]) -> None:
        """Every slice is a Part 10 CT Image Storage file in Explicit VR Little Endian."""
        for blob in series_bytes:
            assert blob[128:132] == b"DICM"
            ds = _read(blob)
            assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
            assert ds.SOPClassUID == CTImageStorage
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert ds.Modality == "CT"

    def test_header_is_realistically_large(self, series_bytes: list[bytes]) -> None:
        """A slice carries 80 to 100 top-level elements, like a scanner's output."""
        assert 80 <= len(_read(series_bytes[1])) <= 100

    def test_pixel_array_shape_and_dtype(self) -> None:
        """Pixels decode as signed 16-bit at the requested size."""
        ds = _read(ct_series_bytes(1, rows=48, columns=80)[0])
        arr = ds.pixel_array
        assert arr.shape == (48, 80)
        assert arr.dtype == np.int16

    def test_pixels_look_like_ct(self) -> None:
        """After the modality LUT, air, soft tissue and bone are all present."""
        ds = _read(ct_series_bytes(1, seed=3)[0])
        hu = ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)
        assert hu[0, 0] < -950  # a corner is air
        assert abs(int(np.median(hu[200:312, 200:312])) - 40) < 20  # the middle is soft tissue
        assert (hu > 600).any()  # some bone
        assert ds.RescaleType == "HU"

    def test_to_bytes_leaves_dataset_untouched(self) -> None:
        """Encoding twice gives the same bytes: to_bytes does not mutate the dataset."""
        ds = ct_series(1, **SMALL)[0]
        assert to_bytes(ds) == to_bytes(ds)


class TestSeriesShape:
    def test_series_uids_shared_instance_uids_unique(self) -> None:
        """Slices share study, series and frame of reference, but not SOP Instance UIDs."""
        series = ct_series(4, **SMALL)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            assert len({ds[keyword].value for ds in series}) == 1
        assert len({ds.SOPInstanceUID for ds in series}) == 4

    def test_slices_move_along_z(self) -> None:
        """Image Position (Patient) and Slice Location change per slice."""
        series = ct_series(3, **SMALL)
        zs = [float(ds.ImagePositionPatient[2]) for ds in series]
        assert len(set(zs)) == 3
        assert [float(ds.SliceLocation) for ds in series] == zs

    def test_each_slice_references_the_previous(self) -> None:
        """Referenced Image Sequence points at the previous slice's SOP Instance UID."""
        series = ct_series(3, **SMALL)
        for before, after in itertools.pairwise(series):
            assert after.ReferencedImageSequence[0].ReferencedSOPInstanceUID == (
                before.SOPInstanceUID
            )

    def test_slices_have_different_pixels(self) -> None:
        """Neighbouring slices are not copies of each other."""
        series = ct_series(2, **SMALL)
        assert series[0].PixelData != series[1].PixelData

    def test_nested_sequences_reach_depth_two(self, series_bytes: list[bytes]) -> None:
        """A sequence inside a sequence item exists, as de-identifiers must recurse."""
        ds = _read(series_bytes[0])
        assert _max_depth(ds) >= 2
        nested = ds.RequestAttributesSequence[0].ScheduledProtocolCodeSequence[0]
        assert nested.CodeValue

    def test_private_block_survives_round_trip(self, series_bytes: list[bytes]) -> None:
        """The ACME private block, with its UN element and private sequence, reads back."""
        ds = _read(series_bytes[0])
        block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
        assert block[0x10].value == MARKERS.private_text
        assert block[0x13].VR == "UN"
        assert MARKERS.private_text.encode() in block[0x13].value
        item = block[0x20].value[0]
        assert item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)[0x10].value == (
            MARKERS.private_text
        )

    def test_first_slice_has_an_overlay(self, series_bytes: list[bytes]) -> None:
        """Slice 0 carries a group 6000 overlay whose data matches its size."""
        ds = _read(series_bytes[0])
        assert ds[0x60000040].value == "G"
        assert len(ds[0x60003000].value) * 8 >= ds[0x60000010].value * ds[0x60000011].value

    def test_zero_slices(self) -> None:
        """An empty series is an empty list, not an error."""
        assert ct_series(0) == []


class TestDeterminism:
    def test_same_seed_same_bytes(self) -> None:
        """The same arguments give byte-identical files."""
        assert ct_series_bytes(2, seed=5, **SMALL) == ct_series_bytes(2, seed=5, **SMALL)

    def test_other_seed_other_uids_and_pixels(self) -> None:
        """A different seed changes the UIDs and the pixel noise."""
        a, b = ct_series(1, seed=1, **SMALL)[0], ct_series(1, seed=2, **SMALL)[0]
        assert a.StudyInstanceUID != b.StudyInstanceUID
        assert a.SOPInstanceUID != b.SOPInstanceUID
        assert a.PixelData != b.PixelData

    def test_other_patient_other_uids(self) -> None:
        """A second patient index gives another study for the same seed."""
        a = ct_series(1, **SMALL)[0]
        b = ct_series(1, patient_index=1, **SMALL)[0]
        assert a.StudyInstanceUID != b.StudyInstanceUID


class TestMarkers:
    def test_every_marker_is_planted(self, series_bytes: list[bytes]) -> None:
        """Each marker string occurs in the encoded bytes of every slice."""
        for blob in series_bytes:
            assert find_markers(blob) == [
                *MARKERS.strings(),
                *MARKERS.name_components(),
            ]

    def test_strings_lists_every_field(self) -> None:
        """strings() includes the raw DA birth date and the private text."""
        strings = MARKERS.strings()
        assert len(strings) == 11
        assert "19010203" in strings
        assert MARKERS.private_text in strings

    def test_find_markers_on_clean_data(self) -> None:
        """Data without markers yields an empty list, for bytes and text alike."""
        assert find_markers(b"\x00" * 1000 + b"ANONYMOUS^PATIENT") == []
        assert find_markers('{"event": "file.processed", "file_id": "ab12"}') == []

    def test_find_markers_catches_name_components(self) -> None:
        """A reformatted name still counts as a leak through its components."""
        assert "ZZPHINAME" in find_markers("patient=MARKER, ZZPHINAME")
        assert find_markers(b"x ZZPHIID4711 y") == ["ZZPHIID4711"]

    def test_find_markers_with_custom_markers(self) -> None:
        """Custom markers are planted and found instead of the defaults."""
        custom = PhiMarkers(patient_id="QQSECRETID")
        blob = ct_series_bytes(1, markers=custom, **SMALL)[0]
        assert "QQSECRETID" in find_markers(blob, custom)
        assert "ZZPHIID4711" not in find_markers(blob)

    def test_patient_index_zero_keeps_default_markers(self) -> None:
        """Index 0 is the MARKERS patient."""
        assert MARKERS.for_patient(0) is MARKERS

    def test_second_patient_shares_no_marker(self) -> None:
        """Patient 1's data contains none of patient 0's markers, not even as substrings."""
        blob = ct_series_bytes(1, patient_index=1, **SMALL)[0]
        assert find_markers(blob) == []
        second = MARKERS.for_patient(1)
        assert find_markers(blob, second) == [*second.strings(), *second.name_components()]
        assert _read(blob).PatientBirthDate == "19020203"

    def test_negative_patient_index_rejected(self) -> None:
        """A negative patient index is a caller error."""
        with pytest.raises(ValueError, match="patient_index"):
            MARKERS.for_patient(-1)


class TestWriteSeries:
    def test_writes_n_readable_files(self, tmp_path: Path) -> None:
        """write_series writes n files that pydicom reads back."""
        paths = write_series(tmp_path / "inbox", 3, **SMALL)
        assert len(paths) == 3
        assert sorted(tmp_path.joinpath("inbox").iterdir()) == paths
        assert len({pydicom.dcmread(p).SOPInstanceUID for p in paths}) == 3

    def test_file_names_carry_phi(self, tmp_path: Path) -> None:
        """File names are scanner-like and contain the patient name, so tests can catch leaks."""
        paths = write_series(tmp_path, 2, patient_index=2, **SMALL)
        second = MARKERS.for_patient(2)
        assert [p.name for p in paths] == [
            f"{second.patient_name.split('^')[0]}_0000.dcm",
            f"{second.patient_name.split('^')[0]}_0001.dcm",
        ]
        assert find_markers(paths[0].name, second)

    def test_files_equal_in_memory_bytes(self, tmp_path: Path) -> None:
        """Files on disk hold exactly what ct_series_bytes returns."""
        paths = write_series(tmp_path, 2, seed=9, **SMALL)
        assert [p.read_bytes() for p in paths] == ct_series_bytes(2, seed=9, **SMALL)
