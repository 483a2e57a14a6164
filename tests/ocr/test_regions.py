"""Where a redaction paints: whole lines, whole blocks, padded; independent of reading order."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcmwatch.ocr import regions
from dcmwatch.ocr.engines import Box, TextLine, Word
from dcmwatch.ocr.errors import OcrTimeoutError
from dcmwatch.ocr.findings import Finding
from dcmwatch.ocr.regions import ROW_GAP, blocks, merge, pad_block
from dcmwatch.ocr.scan import FrameText, Scan

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


def _reference(lines: Sequence[Box], seeds: Iterable[int]) -> list[tuple[Box, int]]:
    """The grouping as it was first written: every pair of lines compared (the oracle)."""
    parent = list(range(len(lines)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            if regions._near(a, lines[j]):
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


#: Lines as engines place them, some tiny or empty, and a banner's lines read again on other
#: frames: the same box, or a few pixels off.
any_boxes = st.builds(
    lambda x, y, w, h: (x, y, w, h),
    st.integers(0, 300), st.integers(0, 200), st.integers(0, 120), st.integers(0, 40),
)
jitter = st.tuples(*[st.integers(-3, 3)] * 4)


@st.composite
def readings(draw: st.DrawFn) -> list[Box]:
    banner = draw(st.lists(any_boxes, min_size=1, max_size=8))
    lines = list(banner)
    for _ in range(draw(st.integers(0, 12))):
        box = draw(st.sampled_from(banner))
        dx, dy, dw, dh = draw(jitter)
        lines.append((box[0] + dx, box[1] + dy, max(box[2] + dw, 0), max(box[3] + dh, 0)))
    return draw(st.permutations(lines))


@given(readings(), st.data())
def test_blocks_equal_comparing_every_pair(lines: list[Box], data: st.DataObject) -> None:
    """The grouping finds exactly the blocks, in the same order, that comparing every pair of
    lines finds, repeated and near-identical lines included."""
    seeds = data.draw(st.sets(st.integers(0, len(lines) - 1), min_size=1))
    assert blocks(lines, seeds) == _reference(lines, seeds)


@given(any_boxes, jitter)
def test_lines_taken_together_unread_are_near(box: Box, shift: tuple[int, ...]) -> None:
    """Two lines the grouping takes as one without comparing them are near by the rule."""
    x, y, w, h = box
    dx, dy, dw, dh = shift
    other = (x + dx, y + dy, max(w + dw, 0), max(h + dh, 0))
    if regions._key(box) == regions._key(other):
        assert regions._near(box, other)


def _counting_near(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    near = regions._near

    def counted(a: Box, b: Box) -> bool:
        calls[0] += 1
        return near(a, b)

    monkeypatch.setattr(regions, "_near", counted)
    return calls


#: A two-column banner of ten lines, as an ultrasound cine loop shows on every frame.
BANNER = [(10 + 170 * (k % 2), 8 + 18 * (k // 2), 150, 14) for k in range(10)]


def test_a_banner_on_300_frames_groups_as_one_frame_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """300 frames of the same ten banner lines cost what one frame costs, not the square of
    3,000 lines, and give the same block."""
    calls = _counting_near(monkeypatch)
    one = blocks(BANNER, [0])
    per_frame = calls[0]
    calls[0] = 0
    start = time.perf_counter()
    assert blocks(BANNER * 300, [0, 2995]) == one
    elapsed = time.perf_counter() - start
    assert calls[0] <= per_frame
    assert elapsed < 1.0


def test_a_banner_a_pixel_off_on_each_frame_stays_cheap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Read a pixel off here and there on 300 frames, the banner still costs a small share of
    comparing all pairs of its 3,000 lines, and is one block around all of them."""
    import random

    rnd = random.Random(7)
    lines = [(x + rnd.randint(-1, 1), y + rnd.randint(-1, 1), w + rnd.randint(-1, 1),
              h + rnd.randint(-1, 1)) for _ in range(300) for x, y, w, h in BANNER]
    calls = _counting_near(monkeypatch)
    found = blocks(lines, [0])
    pairs = len(lines) * (len(lines) - 1) // 2
    assert calls[0] < pairs // 100
    x0, y0 = min(x for x, _, _, _ in lines), min(y for _, y, _, _ in lines)
    x1, y1 = max(x + w for x, _, w, _ in lines), max(y + h for _, y, _, h in lines)
    assert found == [((x0, y0, x1 - x0, y1 - y0), max(h for _, _, _, h in lines))]


def test_an_expired_deadline_stops_the_grouping() -> None:
    """Past the image's time limit the grouping raises the guard's timeout (``ocr_timeout``)
    instead of running on; before it, the same lines group."""
    lines = BANNER * 3
    assert blocks(lines, [0], deadline=time.monotonic() + 60)
    with pytest.raises(OcrTimeoutError) as caught:
        blocks(lines, [0], deadline=time.monotonic() - 1)
    assert caught.value.reason == "ocr_timeout"


def test_regions_count_against_the_scans_deadline() -> None:
    """`Scan.regions` groups under the deadline the image was read under."""
    words = tuple(TextLine((Word("x", box, 90.0),)) for box in BANNER)
    finding = Finding(1, BANNER[0], 90.0, ("patient_name",))
    frames = tuple(FrameText(f, words, ((0, finding),)) for f in range(1, 4))
    assert Scan(3, frames, time.monotonic() + 60).regions(4, 480, 640)
    with pytest.raises(OcrTimeoutError):
        Scan(3, frames, time.monotonic() - 1).regions(4, 480, 640)
