"""Boxes of the text an engine reads in an image, for tools an operator looks at.

`text_boxes` is what ``dcmwatch preview`` can outline beside the mask rectangles and what
``dcmwatch suggest-masks`` turns into rectangles. It reports every word read with at least
``min_confidence`` and ``min_chars`` (allowed text included: a mask for a device covers it
all), never the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from dcmwatch.ocr.engines import Box, engine_for
from dcmwatch.ocr.identifiers import normalise
from dcmwatch.ocr.render import render_frames
from dcmwatch.ocr.settings import OcrSettings

__all__ = ["TextBox", "text_boxes"]


@dataclass(frozen=True, slots=True)
class TextBox:
    #: 1-based frame number.
    frame: int
    box: Box
    confidence: float


def text_boxes(
    ds: Dataset, settings: OcrSettings, *, max_pixel_bytes: int = 2 * 1024**3,
    frame: int | None = None,
) -> tuple[TextBox, ...]:
    """Word boxes in the frames ``settings.frames`` chooses, or in the 1-based ``frame`` alone
    (``ds`` as it is: apply rules first to see what would remain)."""
    engine = engine_for(settings)
    only = None if frame is None else frame - 1
    _, frames = render_frames(ds, settings.frames, max_pixel_bytes, only=only)
    out: list[TextBox] = []
    for index, image in frames:
        for line in engine.read(image, settings.time_limit_seconds):
            out.extend(
                TextBox(index + 1, w.box, w.confidence)
                for w in line.words
                if w.confidence >= settings.min_confidence
                and len(normalise(w.text)) >= settings.min_chars
            )
    return tuple(out)
