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

from collections.abc import Iterable, Sequence

from dcmwatch.ocr.engines import Box

__all__ = ["ROW_GAP", "blocks", "merge", "pad_block"]

#: Words on one row further apart than this many line heights are separate lines.
ROW_GAP = 3.0
#: Lines whose heights differ by more than this factor are not one block.
_HEIGHT_RATIO = 2.0


def blocks(lines: Sequence[Box], seeds: Iterable[int]) -> list[tuple[Box, int]]:
    """(bounding box, tallest line height) of each block of ``lines`` holding a seed line."""
    parent = list(range(len(lines)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            if _near(a, lines[j]):
                parent[root(i)] = root(j)
    chosen = {root(i) for i in seeds}
    members: dict[int, list[Box]] = {}
    for i, box in enumerate(lines):
        if root(i) in chosen:
            members.setdefault(root(i), []).append(box)
    out = []
    for group in members.values():
        x0 = min(b[0] for b in group)
        y0 = min(b[1] for b in group)
        x1 = max(b[0] + b[2] for b in group)
        y1 = max(b[1] + b[3] for b in group)
        out.append(((x0, y0, x1 - x0, y1 - y0), max(b[3] for b in group)))
    return out


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
