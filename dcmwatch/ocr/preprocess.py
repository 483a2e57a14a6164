"""Views of a rendered frame that OCR reads better than the frame itself, tried in turn.

An engine reads clean text of 20 px and more well and small text over speckle badly: its own
binarisation turns every speckle grain into a blob, its layout analysis then spends its time on
them, and thin strokes of 12 px text vanish. So the guard reads a frame as it is first (cheap,
and enough for text on a flat background), and only when that gave no finding does it read
cleaned views:

* ``light-text`` and ``dark-text``: the frame enlarged (small text gets the size engines are
  trained on) and cleaned of speckle grains, then each pixel compared with its neighbourhood's
  mean. Pixels clearly brighter (or darker) than their surroundings, and near the level of the
  brightest (darkest) such pixels (overlay text is drawn in one colour, at the extreme of the
  range; texture that passes sits lower), become black on white; isolated dots (speckle peaks
  that passed) are dropped. A flat plate, a gradient or an organ's shading drops out; only
  strokes remain. One view per polarity, since a banner can be either and the engines read
  dark on light best. Clean binary images are also quick to read.

  Enlarged twice (tesseract), the grains go by a 3x3 median: a grain of one frame pixel is a
  2x2 block there, which the median removes, while a one-pixel stroke of a thin 12 px mono
  font, two pixels wide now, survives it whole (a blur only dims the grain and dims the stroke
  with it). What grain is left is then rare enough for a lower threshold, which keeps the
  stroke's fainter anti-aliased pixels. At the frame's own size (rapidocr) a median would
  remove the thin strokes too: there a blur of about a pixel, a higher threshold, and the
  strokes thickened by a pixel afterwards, as thin fonts break up under that threshold.

The cleaned views make confident nonsense out of speckle now and then, so the guard counts
only header matches in them (`dcmwatch.ocr.step`).

`read_frame` stops at the first view with a finding, so a frame whose banner is found on the
first read costs one read; a frame without text costs all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from dcmwatch.ocr.engines import Engine, TextLine, Word, grey
from dcmwatch.ocr.errors import OcrTimeoutError

__all__ = ["VIEWS", "View", "read_frame", "read_views", "views"]

Image8 = npt.NDArray[np.uint8]
T = TypeVar("T")

#: Names of the views in the order they are read.
VIEWS = ("as-is", "light-text", "dark-text")
#: Enlargement of the cleaned views unless an engine asks otherwise: 12 px text becomes 24 px,
#: the size tesseract reads reliably.
SCALE = 2
#: Radius (in enlarged pixels) of the neighbourhood a stroke is compared with: wider than the
#: thickest stroke of 28 px text, so a stroke never makes up its own background.
_RADIUS = 12
#: A stroke differs from its neighbourhood by at least this much (of 255), and by a clear
#: margin over the neighbourhood's own spread (speckle that survived the cleaning): less of a
#: margin after a median (`_smooth`), which leaves fewer grains than a blur.
_MIN_CONTRAST = 24.0
_SPREAD_FACTOR = 2.5
_SPREAD_FACTOR_MEDIAN = 2.0
#: Neighbourhood (radius, in enlarged pixels) and share of it that must be stroke for a stroke
#: pixel to stay: a two-pixel stroke fills two fifths of a 5x5 window, a speckle dot far less.
_DOT_RADIUS = 2
_MIN_DENSITY = 0.3
#: How far below the text's own level (in thresholds) a stroke pixel may lie.
_LEVEL_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class View:
    name: str
    #: (rows, columns) grey or (rows, columns, 3) RGB, uint8.
    image: Image8
    #: View pixels per frame pixel.
    scale: int = 1
    #: Black strokes on white, nothing else.
    binary: bool = False

    def to_frame(self, lines: Sequence[TextLine]) -> tuple[TextLine, ...]:
        """``lines`` read in this view with their boxes in frame pixels."""
        if self.scale == 1:
            return tuple(lines)
        s = self.scale
        return tuple(
            TextLine(tuple(
                Word(w.text, shrink(w.box, s), w.confidence) for w in line.words
            ))
            for line in lines
        )


def shrink(box: tuple[int, int, int, int], s: int) -> tuple[int, int, int, int]:
    """A box read in an image enlarged ``s`` times, in the image's own pixels (rounded out)."""
    x, y, w, h = box
    x0, y0 = x // s, y // s
    x1, y1 = -(-(x + w) // s), -(-(y + h) // s)
    return (x0, y0, x1 - x0, y1 - y0)


def views(image: Image8, scale: int = SCALE) -> Iterator[View]:
    """The views of ``image`` in the order they are read, each built only when asked for;
    the cleaned ones enlarged ``scale`` times."""
    yield View("as-is", image)
    gray = grey(image)
    median = scale > 1
    big = _smooth(_enlarge(gray, scale) if median else gray, median=median)
    yield View("light-text", _strokes(big, light=True, median=median), scale, binary=True)
    yield View("dark-text", _strokes(big, light=False, median=median), scale, binary=True)


def read_frame(
    engine: Engine, image: Image8, deadline: float,
    judge: Callable[[tuple[TextLine, ...], View], list[T]],
) -> list[T]:
    """What ``judge`` makes of the lines of the first view of ``image`` in which it finds
    anything (nothing when no view gives a finding). Raises `OcrTimeoutError` past
    ``deadline`` (monotonic)."""
    for view in views(image, engine.view_scale):
        found = judge(_read(engine, view, deadline), view)
        if found:
            return found
    return []


def read_views(engine: Engine, image: Image8, deadline: float) -> tuple[TextLine, ...]:
    """Every line of every view, in frame pixels: for callers that want all the text an image
    holds rather than the first evidence of it (the same text may come once per view)."""
    out: list[TextLine] = []
    for view in views(image, engine.view_scale):
        out.extend(_read(engine, view, deadline))
    return tuple(out)


def _read(engine: Engine, view: View, deadline: float) -> tuple[TextLine, ...]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OcrTimeoutError("OCR took longer than ocr.time_limit_seconds")
    lines = engine.read(np.ascontiguousarray(view.image), remaining, binary=view.binary)
    return view.to_frame(lines)


def _enlarge(gray: Image8, scale: int) -> Image8:
    """OpenCV's bicubic (a = -0.75) rather than Pillow's (a = -0.5): its sharper kernel keeps
    a one-pixel stroke darker against the grain beside it; tesseract found a quarter more of
    the banners it had missed over speckle with it."""
    import cv2  # noqa: PLC0415 - OpenCV comes with the ocr extra

    rows, columns = gray.shape
    big = cv2.resize(gray, (columns * scale, rows * scale), interpolation=cv2.INTER_CUBIC)
    return np.asarray(big, dtype=np.uint8)


def _smooth(gray: Image8, *, median: bool) -> Image8:
    """Speckle grains removed by a 3x3 median (``median``: only in an enlarged view, where a
    one-pixel stroke is wide enough to survive it), else dimmed by a blur of about a pixel."""
    if median:
        import cv2  # noqa: PLC0415

        return np.asarray(cv2.medianBlur(np.ascontiguousarray(gray), 3), dtype=np.uint8)
    from PIL import Image, ImageFilter  # noqa: PLC0415

    img = Image.fromarray(gray, mode="L").filter(ImageFilter.GaussianBlur(1.0))
    return np.asarray(img, dtype=np.uint8)


def _box_mean(values: npt.NDArray[np.float32], radius: int) -> npt.NDArray[np.float32]:
    """Mean over a (2r+1)^2 window (edges replicated), by summed-area table: O(1) per pixel."""
    padded = np.pad(values, radius + 1, mode="edge")
    table = padded.cumsum(axis=0, dtype=np.float64).cumsum(axis=1)
    k = 2 * radius + 1
    rows, columns = values.shape
    total = (table[k:k + rows, k:k + columns] - table[:rows, k:k + columns]
             - table[k:k + rows, :columns] + table[:rows, :columns])
    return np.asarray(total / (k * k), dtype=np.float32)


def _strokes(gray: Image8, *, light: bool, median: bool) -> Image8:
    """Black strokes on white: pixels clearly brighter (``light``) or darker than their
    neighbourhood's mean. ``median``: ``gray`` was cleaned by a median (`_smooth`)."""
    values = gray.astype(np.float32)
    diff = values - _box_mean(values, _RADIUS)
    if not light:
        diff = -diff
    spread = np.sqrt(np.maximum(_box_mean(diff * diff, _RADIUS), 0))
    factor = _SPREAD_FACTOR_MEDIAN if median else _SPREAD_FACTOR
    threshold = max(_MIN_CONTRAST, factor * float(np.median(spread)))
    text = diff > threshold
    if text.any():
        # Overlay text is drawn in one colour, at the extreme of the frame's range; texture
        # that passed the local test sits lower. Keep what is near the brightest (darkest)
        # candidates' level.
        level = values if light else 255 - values
        top = float(np.percentile(level[text], 95))
        text &= level >= top - _LEVEL_FACTOR * threshold
    # Speckle peaks that pass the threshold are isolated dots; strokes are runs. A pixel stays
    # when enough of its small neighbourhood passed too. The dots would otherwise break the
    # engine's layout analysis into hundreds of one-letter "words".
    dense = _box_mean(text.astype(np.float32), _DOT_RADIUS) >= _MIN_DENSITY
    strokes = np.where(text & dense, 0, 255).astype(np.uint8)
    # After a blur, one pixel more around every stroke: thin fonts break up under its higher
    # threshold, and an engine reads a bold glyph better than a broken one. After a median the
    # strokes are whole, and thickening would only join the grain left beside them to them.
    return strokes if median else _thicken(strokes)


def _thicken(black_on_white: Image8) -> Image8:
    from PIL import Image, ImageFilter  # noqa: PLC0415

    img = Image.fromarray(black_on_white, mode="L").filter(ImageFilter.MinFilter(3))
    return np.asarray(img, dtype=np.uint8)
