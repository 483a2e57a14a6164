"""The raw header fast path reads exactly what pydicom reads, on every bundled file."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement

from dcmwatch.pixels import header
from dcmwatch.pixels.masks import fill_where

from ._support import bundled_path
from .test_bundled import EXTRA
from .test_step import FORMATS, QUARANTINED

NUMBERS = {
    0x00280002: "SamplesPerPixel", 0x00280008: "NumberOfFrames", 0x00280010: "Rows",
    0x00280011: "Columns", 0x00280100: "BitsAllocated", 0x00280101: "BitsStored",
    0x00280103: "PixelRepresentation", 0x00280006: "PlanarConfiguration",
    0x00281052: "RescaleIntercept", 0x00281053: "RescaleSlope",
}
TEXTS = {0x00280004: "PhotometricInterpretation", 0x00080060: "Modality",
         0x00080008: "ImageType", 0x00280301: "BurnedInAnnotation", 0x00080018: "SOPInstanceUID",
         0x00080070: "Manufacturer", 0x00081090: "ManufacturerModelName",
         0x00281054: "RescaleType", 0x00080020: "StudyDate"}


def _first(value: object) -> object:
    if isinstance(value, str | bytes | int | float) or value is None:
        return value
    return next(iter(value), None)  # type: ignore[call-overload]


@pytest.mark.parametrize("name", sorted(set(FORMATS + QUARANTINED + EXTRA) - {"badVR.dcm"}))
def test_raw_reads_equal_pydicom(name: str) -> None:
    """For each attribute the step reads: the raw parse (first, while raw) equals pydicom's."""
    fast = pydicom.dcmread(bundled_path(name))
    slow = pydicom.dcmread(bundled_path(name))
    for tag, keyword in NUMBERS.items():
        got = header.number(fast, tag)
        want = _first(slow[tag].value) if tag in slow else None
        if want in (None, ""):
            assert got is None, keyword
        else:
            assert float(got) == float(want), keyword  # type: ignore[arg-type]
    for tag, keyword in TEXTS.items():
        want = slow[tag].value if tag in slow else None
        expected = [] if want in (None, "") else (
            [str(want).strip()] if isinstance(want, str) else [str(v).strip() for v in want]
        )
        assert header.texts(fast, tag) == expected, keyword


def test_raw_elements_stay_raw() -> None:
    """Reading through the fast path converts nothing (that is where the time goes)."""
    ds = pydicom.dcmread(bundled_path("CT_small.dcm"))
    header.number(ds, 0x00280010)
    header.text(ds, 0x00280004)
    assert isinstance(ds.get_item(0x00280010), RawDataElement)
    assert isinstance(ds.get_item(0x00280004), RawDataElement)


def test_non_ascii_text_goes_through_pydicom() -> None:
    """A value with bytes outside printable ASCII is decoded by pydicom (its character set)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    raw = RawDataElement(pydicom.tag.Tag(0x00080070), "LO", 6, "Müller".encode("latin-1"), 0,
                         False, True)
    ds[0x00080070] = raw
    assert not header.is_raw_ascii(ds, 0x00080070)
    assert header.texts(ds, 0x00080070) == ["Müller"]


def test_big_endian_numbers() -> None:
    ds = pydicom.dcmread(bundled_path("MR_small_bigendian.dcm"))
    assert header.number(ds, 0x00280010) == 64 and header.number(ds, 0x00280100) == 16


class TestFillWhere:
    @given(
        dtype=st.sampled_from([np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32]),
        seed=st.integers(0, 2**32 - 1),
        fill_at=st.floats(0, 1),
    )
    def test_equals_boolean_assignment(self, dtype: type, seed: int, fill_at: float) -> None:
        """Exact for every dtype, every fill (the wrap-around of fill - value included)."""
        info = np.iinfo(dtype)
        rng = np.random.default_rng(seed)
        values = rng.integers(info.min, info.max, size=(2, 9, 7, 1), endpoint=True, dtype=dtype)
        where = rng.random(values.shape) < 0.5
        fill = int(info.min + (int(info.max) - int(info.min)) * fill_at)
        expected = values.copy()
        expected[where] = fill
        fill_where(values, values.dtype.type(fill), where)
        assert values.dtype == dtype
        assert np.array_equal(values, expected)

    def test_big_endian_view(self) -> None:
        values = np.array([[1, -2], [3, -4]], dtype=">i2")
        fill_where(values, values.dtype.type(-32768), values < 0)
        assert values.dtype == np.dtype(">i2") and values.tolist() == [[1, -32768], [3, -32768]]


class TestCopyOnWrite:
    @pytest.mark.parametrize("mask_first", [False, True])
    def test_file_bytes_are_never_written(self, mask_first: bool) -> None:
        """The fast path views the file's own bytes read-only: editing never touches them, in
        either action order, and the result is the same."""
        from dcmwatch.pixels import PixelRule, PixelSettings, make_pixel_step

        actions = [{"type": "hu_threshold", "below": -500, "fill_hu": -1000},
                   {"type": "mask", "rects": [[0, 0, 10, 5]], "fill_hu": 3000}]
        if mask_first:
            actions.reverse()
        rule = PixelRule.model_validate({"name": "r", "match": {"Modality": "CT"},
                                         "actions": actions})
        ds = pydicom.dcmread(bundled_path("CT_small.dcm"))
        original = ds.PixelData
        snapshot = bytes(original)
        make_pixel_step([rule], PixelSettings(), lambda u: u + ".1")(ds)
        assert original == snapshot and ds.PixelData != snapshot
        ref = pydicom.dcmread(bundled_path("CT_small.dcm"))
        hu = ref.pixel_array * float(ref.RescaleSlope) + float(ref.RescaleIntercept)
        out = np.frombuffer(ds.PixelData, "<i2").reshape(hu.shape)
        out_hu = out * float(ref.RescaleSlope) + float(ref.RescaleIntercept)
        assert (out_hu[:5, :10] == 3000).all()
        rest = np.ones(hu.shape, dtype=bool)
        rest[:5, :10] = False
        assert (out_hu[rest & (hu < -500)] == -1000).all()
        assert np.array_equal(out_hu[rest & (hu >= -500)], hu[rest & (hu >= -500)])

    def test_blend_reads_only(self) -> None:
        from dcmwatch.pixels.masks import blend

        source = np.array([5, -3, 7, -9], dtype=np.int16)
        source.flags.writeable = False
        out = blend(source, np.int16(-1000), source < 0)
        assert out.tolist() == [5, -1000, 7, -1000] and source.tolist() == [5, -3, 7, -9]
        assert out.dtype == np.int16
