"""Frames as a person would see them, in 8 bits, for OCR.

Uses the pixel rules' own decoder (`dcmwatch.pixels.codec`), modality LUT (`pixels.hu`) and
VOI window (`pixels.window`), so the guard reads exactly the pixels that leave: masks the rules
painted are already in them (darkest value, so black: a masked region yields no text).

Grey images go through the modality LUT, then the image's first (0028,1050)/(0028,1051) window
(what a viewer shows first), else the frame's full range; MONOCHROME1 is inverted. Colour:
RGB and YBR_FULL (converted to RGB) scaled to 8 bits, PALETTE COLOR through its palette.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, convert_color_space

from dcmwatch.pixels import codec
from dcmwatch.pixels.hu import modality_luts
from dcmwatch.pixels.window import linear_window

__all__ = ["frame_indices", "render_frames"]

Image8 = npt.NDArray[np.uint8]


def frame_indices(total: int, frames: Literal["first", "all"] | int) -> list[int]:
    """0-based frames to read: the first, all, or N spread evenly (first and last included)."""
    if frames == "first" or total == 1:
        return [0]
    if frames == "all" or frames >= total:
        return list(range(total))
    if frames == 1:
        return [0]
    return sorted({round(i * (total - 1) / (frames - 1)) for i in range(frames)})


def render_frames(
    ds: Dataset, frames: Literal["first", "all"] | int, max_pixel_bytes: int, *,
    only: int | None = None,
) -> tuple[int, list[tuple[int, Image8]]]:
    """(number of frames, [(0-based frame, 8-bit image)]) for the frames chosen, or for the one
    0-based frame `only` (what `dcmwatch preview` shows), when it exists."""
    layout = codec.read_layout(ds)
    codec.check_size(layout, max_pixel_bytes)
    pixels = codec.open_pixels(ds, layout, codec.transfer_syntax(ds))
    now = pixels.layout
    if only is None:
        chosen = frame_indices(now.frames, frames)
    else:
        chosen = [only] if 0 <= only < now.frames else []
    luts = None
    out = []
    for f in chosen:
        frame = pixels.array[f]
        if now.photometric in ("MONOCHROME1", "MONOCHROME2"):
            if luts is None:
                luts = modality_luts(ds, now.frames, now.stored_min, now.stored_max)
            lut = luts[f] if len(luts) > 1 else luts[0]
            out.append((f, _grey(ds, lut.apply(frame[..., 0]), now.photometric)))
        else:
            out.append((f, _colour(ds, now, frame)))
    return now.frames, out


def _grey(ds: Dataset, values: npt.NDArray[np.float64], photometric: str) -> Image8:
    center = _first(ds.get("WindowCenter"))
    width = _first(ds.get("WindowWidth"))
    if center is None or width is None or width < 1:
        low, high = float(values.min()), float(values.max())
        center, width = (low + high) / 2 + 0.5, max(high - low + 1, 1.0)
    gray = linear_window(values, center, width)
    if photometric == "MONOCHROME1":
        gray = np.asarray(255 - gray, dtype=np.uint8)
    return gray


def _colour(ds: Dataset, layout: codec.PixelLayout, frame: npt.NDArray[Any]) -> Image8:
    if layout.photometric == "PALETTE COLOR":
        colours = np.asarray(apply_color_lut(frame[..., 0], ds), dtype=np.float64)
        return np.asarray(colours / max(float(colours.max()), 1.0) * 255 + 0.5, dtype=np.uint8)
    data = frame
    if layout.photometric.startswith("YBR_FULL"):
        data = convert_color_space(frame, "YBR_FULL", "RGB")
    shift = max(layout.bits_stored - 8, 0)
    return np.ascontiguousarray(np.right_shift(data, shift), dtype=np.uint8)


def _first(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str | int | float):
            return float(value)
        return float(next(iter(value)))
    except (TypeError, ValueError, StopIteration):
        return None
