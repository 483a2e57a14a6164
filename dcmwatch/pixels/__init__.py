"""Pixel rules: HU thresholds and clips, masks and windows, exact on every pixel format.

``make_pixel_step(rules, settings, derive_uid)`` builds the pure step the pipeline runs after
de-identification, ``ds -> (ds, PixelsApplied)``; the models in `dcmwatch.pixels.settings`
validate the ``[pixels]`` section and the ``[[rules]]`` tables at load. The work is split by
concern: `rules` (matching), `hu` (modality LUT), `masks` and `geometry` (where a mask writes),
`fill` (what it writes), `window`, `codec` (decode and write-back), `preview` (what the rules
would do, for an operator) and `preview_png` (the ``dcmwatch preview`` command's edge: read a
file, render, write a PNG durably). `streams` strips metadata from compressed Pixel Data on
every output, whether a rule matched or not (`dcmwatch.pipeline` calls it last).
"""

from dcmwatch.pixels.errors import (
    BurnedInAnnotationError,
    MaskGeometryError,
    MaskOutsideImageError,
    PixelDataTooLargeError,
    PixelDecodeError,
    UnsupportedPixelsError,
)
from dcmwatch.pixels.preview import render_preview
from dcmwatch.pixels.settings import (
    HuClipAction,
    HuThresholdAction,
    MaskAction,
    PixelAction,
    PixelRule,
    PixelSettings,
    WindowAction,
)
from dcmwatch.pixels.step import PixelsApplied, PixelStep, make_pixel_step

__all__ = [
    "BurnedInAnnotationError",
    "HuClipAction",
    "HuThresholdAction",
    "MaskAction",
    "MaskGeometryError",
    "MaskOutsideImageError",
    "PixelAction",
    "PixelDataTooLargeError",
    "PixelDecodeError",
    "PixelRule",
    "PixelSettings",
    "PixelStep",
    "PixelsApplied",
    "UnsupportedPixelsError",
    "WindowAction",
    "make_pixel_step",
    "render_preview",
]
