"""render_preview: the image as the rules leave it, windowed, masks outlined."""

from __future__ import annotations

import numpy as np

from dcmwatch.pixels import PixelSettings, render_preview
from dcmwatch.pixels.preview import OUTLINE_RGB

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
