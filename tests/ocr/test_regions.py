"""Where a redaction paints: whole lines, whole blocks, padded; independent of reading order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dcmwatch.ocr.engines import Box
from dcmwatch.ocr.regions import ROW_GAP, blocks, merge, pad_block

boxes = st.builds(
    lambda x, y, w, h: (x, y, w, h),
    st.integers(0, 600), st.integers(0, 440), st.integers(1, 200), st.integers(6, 30),
)


def _inside(inner: Box, outer: Box) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1]
            and inner[0] + inner[2] <= outer[0] + outer[2]
            and inner[1] + inner[3] <= outer[1] + outer[3])


@given(st.lists(boxes, min_size=1, max_size=12), st.data())
def test_every_seed_line_lies_in_a_padded_block(lines: list[Box], data: st.DataObject) -> None:
    """Each line holding a finding is covered whole, with at least half a line height above and
    below and a line height at each side (clipped to the image)."""
    seeds = data.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1))
    found = blocks(lines, seeds)
    for i in seeds:
        line = lines[i]
        holding = [(b, h) for b, h in found if _inside(line, b)]
        assert holding, "a seed line outside every block"
        block, height = holding[0]
        assert height >= line[3]
        padded = pad_block(block, height, 4, 480, 640)
        assert padded is not None
        x, y, w, h = line
        grown = (max(x - h, 0), max(y - (h + 1) // 2, 0), 0, 0)
        assert padded[0] <= grown[0] and padded[1] <= grown[1]
        assert min(x + w + h, 640) <= padded[0] + padded[2]
        assert min(y + h + (h + 1) // 2, 480) <= padded[1] + padded[3]


@given(st.lists(boxes, min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_blocks_do_not_depend_on_reading_order(lines: list[Box], rnd: object) -> None:
    """The same lines read in another order give the same blocks."""
    import random

    assert isinstance(rnd, random.Random)
    order = list(range(len(lines)))
    rnd.shuffle(order)
    shuffled = [lines[i] for i in order]
    seeds = [order.index(0)]
    assert sorted(blocks(lines, [0])) == sorted(blocks(shuffled, seeds))


@given(st.integers(8, 30), st.floats(0, ROW_GAP), st.integers(10, 120))
def test_a_word_further_along_the_row_joins_the_line(height: int, gap: float,
                                                     width: int) -> None:
    """The rest of a row (``1973-03-`` beside a matched name) is painted with it, up to
    `ROW_GAP` line heights away; lines of unrelated height and far rows are not."""
    name = (20, 100, 120, height)
    rest = (20 + 120 + int(gap * height), 100, width, height)
    far = (20, 100 + 5 * height, 120, height)
    tiny = (20 + 120 + 2, 100, 5, max(height // 3, 1))
    [(block, _)] = blocks([name, rest, far, tiny], [0])
    assert _inside(rest, block)
    assert not _inside(far, block)
    assert block[1] + block[3] <= 100 + height


def test_merge_joins_overlapping_regions_and_clips() -> None:
    assert merge([(0, 0, 10, 10), (5, 5, 10, 10), (50, 50, 100, 100)], 0, 100, 100) == (
        (0, 0, 15, 15), (50, 50, 50, 50))
