"""The default fill renders black in the image's own display, and leaves the rest readable.

Oracles: pydicom's `apply_modality_lut` / `apply_voi_lut` on the written output, and the Rescale
values as dcmdump (dcmtk) reads them from the output file, never `dcmwatch.pixels.hu`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

from dcmwatch.pixels import PixelSettings, render_preview

from ._support import decode, read, roundtrip, rule, step_for, synthetic, to_bytes

RECT = [10, 20, 30, 40]  # columns 10..39, rows 20..59


def _inside(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    inside = np.zeros(shape, dtype=bool)
    inside[20:60, 10:40] = True
    return inside


def _masked(ds: pydicom.Dataset, *extra: dict[str, Any]) -> pydicom.Dataset:
    return roundtrip(step_for([rule([{"type": "mask", "rects": [RECT]}, *extra])])(ds))


def _dcmdump_rescale(path: Path) -> tuple[float, float]:
    """(slope, intercept) as dcmtk reads them from the file."""
    out = subprocess.run(
        ["dcmdump", "-q", "+P", "0028,1053", "+P", "0028,1052", str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    values = dict(re.findall(r"\((0028,105[23])\) DS \[([^\]]*)\]", out))
    return float(values["0028,1053"]), float(values["0028,1052"])


class TestHounsfield:
    @pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk is not installed")
    def test_ct_mask_is_air(self, tmp_path: Path) -> None:
        """CT: the masked pixels hold -1000 HU by pydicom's modality LUT and by dcmdump's Rescale
        values; the Pixel Padding Value (-2000 stored here) is not the fill; the rest is kept."""
        ds = read("CT_small.dcm")
        assert int(ds.PixelPaddingValue) == -2000
        before = decode(ds)[0, :, :, 0]
        path = tmp_path / "out.dcm"
        path.write_bytes(to_bytes(step_for([rule([{"type": "mask", "rects": [RECT]}])])(ds)))
        out = pydicom.dcmread(path)
        stored = out.pixel_array
        inside = _inside(stored.shape)
        assert (apply_modality_lut(stored, out)[inside] == -1000).all()
        slope, intercept = _dcmdump_rescale(path)
        assert (stored[inside] * slope + intercept == -1000).all()
        assert (stored[inside] != -2000).all()
        assert np.array_equal(stored[~inside], before[~inside])

    def test_rescale_type_hu_on_another_modality(self) -> None:
        """Rescale Type HU makes an image a HU image whatever its Modality."""
        ds = synthetic(np.full((1, 64, 64, 1), 1500, np.int16), slope=0.5, intercept=-1024)
        ds.RescaleType = "HU"
        out = _masked(ds)
        assert (apply_modality_lut(out.pixel_array, out)[_inside((64, 64))] == -1000).all()

    def test_per_frame_rescale(self) -> None:
        """Enhanced CT with a rescale per frame: each frame's fill is -1000 HU in its own."""
        ds = synthetic(np.full((2, 64, 64, 1), 1500, np.int16), modality="CT")
        groups = []
        for intercept in ("-1024", "-1000"):
            pvt = pydicom.Dataset()
            pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = "1", intercept, "HU"
            group = pydicom.Dataset()
            group.PixelValueTransformationSequence = pydicom.Sequence([pvt])
            groups.append(group)
        ds.PerFrameFunctionalGroupsSequence = pydicom.Sequence(groups)
        stored = decode(_masked(ds))[:, :, :, 0]
        inside = _inside((64, 64))
        assert (stored[0][inside] - 1024 == -1000).all()
        assert (stored[1][inside] - 1000 == -1000).all()

    def test_air_below_the_stored_range_is_clipped(self) -> None:
        """An unsigned CT with intercept 0 cannot hold -1000 HU: the lowest stored value."""
        ds = synthetic(np.full((1, 64, 64, 1), 1000, np.uint16), bits_stored=12, modality="CT",
                       slope=1, intercept=0)
        assert (_masked(ds).pixel_array[_inside((64, 64))] == 0).all()


