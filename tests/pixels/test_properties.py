"""Property tests over random pixel formats: write-back keeps dtype and length, masks are exact."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dcmwatch.pixels import MaskOutsideImageError

from ._support import decode, roundtrip, rule, step_for, synthetic


@st.composite
def images(draw: st.DrawFn) -> dict[str, Any]:
    bits_allocated = draw(st.sampled_from([8, 16, 32]))
    bits_stored = draw(st.integers(1 if bits_allocated == 8 else 2, bits_allocated))
    signed = draw(st.booleans())
    samples = draw(st.sampled_from([1, 3]))
    frames = draw(st.integers(1, 3))
    rows, columns = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    lo = -(1 << (bits_stored - 1)) if signed else 0
    hi = (1 << (bits_stored - 1)) - 1 if signed else (1 << bits_stored) - 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits_allocated // 8}")
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    pixels = rng.integers(lo, hi, size=(frames, rows, columns, samples), endpoint=True)
    return {
        "pixels": pixels.astype(dtype),
        "bits_stored": bits_stored,
        "photometric": "RGB" if samples == 3 else "MONOCHROME2",
        "transfer_syntax": draw(
            st.sampled_from([ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
        ),
        "planar": draw(st.sampled_from([0, 1])) if samples == 3 else 0,
        "lo": lo,
        "hi": hi,
    }


rects = st.tuples(
    st.integers(0, 14), st.integers(0, 14), st.integers(1, 14), st.integers(1, 14)
)


class TestMaskProperties:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(image=images(), rect=rects, fill=st.integers(-(2**33), 2**33))
    def test_mask_writeback(self, image: dict[str, Any], rect: tuple[int, ...], fill: int) -> None:
        """Same dtype, same byte length; outside unchanged; inside = fill clipped into range; a
        rectangle reaching past the image is refused."""
        lo, hi = image.pop("lo"), image.pop("hi")
        ds = synthetic(**image)
        length = len(ds.PixelData)
        before = decode(ds)
        step = step_for([rule([{"type": "mask", "rects": [list(rect)], "fill": fill}])])
        x, y, w, h = rect
        if x + w > ds.Columns or y + h > ds.Rows:
            with pytest.raises(MaskOutsideImageError):
                step(ds)
            return
        out = step(ds)
        assert len(out.PixelData) == length
        after = decode(roundtrip(out))
        assert after.dtype.itemsize == before.dtype.itemsize
        inside = np.zeros(before.shape[1:3], dtype=bool)
        inside[y : y + h, x : x + w] = True
        assert (after[:, inside] == min(max(fill, lo), hi)).all()
        assert np.array_equal(after[:, ~inside], before[:, ~inside])


class TestThresholdProperties:
    @settings(max_examples=100, deadline=None)
    @given(
        slope=st.sampled_from([1.0, 0.5, 2.0, 0.25, 3.0]),
        intercept=st.integers(-3000, 100),
        below=st.integers(-2000, 2000),
        fill_hu=st.integers(-1500, 1500),
        bits_stored=st.integers(10, 16),
        signed=st.booleans(),
        seed=st.integers(0, 1000),
    )
    def test_threshold_exact(
        self, slope: float, intercept: int, below: int, fill_hu: int, bits_stored: int,
        signed: bool, seed: int,
    ) -> None:
        """Pixels below the limit get the stored value nearest fill_hu; others are unchanged."""
        lo = -(1 << (bits_stored - 1)) if signed else 0
        hi = (1 << (bits_stored - 1)) - 1 if signed else (1 << bits_stored) - 1
        rng = np.random.default_rng(seed)
        pixels = rng.integers(lo, hi, size=(1, 8, 8, 1), endpoint=True).astype(
            np.int16 if signed else np.uint16)
        ds = synthetic(pixels, bits_stored=bits_stored, modality="CT", slope=slope,
                       intercept=intercept)
        step = step_for([rule([{"type": "hu_threshold", "below": below, "fill_hu": fill_hu}],
                              {"Modality": "CT"})])
        after = decode(roundtrip(step(ds)))
        hu_before = pixels.astype(float) * slope + intercept
        hu_after = after.astype(float) * slope + intercept
        hit = hu_before < below
        candidates = np.arange(lo, hi + 1) * slope + intercept
        nearest = candidates[np.argmin(np.abs(candidates - fill_hu))]
        assert (hu_after[hit] == nearest).all()
        assert np.array_equal(after[~hit], pixels[~hit])
