"""See before you trust: the first frame as the rules would leave it, with mask outlines.

`render_preview` is pure (it works on a deep copy) and returns an RGB ``uint8`` array; the CLI
(``dcmwatch preview``) writes it as PNG. Masked regions are outlined in red so an operator can
place rectangles by looking at a real image of the device.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, convert_color_space

from dcmwatch.pixels import codec
from dcmwatch.pixels.hu import modality_luts
from dcmwatch.pixels.masks import region_for
from dcmwatch.pixels.rules import matching_rules
from dcmwatch.pixels.settings import MaskAction, PixelRule, PixelSettings, WindowAction
from dcmwatch.pixels.step import apply_actions
from dcmwatch.pixels.window import linear_window

__all__ = ["OUTLINE_RGB", "render_preview"]

OUTLINE_RGB = (255, 0, 0)


def render_preview(
    ds: Dataset, rules: Sequence[PixelRule], settings: PixelSettings
) -> npt.NDArray[np.uint8]:
    """Frame 1 of ``ds`` after the matching rules, windowed, as (rows, columns, 3) ``uint8``.

    The window is the last configured window action, else the image's first (0028,1050)/(0028,1051)
    value, else the full range of the frame. Raises what the pixel step would raise.
    """
    work = copy.deepcopy(ds)
    matched = matching_rules(rules, work, all_matching=settings.all_matching_rules)
    actions = [a for rule in matched for a in rule.actions]
    apply_actions(work, actions, settings=settings, derive_uid=lambda uid: uid)
    layout = codec.read_layout(work)
    codec.check_size(layout, settings.max_pixel_bytes)
    pixels = codec.open_pixels(work, layout, codec.transfer_syntax(work))
    frame = pixels.array[0]
    windows = [a for a in actions if isinstance(a, WindowAction) and a.mode == "tags"]
    rgb = _to_rgb(work, pixels.layout, frame, windows[-1] if windows else None)
    for action in actions:
        if isinstance(action, MaskAction):
            region = region_for(action, layout.rows, layout.columns).as_bitmap()
            rgb[_outline(region)] = OUTLINE_RGB
    return rgb


def _to_rgb(
    ds: Dataset, layout: codec.PixelLayout, frame: npt.NDArray[Any], window: WindowAction | None
) -> npt.NDArray[np.uint8]:
    if layout.photometric in ("MONOCHROME1", "MONOCHROME2"):
        lut = modality_luts(ds, layout.frames, layout.stored_min, layout.stored_max)[0]
        values = lut.apply(frame[..., 0])
        if window is not None:
            center, width = window.center, window.width
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            center, width = _first(ds.WindowCenter), max(_first(ds.WindowWidth), 1.0)
        else:
            low, high = float(values.min()), float(values.max())
            center, width = (low + high) / 2 + 0.5, max(high - low + 1, 1.0)
        gray = linear_window(values, center, width)
        if layout.photometric == "MONOCHROME1":
            gray = 255 - gray
        return np.repeat(gray[..., None], 3, axis=2)
    if layout.photometric == "PALETTE COLOR":
        colours = np.asarray(apply_color_lut(frame[..., 0], ds), dtype=np.float64)
        return np.asarray(colours / max(float(colours.max()), 1.0) * 255 + 0.5, dtype=np.uint8)
    shift = max(layout.bits_stored - 8, 0)
    data = frame
    if layout.photometric == "YBR_FULL":
        data = convert_color_space(frame, "YBR_FULL", "RGB")
    return np.asarray(np.right_shift(data, shift), dtype=np.uint8).copy()


def _first(value: Any) -> float:
    if isinstance(value, str | int | float):
        return float(value)
    return float(next(iter(value)))


def _outline(region: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Covered pixels with an uncovered (or out-of-image) 4-neighbour."""
    padded = np.pad(region, 1, constant_values=False)
    interior = (
        padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & region
    )
    return region & ~interior
