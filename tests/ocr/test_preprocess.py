"""The cleaned views: their strokes are the text's pixels (checked against the generator's
ground-truth maps, not against what an engine reads), their boxes come back in frame pixels,
and the cascade stops at the first view with a finding."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcmwatch.ocr.engines import TextLine, Word, get_engine
from dcmwatch.ocr.errors import OcrTimeoutError
from dcmwatch.ocr.preprocess import VIEWS, View, read_frame, read_views, views
from dcmwatch.ocr.render import render_frames
from dcmwatch.testing.groundtruth import Condition, make_case

from ._support import ENGINES


def _frame(condition: Condition, seed: int, *, text: bool = True) -> tuple[Any, np.ndarray]:
    case = make_case(seed, condition, text=text)
    _, frames = render_frames(case.dataset, "first", 2**31)
    return case, frames[0][1]


def _strokes_in_frame(view: View) -> np.ndarray:
    """Black pixels of a binary view, as frame pixels (any black in the block)."""
    s = view.scale
    black = view.image == 0
    rows, columns = black.shape[0] // s, black.shape[1] // s
    return black[: rows * s, : columns * s].reshape(rows, s, columns, s).any(axis=(1, 3))


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return out


class TestStrokeViews:
    @pytest.mark.parametrize(("polarity", "view_name"), [
        ("light-on-dark", "light-text"), ("dark-on-light", "dark-text")])
    def test_on_flat_ground_strokes_are_the_glyph_pixels(self, polarity: str,
                                                         view_name: str) -> None:
        """The view of the text's polarity keeps the glyph pixels and nothing else."""
        condition = Condition("flat", polarity)  # type: ignore[arg-type]
        for seed in range(3):
            case, frame = _frame(condition, seed)
            view = next(v for v in views(frame) if v.name == view_name)
            strokes = _strokes_in_frame(view)
            ink = case.text_mask()
            # Two frame pixels of slack for the enlargement's rounding.
            precision = (strokes & _grow(ink, 2)).sum() / max(strokes.sum(), 1)
            recall = (strokes & ink).sum() / ink.sum()
            assert precision > 0.95, ("precision", seed, precision)
            # The map counts any ink, the faintest anti-aliased edge pixel too; the
            # median-cleaned view keeps a stroke's core (less than half of those pixels at
            # 12 px), and every word keeps strokes of its own.
            assert recall > 0.35, ("recall", seed, recall)
            for token in case.tokens:
                share = (strokes & token.mask).sum() / token.mask.sum()
                assert share > 0.2, ("word", seed, share)

    @pytest.mark.parametrize(("background", "polarity", "view_name"), [
        ("speckle", "light-on-dark", "light-text"),
        ("speckle", "dark-on-light", "dark-text"),
        ("anatomy", "light-on-dark", "light-text"),
        ("anatomy", "dark-on-light", "dark-text"),
    ])
    def test_on_texture_strokes_stand_out(self, background: str, polarity: str,
                                          view_name: str) -> None:
        """Over speckle some grains survive, but a glyph pixel is far likelier to be a stroke
        than a pixel away from the text."""
        condition = Condition(background, polarity)  # type: ignore[arg-type]
        for seed in range(3):
            case, frame = _frame(condition, seed)
            view = next(v for v in views(frame) if v.name == view_name)
            strokes = _strokes_in_frame(view)
            ink = case.text_mask()
            on_glyphs = strokes[ink].mean()
            elsewhere = strokes[~_grow(ink, 3)].mean()
            assert elsewhere < 0.2, (seed, elsewhere)
            assert on_glyphs > 5 * elsewhere, (seed, on_glyphs, elsewhere)

    def test_views_come_in_order_and_are_binary(self) -> None:
        _, frame = _frame(Condition("anatomy", "dark-on-light", "RGB"), 2)
        got = list(views(frame))
        assert tuple(v.name for v in got) == VIEWS
        assert got[0].image is frame
        for v in got[1:]:
            assert v.binary
            assert set(np.unique(v.image)) <= {0, 255}
            assert v.image.shape == (frame.shape[0] * v.scale, frame.shape[1] * v.scale)


