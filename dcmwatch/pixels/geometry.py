"""Whether a mask's shapes lie inside an image: the one rule config load and run time share.

A shape that reaches outside the image is never clipped silently: it means the configured
geometry does not describe this device's image, so the text it was written for may be elsewhere.
The rule is the same at config load, where a rule's ``match`` pins (0028,0011) *Columns* and/or
(0028,0010) *Rows*, and at run time, where the image's own Rows and Columns are known.

The image occupies ``0..Columns`` x ``0..Rows`` in the coordinates masks are written in (the
extent of the rectangle ``[0, 0, Columns, Rows]``, which covers every pixel exactly once):

* a rectangle ``[x, y, w, h]`` lies inside when ``x + w <= Columns`` and ``y + h <= Rows``;
* a polygon when every vertex lies in ``0..Columns`` x ``0..Rows``;
* a circle ``[cx, cy, r]`` when ``cx - r >= 0``, ``cx + r <= Columns`` and likewise in y.

With ``fractions = true`` the shapes are scaled first (x by Columns, y by Rows, a radius by the
smaller side). Fraction rectangles and polygons are checked to lie in ``0..1`` when they load, so
only fraction circles can reach outside. The check costs a few comparisons per shape: it runs for
every masked image.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Shapes", "first_outside"]


class Shapes(Protocol):
    """What `first_outside` reads of a mask action (`MaskAction` has it)."""

    @property
    def fractions(self) -> bool: ...
    @property
    def rects(self) -> tuple[tuple[float, float, float, float], ...]: ...
    @property
    def circles(self) -> tuple[tuple[float, float, float], ...]: ...
    @property
    def polygons(self) -> tuple[tuple[tuple[float, float], ...], ...]: ...


def first_outside(shapes: Shapes, rows: int | None, columns: int | None) -> str | None:
    """The key of the first shape reaching outside the image (``"rects[1]"``), or None.

    ``rows`` / ``columns`` may be None when unknown (a rule that pins only one of them): that
    side's far edge is then not checked, the near edge (0) always is.
    """
    if shapes.fractions:
        return _first_outside_fractions(shapes, rows, columns)
    width = float("inf") if columns is None else float(columns)
    height = float("inf") if rows is None else float(rows)
    for i, (x, y, w, h) in enumerate(shapes.rects):
        if x < 0 or y < 0 or x + w > width or y + h > height:
            return f"rects[{i}]"
    for i, (cx, cy, r) in enumerate(shapes.circles):
        if cx - r < 0 or cy - r < 0 or cx + r > width or cy + r > height:
            return f"circles[{i}]"
    for i, polygon in enumerate(shapes.polygons):
        for x, y in polygon:
            if x < 0 or y < 0 or x > width or y > height:
                return f"polygons[{i}]"
    return None


def _first_outside_fractions(shapes: Shapes, rows: int | None, columns: int | None) -> str | None:
    for i, (x, y, w, h) in enumerate(shapes.rects):
        if x < 0 or y < 0 or x + w > 1 or y + h > 1:
            return f"rects[{i}]"
    for i, polygon in enumerate(shapes.polygons):
        for x, y in polygon:
            if not (0 <= x <= 1 and 0 <= y <= 1):
                return f"polygons[{i}]"
    if rows is None or columns is None:
        return None  # a fraction radius scales with the smaller side: unknown
    side = float(min(rows, columns))
    for i, (cx, cy, r) in enumerate(shapes.circles):
        px, py, pr = cx * columns, cy * rows, r * side
        if px - pr < 0 or py - pr < 0 or px + pr > columns or py + pr > rows:
            return f"circles[{i}]"
    return None
