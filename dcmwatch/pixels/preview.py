"""See before you trust: one frame as the rules would leave it, with mask outlines.

`render_preview` is pure (it works on a deep copy) and returns an RGB ``uint8`` array; the CLI
(``dcmwatch preview``) writes it as PNG. Masked regions are outlined in red so an operator can
place rectangles by looking at a real image of the device. Other tools can add their own
rectangles (`Box`, e.g. text an OCR engine found) in a colour of their choice.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, convert_color_space

from dcmwatch.pixels import codec
from dcmwatch.pixels.errors import UnsupportedPixelsError
from dcmwatch.pixels.hu import modality_luts
from dcmwatch.pixels.masks import region_for
from dcmwatch.pixels.rules import matching_rules
from dcmwatch.pixels.settings import MaskAction, PixelRule, PixelSettings, WindowAction
from dcmwatch.pixels.step import apply_actions
from dcmwatch.pixels.window import header_window, linear_window

__all__ = ["OUTLINE_RGB", "Box", "draw_boxes", "render_preview"]

#: Colour of the outline of every region a mask action covers.
OUTLINE_RGB = (255, 0, 0)


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle to outline on a preview: ``x`` = column, ``y`` = row of its top-left pixel."""

    x: int
    y: int
    width: int
    height: int
    rgb: tuple[int, int, int] = (0, 255, 0)


def render_preview(
    ds: Dataset,
    rules: Sequence[PixelRule],
    settings: PixelSettings,
    *,
    frame: int = 1,
    boxes: Sequence[Box] = (),
) -> npt.NDArray[np.uint8]:
    """Frame ``frame`` (1-based) of ``ds`` after the matching rules, windowed, as (rows,
    columns, 3) ``uint8``, mask regions outlined in `OUTLINE_RGB`, then ``boxes`` outlined.

    The window is the last configured window action, else the image's first (0028,1050)/(0028,1051)
    value, else the full range of the frame. Raises what the pixel step would raise.
    """
    if frame < 1:
        raise ValueError("frames are numbered from 1")
    work = copy.deepcopy(ds)
    matched = matching_rules(rules, work, all_matching=settings.all_matching_rules)
    actions = [a for rule in matched for a in rule.actions]
    apply_actions(work, actions, settings=settings, derive_uid=lambda uid: uid)
    layout = codec.read_layout(work)
    codec.check_size(layout, settings.max_pixel_bytes)
    if frame > layout.frames:
        raise UnsupportedPixelsError(
            f"frame {frame} was asked for but the image has {layout.frames}"
        )
    pixels = codec.open_pixels(work, layout, codec.transfer_syntax(work))
    windows = [a for a in actions if isinstance(a, WindowAction) and a.mode == "tags"]
    window = windows[-1] if windows else None
    regions = [
        region_for(action, layout.rows, layout.columns).as_bitmap()
        for action in actions
        if isinstance(action, MaskAction) and (action.frames is None or frame in action.frames)
    ]
    masked = np.logical_or.reduce(regions) if regions else None
    rgb = _to_rgb(work, pixels.layout, pixels.array, frame - 1, window, masked)
    for region in regions:
        rgb[_outline(region)] = OUTLINE_RGB
    draw_boxes(rgb, boxes)
    return rgb


def draw_boxes(rgb: npt.NDArray[np.uint8], boxes: Sequence[Box]) -> None:
    """Outline each box (one pixel wide, inside the box, clipped to the image) in place."""
    rows, columns = rgb.shape[:2]
    for box in boxes:
        if box.width < 1 or box.height < 1:
            continue
        region = np.zeros((rows, columns), dtype=np.bool_)
        r0, r1 = max(box.y, 0), min(box.y + box.height, rows)
        c0, c1 = max(box.x, 0), min(box.x + box.width, columns)
        if r0 >= r1 or c0 >= c1:
            continue
        region[r0:r1, c0:c1] = True
        rgb[_outline(region)] = box.rgb


def _to_rgb(
    ds: Dataset,
    layout: codec.PixelLayout,
    frames: npt.NDArray[Any],
    index: int,
    window: WindowAction | None,
    masked: npt.NDArray[np.bool_] | None,
) -> npt.NDArray[np.uint8]:
    frame = frames[index]
    if layout.photometric in ("MONOCHROME1", "MONOCHROME2"):
        luts = modality_luts(ds, layout.frames, layout.stored_min, layout.stored_max)
        lut = luts[index] if len(luts) > 1 else luts[0]
        values = lut.apply(frame[..., 0])
        own = header_window(ds)
        if window is not None:
            center, width = window.center, window.width
        elif own is not None:
            center, width = own.center, own.width
        else:
            # The full range of what the image shows, masked pixels left out: a fill at the end
            # of the stored range must not squeeze the rest of the image into a few grey levels.
            shown = values if masked is None or masked.all() else values[~masked]
            low, high = float(shown.min()), float(shown.max())
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


def _outline(region: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Covered pixels with an uncovered (or out-of-image) 4-neighbour."""
    padded = np.pad(region, 1, constant_values=False)
    interior = (
        padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & region
    )
    return region & ~interior