class TestBoxes:
    def test_boxes_return_to_frame_pixels(self) -> None:
        """A box read in a view enlarged twice covers the same frame pixels, rounded out."""
        view = View("light-text", np.zeros((8, 8), np.uint8), scale=2, binary=True)
        line = TextLine((Word("A", (10, 20, 30, 40), 90.0), Word("B", (3, 5, 2, 2), 80.0)))
        (back,) = view.to_frame([line])
        assert [w.box for w in back.words] == [(5, 10, 15, 20), (1, 2, 2, 2)]
        assert [w.text for w in back.words] == ["A", "B"]


    @given(x=st.integers(0, 2000), y=st.integers(0, 2000), w=st.integers(1, 500),
           h=st.integers(1, 500), scale=st.integers(1, 4))
    def test_a_box_back_in_the_frame_covers_what_was_read(self, x: int, y: int, w: int, h: int,
                                                          scale: int) -> None:
        """Scaled back up, the frame box contains the view box, and by less than one frame
        pixel more on each side: a redaction of it hides all that was read."""
        view = View("light-text", np.zeros((1, 1), np.uint8), scale=scale, binary=True)
        (line,) = view.to_frame([TextLine((Word("A", (x, y, w, h), 90.0),))])
        fx, fy, fw, fh = line.words[0].box
        assert fx * scale <= x and fy * scale <= y
        assert (fx + fw) * scale >= x + w and (fy + fh) * scale >= y + h
        assert x - fx * scale < scale and (fx + fw) * scale - (x + w) < scale


class _Counting:
    """A real engine that counts its reads."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.name = engine.name
        self.view_scale = engine.view_scale
        self.reads: list[bool] = []

    def read(self, image: np.ndarray, timeout_s: float, *, binary: bool = False) -> Any:
        self.reads.append(binary)
        return self._engine.read(image, timeout_s, binary=binary)


@pytest.mark.parametrize("engine_name", ENGINES)
class TestCascade:
    def test_a_plain_banner_costs_one_read(self, engine_name: str) -> None:
        engine = _Counting(get_engine(engine_name, None, "eng"))
        _, frame = _frame(Condition("flat", "light-on-dark"), 1)
        found = read_frame(engine, frame, time.monotonic() + 60, lambda lines, _v: list(lines))
        assert found
        assert engine.reads == [False]

    def test_a_frame_without_findings_is_read_in_every_view(self, engine_name: str) -> None:
        engine = _Counting(get_engine(engine_name, None, "eng"))
        _, frame = _frame(Condition("flat", "light-on-dark"), 1)
        found = read_frame(engine, frame, time.monotonic() + 60, lambda _l, _v: [])
        assert found == []
        assert engine.reads == [False, True, True]

    def test_read_views_reads_them_all(self, engine_name: str) -> None:
        """For callers that want all the text: every view, boxes inside the frame."""
        engine = _Counting(get_engine(engine_name, None, "eng"))
        _, frame = _frame(Condition("flat", "dark-on-light"), 1)
        lines = read_views(engine, frame, time.monotonic() + 60)
        assert engine.reads == [False, True, True]
        assert lines
        rows, columns = frame.shape[:2]
        for line in lines:
            x, y, w, h = line.box
            assert x >= 0 and y >= 0
            assert x + w <= columns + 1 and y + h <= rows + 1

    def test_past_the_deadline_it_stops(self, engine_name: str) -> None:
        engine = _Counting(get_engine(engine_name, None, "eng"))
        _, frame = _frame(Condition("flat", "light-on-dark"), 1)
        with pytest.raises(OcrTimeoutError):
            read_frame(engine, frame, time.monotonic() - 1, lambda lines, _v: list(lines))
        assert engine.reads == []