class TestWindowed:
    def test_black_under_the_header_window(self) -> None:
        """MR (no HU) with Window 600/1600: the fill renders as the window's black under pydicom's
        VOI LUT, and it is not the stored minimum."""
        out = _masked(read("MR_small.dcm"))
        stored = out.pixel_array
        shown = apply_voi_lut(apply_modality_lut(stored, out), out)
        black = apply_voi_lut(np.array([-32768.0]), out)[0]
        inside = _inside(stored.shape)
        assert (shown[inside] == black).all()
        assert (stored[inside] > -32768).all()

    def test_black_under_the_rules_window(self) -> None:
        """A window action in the rule is the display the fill must be black in."""
        extra = {"type": "window", "center": 1000, "width": 100}
        out = _masked(read("MR_small.dcm"), extra)
        assert float(out.WindowCenter) == 1000
        shown = apply_voi_lut(out.pixel_array.astype(np.float64), out)
        assert (shown[_inside((64, 64))] == shown.min()).all()
        assert (out.pixel_array[_inside((64, 64))] <= 950).all()

    def test_monochrome1_black_is_above_the_window(self) -> None:
        """MONOCHROME1 shows high values dark: the fill lies above the window's upper edge."""
        ds = synthetic(np.full((1, 64, 64, 1), 100, np.uint16), bits_stored=12,
                       photometric="MONOCHROME1")
        ds.WindowCenter, ds.WindowWidth = "1000", "500"
        stored = _masked(ds).pixel_array
        assert (stored[_inside((64, 64))] == 1250).all()  # LINEAR: above 1000 - 0.5 + 249.5
        shown = apply_voi_lut(stored.astype(np.float64), ds)
        assert (shown[_inside((64, 64))] == apply_voi_lut(np.array([4095.0]), ds)[0]).all()


class TestWindowProperty:
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        bits=st.sampled_from([8, 12, 16]),
        signed=st.booleans(),
        slope=st.sampled_from([1.0, 0.5, 2.0, 3.7, -1.0, -0.25]),
        intercept=st.integers(-3000, 3000),
        center=st.integers(-5000, 5000),
        width=st.integers(1, 6000),
        inverted=st.booleans(),
    )
    def test_fill_is_the_windows_black_nearest_the_edge(
        self, bits: int, signed: bool, slope: float, intercept: int, center: int, width: int,
        inverted: bool,
    ) -> None:
        """A non-HU image with a window: when some stored value renders black under pydicom's
        VOI LUT (the output of the lowest input for MONOCHROME2, of the highest for
        MONOCHROME1), the fill renders black and lies within one stored step of the black value
        nearest the window; otherwise it is the darkest stored value."""
        lo = -(1 << (bits - 1)) if signed else 0
        hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        dtype = np.dtype(f"{'i' if signed else 'u'}{2 if bits > 8 else 1}")
        ds = synthetic(np.zeros((1, 64, 64, 1), dtype), bits_stored=bits, modality="MR",
                       slope=slope, intercept=intercept,
                       photometric="MONOCHROME1" if inverted else "MONOCHROME2")
        ds.WindowCenter, ds.WindowWidth = str(center), str(width)
        every = np.arange(lo, hi + 1)
        values = apply_modality_lut(every, ds)
        shown = apply_voi_lut(values, ds)
        black_output = apply_voi_lut(np.array([1e12 if inverted else -1e12]), ds)[0]
        black = shown == black_output
        stored = decode(_masked(ds))[0, :, :, 0][_inside((64, 64))]
        assert len(set(stored.tolist())) == 1
        fill = int(stored[0])
        if not black.any():
            darkest = every[np.argmax(values)] if inverted else every[np.argmin(values)]
            assert fill == darkest
            return
        nearest = values[black].min() if inverted else values[black].max()
        assert black[fill - lo]
        assert abs(values[fill - lo] - nearest) <= abs(slope)


class TestPreview:
    def test_ct_without_a_window_is_not_washed_out(self) -> None:
        """The masked region is black and the rest of the CT spans most of the grey range."""
        img = render_preview(read("CT_small.dcm"), [rule([{"type": "mask", "rects": [RECT]}])],
                             PixelSettings())[:, :, 0]
        interior = np.zeros(img.shape, dtype=bool)
        interior[21:59, 11:39] = True
        assert (img[interior] == 0).all()
        rest = img[~_inside(img.shape)]
        assert np.percentile(rest, 99) - np.percentile(rest, 1) > 150

    def test_ct_under_the_header_window(self) -> None:
        """With the header's window the masked region is black and the rest as unmasked."""
        ds = read("CT_small.dcm")
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        plain = render_preview(ds, [], PixelSettings())
        img = render_preview(ds, [rule([{"type": "mask", "rects": [RECT]}])], PixelSettings())
        inside = _inside(img.shape[:2])
        assert (img[21:59, 11:39] == 0).all()
        assert np.array_equal(img[~inside], plain[~inside])

    def test_mask_at_the_stored_minimum_leaves_the_rest_readable(self) -> None:
        """No window and no HU (fill = stored minimum): the rest keeps its full contrast."""
        ds = read("MR_small.dcm")
        del ds.WindowCenter, ds.WindowWidth
        plain = render_preview(ds, [], PixelSettings())[:, :, 0]
        img = render_preview(ds, [rule([{"type": "mask", "rects": [RECT]}])],
                             PixelSettings())[:, :, 0]
        assert (img[21:59, 11:39] == 0).all()
        rest = ~_inside(img.shape)
        assert np.ptp(img[rest]) >= np.ptp(plain[rest]) - 1
