"""Where a mask writes, and the writing: regions resolved against one image, then painted.

Rectangles are applied as array slices (no per-pixel work outside them); circles and polygons are
rasterised into a boolean bitmap restricted to their bounding box; a mask ``file`` (loaded at
config load) is that bitmap, and must have the image's exact geometry. All coordinates follow
`MaskAction`: x = column, y = row, pixel index points. A shape reaching outside the image is
refused (`dcmwatch.pixels.geometry`), never clipped: what the fill is lives in
`dcmwatch.pixels.fill`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dcmwatch.pixels.errors import MaskGeometryError, MaskOutsideImageError, UnsupportedPixelsError
from dcmwatch.pixels.geometry import first_outside
from dcmwatch.pixels.settings import MaskAction

__all__ = [
    "Region",
    "blend",
    "fill_where",
    "paint",
    "region_for",
]

#: Fractions are rounded to this many decimals before flooring/ceiling, so 0.1 * 100 is 10.
_FRACTION_DECIMALS = 6


@dataclass(frozen=True, slots=True, eq=False)
class Region:
    """The pixels a mask shape list covers in an image of ``rows`` x ``columns``."""

    rows: int
    columns: int
    #: (row0, row1, col0, col1), half-open, inside the image, non-empty.
    rects: tuple[tuple[int, int, int, int], ...]
    #: Union of circles and polygons, or None when the action has none.
    bitmap: npt.NDArray[np.bool_] | None

    @property
    def empty(self) -> bool:
        return not self.rects and (self.bitmap is None or not self.bitmap.any())

    def as_bitmap(self) -> npt.NDArray[np.bool_]:
        """Every covered pixel as one boolean image (for ``keep_inside`` and previews)."""
        out = (
            self.bitmap.copy()
            if self.bitmap is not None
            else np.zeros((self.rows, self.columns), dtype=np.bool_)
        )
        for r0, r1, c0, c1 in self.rects:
            out[r0:r1, c0:c1] = True
        return out


def region_for(action: MaskAction, rows: int, columns: int) -> Region:
    """Resolve the action's shapes (pixels or fractions) against one image geometry.

    Raises `MaskOutsideImageError` when a shape reaches outside the image and
    `MaskGeometryError` when the mask file has another size.
    """
    outside = first_outside(action, rows, columns)
    if outside is not None:
        raise MaskOutsideImageError(
            f"the mask's {outside} lies partly or wholly outside the image "
            f"({columns} columns x {rows} rows): its geometry does not describe this image"
        )
    sx, sy = (float(columns), float(rows)) if action.fractions else (1.0, 1.0)
    sr = float(min(rows, columns)) if action.fractions else 1.0
    rects: list[tuple[int, int, int, int]] = []
    for x, y, w, h in action.rects:
        c0 = math.floor(round(x * sx, _FRACTION_DECIMALS))
        c1 = math.ceil(round((x + w) * sx, _FRACTION_DECIMALS))
        r0 = math.floor(round(y * sy, _FRACTION_DECIMALS))
        r1 = math.ceil(round((y + h) * sy, _FRACTION_DECIMALS))
        if c0 < c1 and r0 < r1:  # a sliver of a fraction may round to no pixel
            rects.append((r0, r1, c0, c1))
    bitmap: npt.NDArray[np.bool_] | None = None
    if action.file is not None:
        if (action.file.rows, action.file.columns) != (rows, columns):
            raise MaskGeometryError(
                f"the image is {rows} x {columns} (Rows x Columns) but the rule's mask file "
                f"is {action.file.rows} x {action.file.columns}"
            )
        bitmap = action.file.bitmap().copy()
    if action.circles or action.polygons:
        if bitmap is None:
            bitmap = np.zeros((rows, columns), dtype=np.bool_)
        for cx, cy, r in action.circles:
            _draw_circle(bitmap, cx * sx, cy * sy, r * sr)
        for poly in action.polygons:
            _draw_polygon(bitmap, [(x * sx, y * sy) for x, y in poly])
    return Region(rows, columns, tuple(rects), bitmap)


def _window(lo: float, hi: float, size: int) -> tuple[int, int]:
    return max(math.floor(lo), 0), min(math.ceil(hi) + 1, size)


def _draw_circle(bitmap: npt.NDArray[np.bool_], cx: float, cy: float, r: float) -> None:
    rows, columns = bitmap.shape
    r0, r1 = _window(cy - r, cy + r, rows)
    c0, c1 = _window(cx - r, cx + r, columns)
    if r0 >= r1 or c0 >= c1:
        return
    yy = np.arange(r0, r1, dtype=np.float64)[:, None]
    xx = np.arange(c0, c1, dtype=np.float64)[None, :]
    bitmap[r0:r1, c0:c1] |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _draw_polygon(bitmap: npt.NDArray[np.bool_], vertices: list[tuple[float, float]]) -> None:
    """Even-odd rule on pixel index points, vectorised per edge over the bounding box."""
    rows, columns = bitmap.shape
    xs = [v[0] for v in vertices]
    ys = [v[1] for v in vertices]
    r0, r1 = _window(min(ys), max(ys), rows)
    c0, c1 = _window(min(xs), max(xs), columns)
    if r0 >= r1 or c0 >= c1:
        return
    yy = np.arange(r0, r1, dtype=np.float64)[:, None]
    xx = np.arange(c0, c1, dtype=np.float64)[None, :]
    inside = np.zeros((r1 - r0, c1 - c0), dtype=np.bool_)
    n = len(vertices)
    for i in range(n):
        x1, y1 = vertices[i]
        x2, y2 = vertices[(i + 1) % n]
        if y1 == y2:
            continue
        crosses = (y1 > yy) != (y2 > yy)
        x_at = x1 + (yy - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (xx < x_at)
    bitmap[r0:r1, c0:c1] |= inside


def paint(
    frames: npt.NDArray[Any],
    indices: range | list[int],
    region: Region,
    fill: list[int],
    *,
    keep_inside: bool,
) -> bool:
    """Write ``fill`` into ``region`` (or everything outside it) of the chosen frames, in place.

    ``frames`` is (frames, rows, columns, samples); ``fill`` has one value per sample. Returns
    whether any pixel was covered.
    """
    # Clipped into the range by the caller; checked here so that the cast below cannot wrap.
    info = np.iinfo(frames.dtype)
    if any(not info.min <= v <= info.max for v in fill):
        raise UnsupportedPixelsError("a fill value does not fit the pixel data type")
    fill_arr = np.array(fill, dtype=frames.dtype)
    if keep_inside:
        outside = ~region.as_bitmap()
        if not outside.any():
            return False
        where = outside[:, :, None]
        for f in indices:
            np.copyto(frames[f], fill_arr, where=where)
        return True
    if region.empty:
        return False
    all_frames = isinstance(indices, range) and len(indices) == frames.shape[0]
    targets = [frames] if all_frames else [frames[f] for f in indices]
    for target in targets:
        for r0, r1, c0, c1 in region.rects:
            target[..., r0:r1, c0:c1, :] = fill_arr
        if region.bitmap is not None:
            np.copyto(target, fill_arr, where=region.bitmap[:, :, None])
    return True


def fill_where(
    target: npt.NDArray[Any], fill: np.integer[Any], where: npt.NDArray[np.bool_]
) -> None:
    """``target[where] = fill``, in place, without branches.

    A boolean-masked write is many times slower on a mask that alternates pixel by pixel (noise
    around a HU threshold: the CPU mispredicts every other branch) than on a smooth one.
    ``target += (fill - target) * where`` costs the same on both, as little as the smooth case;
    computed in ``target``'s own integer dtype it is exact even when ``fill - target`` wraps
    around, because the wrap is undone by the addition (arithmetic modulo 2**bits).
    """
    fill_value = target.dtype.type(fill)
    diff = np.subtract(fill_value, target)
    same = (diff.dtype.kind, diff.dtype.itemsize) == (target.dtype.kind, target.dtype.itemsize)
    if not same:  # byte order may differ (a big-endian view): the values may not
        raise UnsupportedPixelsError("a fill would change the pixel data type")  # pragma: no cover
    np.multiply(diff, where, out=diff, casting="unsafe")
    np.add(target, diff, out=target, casting="unsafe")


def blend(
    source: npt.NDArray[Any], fill: np.integer[Any], where: npt.NDArray[np.bool_]
) -> npt.NDArray[Any]:
    """A new array: ``fill`` where ``where``, ``source`` elsewhere (see `fill_where`).

    The result has ``source``'s kind and width (in native byte order); ``source`` is only read.
    """
    fill_value = source.dtype.type(fill)
    out: npt.NDArray[Any] = np.subtract(fill_value, source)
    same = (out.dtype.kind, out.dtype.itemsize) == (source.dtype.kind, source.dtype.itemsize)
    if not same:  # byte order may differ (a big-endian view): the values may not
        raise UnsupportedPixelsError("a fill would change the pixel data type")  # pragma: no cover
    np.multiply(out, where, out=out, casting="unsafe")
    np.add(out, source, out=out, casting="unsafe")
    return out
