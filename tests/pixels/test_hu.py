"""Modality LUT arithmetic: exact HU comparisons, inverse, clipping."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dcmwatch.pixels.hu import ModalityLut, modality_luts

slopes = st.sampled_from([1.0, 0.5, 2.0, 0.1, 3.7, -1.0, -0.25, 1e-3, 1234.5])
intercepts = st.floats(-5000, 5000, allow_nan=False)
limits = st.floats(-70000, 70000, allow_nan=False)


class TestLinearSelect:
    @settings(max_examples=300, deadline=None)
    @given(slope=slopes, intercept=intercepts, limit=limits, signed=st.booleans())
    def test_select_equals_float_reference(
        self, slope: float, intercept: float, limit: float, signed: bool
    ) -> None:
        """The integer boundary search selects exactly the pixels a float64 HU comparison does."""
        lo, hi = (-32768, 32767) if signed else (0, 65535)
        stored = np.arange(lo, hi + 1, dtype=np.int16 if signed else np.uint16)
        lut = ModalityLut(lo, hi, slope=slope, intercept=intercept)
        hu = stored.astype(np.float64) * slope + intercept
        assert np.array_equal(lut.select(stored, "<", limit), hu < limit)
        assert np.array_equal(lut.select(stored, ">", limit), hu > limit)

    @settings(max_examples=200, deadline=None)
    @given(slope=slopes, intercept=intercepts, target=limits)
    def test_nearest_stored_is_nearest(self, slope: float, intercept: float, target: float) -> None:
        """The inverse is rounded to the nearest representable HU and clipped to the range."""
        lut = ModalityLut(-2048, 2047, slope=slope, intercept=intercept)
        s = lut.nearest_stored(target)
        assert -2048 <= s <= 2047
        hu = np.arange(-2048, 2048) * slope + intercept
        assert abs(lut.value(s) - target) == np.min(np.abs(hu - target))

    @settings(max_examples=200, deadline=None)
    @given(slope=slopes, intercept=intercepts, a=limits, b=limits)
    def test_clip_lands_inside_the_interval(
        self, slope: float, intercept: float, a: float, b: float
    ) -> None:
        """After hu_clip every pixel's HU lies in [min, max] when representable; pixels already
        inside are untouched."""
        low, high = min(a, b), max(a, b)
        stored = np.arange(-32768, 32768, dtype=np.int16)
        before = stored.astype(np.float64) * slope + intercept
        representable = ((before >= low) & (before <= high)).any()
        lut = ModalityLut(-32768, 32767, slope=slope, intercept=intercept)
        if not representable:
            return
        work = stored.copy()
        lut.clip(work, low, high)
        after = work.astype(np.float64) * slope + intercept
        assert after.min() >= low and after.max() <= high
        inside = (before >= low) & (before <= high)
        assert np.array_equal(work[inside], stored[inside])

    @settings(max_examples=200, deadline=None)
    @given(slope=slopes, intercept=intercepts, limit=limits)
    def test_window_edges_against_float_reference(
        self, slope: float, intercept: float, limit: float
    ) -> None:
        """The stored value with the highest value <= limit, and with the lowest value > limit,
        equal a float64 search over every stored value (None when there is none)."""
        stored = np.arange(-2048, 2048)
        values = stored * slope + intercept
        lut = ModalityLut(-2048, 2047, slope=slope, intercept=intercept)
        below, above = values <= limit, values > limit
        expected_below = stored[below][np.argmax(values[below])] if below.any() else None
        expected_above = stored[above][np.argmin(values[above])] if above.any() else None
        assert lut.nearest_at_or_below(limit) == expected_below
        assert lut.nearest_above(limit) == expected_above


class TestModalityLuts:
    def test_rescale_attributes(self) -> None:
        """(0028,1052)/(0028,1053) give one linear LUT with its Rescale Type."""
        ds = Dataset()
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "2", "-1024", "HU"
        (lut,) = modality_luts(ds, 1, -2048, 2047)
        assert (lut.slope, lut.intercept, lut.rescale_type, lut.present) == (2, -1024, "HU", True)

    def test_no_modality_lut_is_marked_absent(self) -> None:
        """An MR image has no modality LUT: HU actions must refuse it."""
        (lut,) = modality_luts(Dataset(), 1, 0, 4095)
        assert not lut.present

    def test_modality_lut_sequence_table(self) -> None:
        """A (0028,3000) table maps stored values; select and inverse use the table."""
        ds = Dataset()
        ds.PixelRepresentation = 0
        ds.BitsStored = 4
        item = Dataset()
        item.LUTDescriptor = [4, 2, 16]
        item.ModalityLUTType = "HU"
        item.LUTData = [100, 200, 300, 400]
        ds.ModalityLUTSequence = Sequence([item])
        (lut,) = modality_luts(ds, 1, 0, 15)
        stored = np.arange(16, dtype=np.uint16)
        assert lut.apply(stored).tolist() == [100] * 3 + [200, 300] + [400] * 11
        assert lut.select(stored, "<", 250).tolist() == [True] * 4 + [False] * 12
        assert lut.nearest_stored(290) == 4
        assert (lut.nearest_at_or_below(250), lut.nearest_above(250)) == (3, 4)
        assert (lut.nearest_at_or_below(99), lut.nearest_above(400)) == (None, None)

    def test_per_frame_functional_groups(self) -> None:
        """Enhanced images may rescale each frame differently."""
        ds = Dataset()
        groups = []
        for intercept in ("-1024", "-1000"):
            pvt = Dataset()
            pvt.RescaleSlope, pvt.RescaleIntercept = "1", intercept
            group = Dataset()
            group.PixelValueTransformationSequence = Sequence([pvt])
            groups.append(group)
        ds.PerFrameFunctionalGroupsSequence = Sequence(groups)
        luts = modality_luts(ds, 2, -32768, 32767)
        assert [lut.intercept for lut in luts] == [-1024, -1000]
