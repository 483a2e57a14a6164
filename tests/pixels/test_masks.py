"""Mask geometry and fill values."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset

from dcmwatch.pixels import MaskAction, MaskOutsideImageError, UnsupportedPixelsError
from dcmwatch.pixels.fill import default_fill, explicit_fill
from dcmwatch.pixels.hu import ModalityLut
from dcmwatch.pixels.masks import paint, region_for

from ._support import read


def _mask(**kw: object) -> MaskAction:
    return MaskAction.model_validate({"type": "mask", **kw})


class TestRegion:
    def test_rect_pixels(self) -> None:
        """x is the column, y the row; a rectangle reaching the far edge exactly is inside."""
        region = region_for(_mask(rects=[[2, 1, 3, 2], [8, 8, 2, 2]]), 10, 10)
        assert region.rects == ((1, 3, 2, 5), (8, 10, 8, 10))

    @pytest.mark.parametrize(
        ("shapes", "key"),
        [
            ({"rects": [[1, 1, 2, 2], [8, 8, 100, 100]]}, "rects[1]"),  # partly outside
            ({"rects": [[20, 20, 5, 5]]}, "rects[0]"),  # wholly outside
            ({"rects": [[0, 0, 11, 1]]}, "rects[0]"),  # one column too wide
            ({"circles": [[5, 5, 6]]}, "circles[0]"),
            ({"circles": [[9.5, 5, 1]]}, "circles[0]"),
            ({"polygons": [[[0, 0], [10.5, 0], [0, 3]]]}, "polygons[0]"),
            ({"fractions": True, "circles": [[0.5, 0.5, 0.6]]}, "circles[0]"),
        ],
    )
    def test_shape_outside_the_image_is_refused(self, shapes: dict[str, object], key: str) -> None:
        """A shape reaching past 0..Columns x 0..Rows raises, naming the shape; never clipped."""
        with pytest.raises(MaskOutsideImageError) as info:
            region_for(_mask(**shapes), 10, 10)
        assert info.value.reason == "mask_outside_image"
        assert key in str(info.value)

    @pytest.mark.parametrize(
        "shapes",
        [
            {"rects": [[0, 0, 10, 10]]},
            {"circles": [[5, 5, 5]]},
            {"polygons": [[[0, 0], [10, 0], [10, 10], [0, 10]]]},
            {"fractions": True, "circles": [[0.5, 0.5, 0.5]]},
            {"fractions": True, "rects": [[0, 0, 1, 1]]},
        ],
    )
    def test_shapes_touching_the_edges_are_inside(self, shapes: dict[str, object]) -> None:
        """The whole image as a rectangle, polygon or inscribed circle is accepted."""
        assert not region_for(_mask(**shapes), 10, 10).empty

    def test_fractions_round_outwards(self) -> None:
        """0.1 of 100 columns is column 10 exactly; partial pixels are covered."""
        region = region_for(_mask(fractions=True, rects=[[0.1, 0.0, 0.205, 0.5]]), 10, 100)
        assert region.rects == ((0, 5, 10, 31),)

    def test_circle(self) -> None:
        """Pixels whose index point lies within the radius."""
        bitmap = region_for(_mask(circles=[[2, 2, 1]]), 5, 5).as_bitmap()
        expected = np.zeros((5, 5), bool)
        expected[2, 1:4] = expected[1:4, 2] = True
        assert np.array_equal(bitmap, expected)

    def test_polygon_even_odd(self) -> None:
        """A triangle covers the index points inside it."""
        bitmap = region_for(_mask(polygons=[[[0, 0], [4.5, 0], [0, 4.5]]]), 6, 6).as_bitmap()
        yy, xx = np.mgrid[0:6, 0:6]
        assert np.array_equal(bitmap[1:, 1:], (xx + yy < 4.5)[1:, 1:])
        assert not bitmap[5].any()


class TestPaint:
    def test_keep_inside_fills_outside(self) -> None:
        """keep_inside writes everything but the region, on every frame."""
        frames = np.arange(2 * 4 * 4, dtype=np.uint16).reshape(2, 4, 4, 1)
        before = frames.copy()
        region = region_for(_mask(rects=[[1, 1, 2, 2]], keep_inside=True), 4, 4)
        assert paint(frames, range(2), region, [7], keep_inside=True)
        inside = region.as_bitmap()
        assert (frames[:, ~inside] == 7).all()
        assert np.array_equal(frames[:, inside], before[:, inside])

    def test_selected_frames_only(self) -> None:
        """Frames not named stay as they were."""
        frames = np.ones((3, 4, 4, 3), dtype=np.uint8)
        region = region_for(_mask(rects=[[0, 0, 2, 2]]), 4, 4)
        paint(frames, [1], region, [0, 0, 0], keep_inside=False)
        assert (frames[0] == 1).all() and (frames[2] == 1).all()
        assert (frames[1, :2, :2] == 0).all()


class TestFill:
    def test_explicit_fill_is_clipped_into_range(self) -> None:
        """A stored fill beyond Bits Stored is clipped, never wrapped."""
        assert explicit_fill(5000, 1, 0, 4095) == [4095]
        assert explicit_fill((1, 2, 3), 3, 0, 255) == [1, 2, 3]
        with pytest.raises(UnsupportedPixelsError):
            explicit_fill((1, 2, 3), 1, 0, 255)

    @pytest.mark.parametrize(
        ("photometric", "samples", "expected"),
        [("MONOCHROME2", 1, [-2048]), ("MONOCHROME1", 1, [2047]), ("RGB", 3, [0, 0, 0])],
    )
    def test_without_window(self, photometric: str, samples: int, expected: list[int]) -> None:
        """No window, no HU: lowest stored (MONOCHROME2), highest (MONOCHROME1), black (RGB)."""
        fill = default_fill(
            Dataset(), photometric, samples=samples, lo=-2048, hi=2047, lut=None, window=None
        )
        assert fill == expected

    def test_ybr_is_black(self) -> None:
        """YBR_FULL black is Y=0 with neutral chroma."""
        assert default_fill(
            Dataset(), "YBR_FULL", samples=3, lo=0, hi=255, lut=None, window=None
        ) == [0, 128, 128]

    def test_with_negative_slope(self) -> None:
        """With a negative slope the highest stored value has the lowest modality value."""
        lut = ModalityLut(0, 4095, slope=-1.0, intercept=0.0)
        fill = default_fill(
            Dataset(), "MONOCHROME2", samples=1, lo=0, hi=4095, lut=lut, window=None
        )
        assert fill == [4095]

    def test_palette_entry(self) -> None:
        """PALETTE COLOR: the index whose palette colour has the lowest luminance."""
        ds = read("examples_palette.dcm")
        (index,) = default_fill(
            ds, "PALETTE COLOR", samples=1, lo=0, hi=255, lut=None, window=None
        )
        from pydicom.pixels.processing import apply_color_lut

        rgb = apply_color_lut(np.arange(256, dtype=np.uint8), ds).astype(float)
        lum = rgb @ np.array([299, 587, 114])
        assert lum[index] == lum.min()
