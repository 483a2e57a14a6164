"""The linear VOI window, as tags and baked."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dcmwatch.pixels.window import Window, header_window, linear_window

from ._support import decode, read, roundtrip, rule, step_for


def reference(x: float, c: float, w: float) -> int:
    """PS3.3 C.11.2.1.2.1, written out per value."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0
    if x > c - 0.5 + (w - 1) / 2:
        return 255
    return min(255, max(0, math.floor(((x - (c - 0.5)) / (w - 1) + 0.5) * 255 + 0.5)))


class TestLinearWindow:
    @pytest.mark.parametrize(("c", "w"), [(40, 400), (0, 2), (100.5, 17), (-600, 1500), (3, 1)])
    def test_matches_the_standard(self, c: float, w: float) -> None:
        """Every value in a wide range maps as the standard's formula says."""
        xs = np.arange(-1200, 1200, 0.5)
        if w == 1:
            expected = [0 if x <= c - 0.5 else 255 for x in xs]
        else:
            expected = [reference(x, c, w) for x in xs]
        assert linear_window(xs, c, w).tolist() == expected


class TestHeaderWindow:
    @pytest.mark.parametrize(("c", "w"), [(40, 400), (0, 2), (100.5, 17), (-600, 1500), (3, 1)])
    def test_edges_render_black_and_white(self, c: float, w: float) -> None:
        """At or below `lower` the standard's formula gives 0; above `upper` it gives 255."""
        window = Window(c, w)
        assert reference(window.lower, c, w) == 0
        assert reference(window.upper + 1e-9, c, w) == 255

    def test_first_pair_of_the_header(self) -> None:
        """The first of several Window Center/Width values is the one a viewer shows first."""
        ds = Dataset()
        ds.WindowCenter, ds.WindowWidth = ["40", "300"], ["400", "1500"]
        assert header_window(ds) == Window(40, 400)

    @pytest.mark.parametrize(
        ("center", "width", "function"),
        [("40", "400", "SIGMOID"), ("forty", "400", None), ("40", "0.5", None), (None, "9", None)],
    )
    def test_unusable_windows_are_none(
        self, center: str | None, width: str, function: str | None
    ) -> None:
        """SIGMOID (no value renders exactly black), non-numbers, widths below 1, half pairs."""
        ds = Dataset()  # raw elements, as read from a file: the header's claims, unparsed
        for tag, text in ((0x00281050, center), (0x00281051, width)):
            if text is not None:
                ds[tag] = RawDataElement(Tag(tag), "DS", len(text), text.encode(), 0, False, True)
        if function is not None:
            ds.VOILUTFunction = function
        assert header_window(ds) is None


class TestBake:
    def test_ct_bake_against_reference(self) -> None:
        """Baking CT_small gives the 8-bit window of its HU values, and an identity LUT."""
        ds = read("CT_small.dcm")
        hu = decode(ds)[0, :, :, 0] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        step = step_for([rule([{"type": "window", "center": 40, "width": 400, "mode": "bake"}])])
        out = roundtrip(step(ds))
        got = decode(out)[0, :, :, 0]
        expected = np.vectorize(lambda x: reference(x, 40, 400))(hu)
        assert got.dtype == np.uint8
        assert np.array_equal(got, expected)
        assert (out.BitsAllocated, out.BitsStored, out.PixelRepresentation) == (8, 8, 0)
        assert (float(out.RescaleSlope), float(out.RescaleIntercept)) == (1.0, 0.0)
        assert out.ImageType[0] == "DERIVED"

    def test_bake_refuses_colour(self) -> None:
        """A window bake on RGB is a TransformError, not a crash."""
        from dcmwatch.errors import TransformError

        step = step_for([rule([{"type": "window", "center": 40, "width": 400, "mode": "bake"}])])
        with pytest.raises(TransformError):
            step(read("SC_rgb_small_odd.dcm"))


class TestTags:
    def test_tags_only_touch_attributes(self) -> None:
        """mode = tags writes Window Center/Width and leaves Pixel Data bytes and UID alone."""
        ds = read("CT_small.dcm")
        pixels, uid = ds.PixelData, ds.SOPInstanceUID
        out = step_for([rule([{"type": "window", "center": 40, "width": 400}])])(ds)
        assert (float(out.WindowCenter), float(out.WindowWidth)) == (40.0, 400.0)
        assert out.PixelData is pixels and out.SOPInstanceUID == uid
