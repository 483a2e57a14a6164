"""Where a redaction paints: whole lines and the blocks they belong to, never single words.

OCR finds words, PHI lives in lines: tesseract splits a banner into words and misreads some of
them, so painting the matched words leaves ``QUINTERO,`` or ``1973-03-`` readable beside them.
A line holding a finding is therefore painted whole, from the first to the last word the engine
placed on it, and so is every line of its block: a banner is a block, and the line OCR misread
is the one nobody matched. Lines form a block by geometry alone (never by what they say): on the
same row with a gap of at most `ROW_GAP` line heights (sparse-text engines cut a banner's row at
wide spaces), or stacked with a vertical gap of at most one line height and overlapping columns.
Lines of very different heights (speckle read as text, a measurement in another font) do not
join a block. Each block is padded by half a line height above and below (ascenders, descenders,
accents the engine's box leaves out) and a line height left and right (a glyph it did not read),
at least ``pad``.

`suggest-masks` proposes the same regions: what the guard would paint is what a rule should mask.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from dcmwatch.ocr.engines import Box
from dcmwatch.ocr.errors import OcrTimeoutError

__all__ = ["ROW_GAP", "blocks", "merge", "pad_block"]

#: Words on one row further apart than this many line heights are separate lines.
ROW_GAP = 3.0
#: Lines whose heights differ by more than this factor are not one block.
_HEIGHT_RATIO = 2.0
#: Side of a cell of the grid that finds a group's neighbours, in units of the smallest line
#: height of the cell's band: small against a line's reach, so that a crowded image does not
#: put many lines out of reach in the cells a group looks at.
_CELL = 4


def blocks(
    lines: Sequence[Box], seeds: Iterable[int], *, deadline: float | None = None
) -> list[tuple[Box, int]]:
    """(bounding box, tallest line height) of each block of ``lines`` holding a seed line, in
    the order of each block's first line.

    The lines of every frame and view come here together, so a cine loop brings its banner
    hundreds of times, line for line at the same place or a pixel off. Comparing every pair
    would cost the square of that. Instead lines that are certainly one block (`_key`) form one
    group, and a group is compared only with the groups in grid cells within its reach
    (`_linked`). Raises `OcrTimeoutError` once ``deadline`` (`time.monotonic`) has passed: a
    pathological reading must not run past the image's time limit.
    """
    groups = _groups(lines)
    root = _linked(groups, deadline)
    group_of = {box: g for g, group in enumerate(groups) for box in group.boxes}
    chosen = {root(group_of[lines[i]]) for i in seeds}
    members: dict[int, list[_Group]] = {}
    for g, group in enumerate(groups):
        if root(g) in chosen:
            members.setdefault(root(g), []).append(group)
    out = []
    for block in members.values():
        x0 = min(g.left for g in block)
        y0 = min(g.top for g in block)
        x1 = max(g.right for g in block)
        y1 = max(g.bottom for g in block)
        out.append(((x0, y0, x1 - x0, y1 - y0), max(g.height for g in block)))
    return out


@dataclass(frozen=True, slots=True)
class _Group:
    """Distinct lines that are certainly one block, with the extent of all of them."""

    boxes: tuple[Box, ...]
    left: int
    top: int
    right: int
    bottom: int
    #: The tallest line's own height (what a block reports).
    height: int
    #: The shortest and tallest height as `_near` counts them (at least 1).
    shortest: int
    tallest: int

    @classmethod
    def of(cls, boxes: Sequence[Box]) -> _Group:
        heights = [max(h, 1) for _, _, _, h in boxes]
        return cls(
            tuple(boxes), min(x for x, _, _, _ in boxes), min(y for _, y, _, _ in boxes),
            max(x + w for x, _, w, _ in boxes), max(y + h for _, y, _, h in boxes),
            max(h for _, _, _, h in boxes), min(heights), max(heights),
        )

    @property
    def band(self) -> int:
        """The power of two of its heights (`_key` keeps a group's lines in one)."""
        return self.tallest.bit_length() - 1

    def area(self, dx: float, dy: float) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) of its extent grown by ``dx`` and ``dy``; a line of
        negative width or height (never from an engine) spans its edges the other way."""
        x0, x1 = sorted((self.left, self.right))
        y0, y1 = sorted((self.top, self.bottom))
        return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def _groups(lines: Sequence[Box]) -> list[_Group]:
    """The distinct lines gathered by `_key`, groups in the order of their first line."""
    gathered: dict[object, list[Box]] = {}
    for box in dict.fromkeys(lines):
        gathered.setdefault(_key(box), []).append(box)
    return [_Group.of(boxes) for boxes in gathered.values()]


def _key(box: Box) -> object:
    """Lines with the same key are near each other (`_near`), so they are one block.

    Heights in the same power of two differ by less than `_HEIGHT_RATIO`; edges in the same
    step of a quarter of the smallest such height differ by less than that step, which leaves
    the lines overlapping by more than half a height and side by side within `ROW_GAP`. A line
    shorter than four pixels, or of negative width, is only itself."""
    x, y, w, h = box
    if h < 4 or w < 0:
        return box
    band = h.bit_length() - 1
    step = 1 << (band - 2)
    return (band, x // step, y // step, (x + w) // step, (y + h) // step)


def _linked(groups: Sequence[_Group], deadline: float | None) -> Callable[[int], int]:
    """The root of each group's block (union-find over the groups near each other).

    Near lines have heights within `_HEIGHT_RATIO` (so their bands differ by at most one), are
    at most the taller line's height apart vertically and `ROW_GAP` of it across. Each band has
    a grid; a group looks for neighbours in the cells of the three bands its reach covers."""
    parent = list(range(len(groups)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    grids: dict[int, dict[tuple[int, int], list[int]]] = {}
    for g, group in enumerate(groups):
        _check(deadline)
        grid = grids.setdefault(group.band, {})
        for cell in _cells(group.area(0, 0), group.band):
            grid.setdefault(cell, []).append(g)
    for i, a in enumerate(groups):
        _check(deadline)
        dy = _HEIGHT_RATIO * a.tallest
        area = a.area(max(ROW_GAP, 1.0) * dy, dy)
        near: set[int] = set()
        for band in (a.band - 1, a.band, a.band + 1):
            placed = grids.get(band)
            if placed is None:
                continue
            for cell in _cells(area, band):
                near.update(j for j in placed.get(cell, ()) if j > i)
        for j in near:
            if root(i) != root(j) and _any_near(a, groups[j], deadline):
                parent[root(i)] = root(j)
    return root


def _cells(area: tuple[float, float, float, float], band: int) -> Iterator[tuple[int, int]]:
    """The cells of ``band``'s grid that ``area`` (edges included) touches."""
    size = _CELL << max(band, 0)
    x0, y0, x1, y1 = (int(v // size) for v in area)
    for cy in range(y0, y1 + 1):
        for cx in range(x0, x1 + 1):
            yield cx, cy


def _any_near(a: _Group, b: _Group, deadline: float | None) -> bool:
    """Some line of ``a`` is near some line of ``b``. Their extents rule most pairs out at once:
    near lines are at most a line height apart vertically and `ROW_GAP` heights across."""
    if a.shortest > _HEIGHT_RATIO * b.tallest or b.shortest > _HEIGHT_RATIO * a.tallest:
        return False
    h = max(a.tallest, b.tallest)
    if max(b.top - a.bottom, a.top - b.bottom) > h:
        return False
    if max(b.left - a.right, a.left - b.right) > max(ROW_GAP, 1.0) * h:
        return False
    for box in a.boxes:
        _check(deadline)
        if any(_near(box, other) for other in b.boxes):
            return True
    return False


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise OcrTimeoutError("OCR took longer than ocr.time_limit_seconds")


def _near(a: Box, b: Box) -> bool:
    ha, hb = max(a[3], 1), max(b[3], 1)
    if max(ha, hb) > _HEIGHT_RATIO * min(ha, hb):
        return False
    h = max(ha, hb)
    v_overlap = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    h_gap = max(b[0] - (a[0] + a[2]), a[0] - (b[0] + b[2]), 0)
    if v_overlap >= min(ha, hb) / 2 and h_gap <= ROW_GAP * h:
        return True
    v_gap = max(b[1] - (a[1] + a[3]), a[1] - (b[1] + b[3]), 0)
    h_overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    return v_gap <= h and h_overlap > -h


def pad_block(block: Box, line_height: int, pad: int, rows: int, columns: int) -> Box | None:
    """The block grown by half a line height vertically and a line height horizontally (each at
    least ``pad``), clipped to the image; None when nothing of it is inside."""
    x, y, w, h = block
    dx = max(pad, line_height)
    dy = max(pad, (line_height + 1) // 2)
    x0, y0 = max(x - dx, 0), max(y - dy, 0)
    x1, y1 = min(x + w + dx, columns), min(y + h + dy, rows)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def merge(boxes: Iterable[Box], pad: int, rows: int, columns: int) -> tuple[Box, ...]:
    """Pad each box, clip it to the image, and merge overlapping or touching ones."""
    rects = []
    for x, y, w, h in boxes:
        x0, y0 = max(x - pad, 0), max(y - pad, 0)
        x1, y1 = min(x + w + pad, columns), min(y + h + pad, rows)
        if x1 > x0 and y1 > y0:
            rects.append((x0, y0, x1, y1))
    changed = True
    while changed:
        changed = False
        out: list[tuple[int, int, int, int]] = []
        for r in rects:
            for i, o in enumerate(out):
                if r[0] <= o[2] and o[0] <= r[2] and r[1] <= o[3] and o[1] <= r[3]:
                    out[i] = (min(r[0], o[0]), min(r[1], o[1]), max(r[2], o[2]), max(r[3], o[3]))
                    changed = True
                    break
            else:
                out.append(r)
        rects = out
    return tuple(sorted((x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in rects))
