"""render_preview: the image as the rules leave it, windowed, masks outlined."""

from __future__ import annotations

import numpy as np
import pytest

from dcmwatch.pixels import PixelSettings, UnsupportedPixelsError, render_preview
from dcmwatch.pixels.preview import OUTLINE_RGB, Box, draw_boxes

from ._support import read, rule


class TestRenderPreview:
    def test_outline_and_window(self) -> None:
        """RGB uint8 of the image size; the rectangle's border is red; the input is untouched."""
        ds = read("CT_small.dcm")
        pixels = ds.PixelData
        rules = [rule([{"type": "mask", "rects": [[10, 20, 30, 40]], "fill_hu": -1000},
                       {"type": "window", "center": 40, "width": 400}], {"Modality": "CT"})]
        img = render_preview(ds, rules, PixelSettings())
        assert img.shape == (128, 128, 3) and img.dtype == np.uint8
        assert tuple(img[20, 10]) == OUTLINE_RGB and tuple(img[59, 39]) == OUTLINE_RGB
        assert tuple(img[30, 20]) == (0, 0, 0)  # inside: -1000 HU is black at W 400 / L 40
        assert ds.PixelData is pixels

    def test_colour_image(self) -> None:
        """A YBR JPEG renders as RGB without rules."""
        img = render_preview(read("SC_rgb_jpeg_dcmtk.dcm"), [], PixelSettings())
        assert img.shape == (100, 100, 3)


class TestFramesAndBoxes:
    def test_frame_selects_the_frame(self) -> None:
        """--frame 2 renders the second frame, not the first."""
        ds = read("SC_rgb_rle_2frame.dcm")
        expected = ds.pixel_array
        first = render_preview(ds, [], PixelSettings())
        second = render_preview(ds, [], PixelSettings(), frame=2)
        assert np.array_equal(first, expected[0]) and np.array_equal(second, expected[1])
        assert not np.array_equal(first, second)

    def test_frame_out_of_range(self) -> None:
        with pytest.raises(UnsupportedPixelsError):
            render_preview(read("CT_small.dcm"), [], PixelSettings(), frame=2)

    def test_mask_of_other_frames_is_not_outlined(self) -> None:
        ds = read("SC_rgb_rle_2frame.dcm")
        rules = [rule([{"type": "mask", "rects": [[2, 2, 5, 5]], "frames": [2]}])]
        assert tuple(render_preview(ds, rules, PixelSettings(), frame=2)[2, 2]) == OUTLINE_RGB
        plain = render_preview(ds, [], PixelSettings(), frame=1)
        assert np.array_equal(render_preview(ds, rules, PixelSettings(), frame=1), plain)

    def test_extra_boxes_in_their_colour(self) -> None:
        """Boxes (e.g. OCR findings) are outlined in their colour, clipped, inside untouched."""
        ds = read("CT_small.dcm")
        plain = render_preview(ds, [], PixelSettings())
        boxes = [Box(5, 6, 10, 4, (0, 0, 255)), Box(120, 120, 50, 50)]
        img = render_preview(ds, [], PixelSettings(), boxes=boxes)
        assert tuple(img[6, 5]) == (0, 0, 255) and tuple(img[9, 14]) == (0, 0, 255)
        assert np.array_equal(img[7:9, 6:14], plain[7:9, 6:14])
        assert tuple(img[120, 127]) == (0, 255, 0) and tuple(img[127, 120]) == (0, 255, 0)
        changed = np.any(img != plain, axis=2)
        # Two outlines and nothing else: 10 x 4 has 24 border pixels, 8 x 8 (clipped) 28.
        assert changed.sum() == 24 + 28

    def test_draw_boxes_alone(self) -> None:
        rgb = np.zeros((4, 4, 3), dtype=np.uint8)
        draw_boxes(rgb, [Box(0, 0, 4, 4, (1, 2, 3))])
        assert (rgb[0] == (1, 2, 3)).all() and (rgb[1:3, 1:3] == 0).all()
