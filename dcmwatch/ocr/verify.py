"""Check a redaction by reading the redacted image again, differently.

The engine that missed a word on the first pass misses it again on the same pixels, so the
check never repeats the first reading: the same engine reads a contrast-stretched, inverted
(dark text on light, what tesseract is trained on) and enlarged copy of the whole image, and
the other engine, when installed, reads the rows around each painted region as the guard
renders them. Text is left when either reading finds what the guard would act on (a header
value at any confidence, other confident text), or any text near a painted region (a line of
the banner the first pass did not place in its block; half the confidence the guard asks
elsewhere, since a word beside a banner is a suspect already, and at least `MIN_TEXT_HEIGHT`
high, since speckle read as text is tiny). Findings only: never the text.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence

import numpy as np
from pydicom.dataset import Dataset

from dcmwatch.errors import DcmwatchError
from dcmwatch.ocr.engines import Box, Engine, TextLine, Word, engine_for, get_engine, grey
from dcmwatch.ocr.errors import OcrEngineError, OcrTimeoutError
from dcmwatch.ocr.findings import OTHER_TEXT, Finding, flag_lines
from dcmwatch.ocr.identifiers import IdentifyingValues, normalise
from dcmwatch.ocr.preprocess import shrink
from dcmwatch.ocr.render import Image8, render_frames
from dcmwatch.ocr.settings import OcrSettings, find_tessdata

__all__ = ["ENLARGE", "MIN_TEXT_HEIGHT", "remaining_text", "verifiers"]

#: The same engine's second reading is of the image enlarged by this factor.
ENLARGE = 2
#: Words near a painted region lower than this (pixels) are speckle, not a line left over.
MIN_TEXT_HEIGHT = 6
#: Images larger than this many pixels are not enlarged (the time would go to nothing).
_ENLARGE_MAX_PIXELS = 4_000_000

#: Reads an 8-bit image within a time limit, knowing the regions that were filled.
Reader = Callable[[Image8, float, Sequence[Box]], tuple[TextLine, ...]]


def verifiers(settings: OcrSettings) -> list[Reader]:
    """The readers a redaction is checked with: the same engine on another preprocessing, over
    the whole image, and the other engine, when it is installed, over the rows around each
    filled region (where a line left out of a block would be; reading the whole image would
    cost it seconds on speckle)."""
    readers: list[Reader] = [_preprocessed(engine_for(settings))]
    other = _other_engine(settings)
    if other is not None:
        readers.append(_around_regions(other))
    return readers


def remaining_text(
    ds: Dataset, ids: IdentifyingValues, settings: OcrSettings, max_pixel_bytes: int,
    regions: Sequence[Box], deadline: float,
) -> tuple[Finding, ...]:
    """Findings in the redacted ``ds`` (the frames the first pass read), by every verifier,
    before ``deadline`` (`time.monotonic`; the image's time limit covers its check too)."""
    _, images = render_frames(ds, settings.frames, max_pixel_bytes)
    everything = settings.policy == "redact_all"
    readers = verifiers(settings)
    left: list[Finding] = []
    for index, image in images:
        for reader in readers:
            lines = _read(reader, image, deadline, regions)
            flagged = flag_lines(lines, ids, settings, frame=index + 1, everything=everything)
            left.extend(f for _, f in flagged)
            left.extend(_near_regions(lines, regions, settings.min_chars,
                                      settings.min_confidence / 2, frame=index + 1))
    return tuple(left)


def _near_regions(
    lines: Sequence[TextLine], regions: Sequence[Box], min_chars: int, floor: float, *,
    frame: int,
) -> list[Finding]:
    out = []
    for line in lines:
        for word in line.words:
            if (word.confidence >= floor and word.box[3] >= MIN_TEXT_HEIGHT
                    and len(normalise(word.text)) >= min_chars and any(
                _touches(word.box, r, margin=max(word.box[3], 1)) for r in regions
            )):
                out.append(Finding(frame, word.box, word.confidence, (OTHER_TEXT,)))
    return out


def _touches(a: Box, b: Box, *, margin: int) -> bool:
    return (a[0] < b[0] + b[2] + margin and b[0] - margin < a[0] + a[2]
            and a[1] < b[1] + b[3] + margin and b[1] - margin < a[1] + a[3])


def _read(
    reader: Reader, image: Image8, deadline: float, regions: Sequence[Box]
) -> tuple[TextLine, ...]:
    """``reader`` within what is left of ``deadline``, failures as our own errors."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OcrTimeoutError("OCR took longer than ocr.time_limit_seconds")
    try:
        return reader(image, remaining, regions)
    except DcmwatchError:
        raise
    except Exception as exc:  # an engine's message could quote what it read
        raise OcrEngineError(f"the OCR engine failed ({type(exc).__name__})") from None


def _preprocessed(engine: Engine) -> Reader:
    def read(image: Image8, timeout_s: float, _: Sequence[Box]) -> tuple[TextLine, ...]:
        scale = ENLARGE if image.shape[0] * image.shape[1] <= _ENLARGE_MAX_PIXELS else 1
        lines = engine.read(_contrast(image, scale), timeout_s)
        if scale == 1:
            return lines
        return tuple(TextLine(tuple(_moved(w, scale, 0) for w in line.words))
                     for line in lines)

    return read


def _around_regions(engine: Engine) -> Reader:
    def read(image: Image8, timeout_s: float, regions: Sequence[Box]) -> tuple[TextLine, ...]:
        started = time.monotonic()
        out: list[TextLine] = []
        for top, bottom in _bands(regions, image.shape[0]):
            left = timeout_s - (time.monotonic() - started)
            if left <= 0:
                raise OcrTimeoutError("OCR took longer than ocr.time_limit_seconds")
            band = np.ascontiguousarray(image[top:bottom])
            out.extend(TextLine(tuple(_moved(w, 1, top) for w in line.words))
                       for line in engine.read(band, left))
        return tuple(out)

    return read


def _bands(regions: Sequence[Box], rows: int) -> list[tuple[int, int]]:
    """Row ranges from a region's height above it to twice its height below its top, merged."""
    spans = sorted((max(y - h, 0), min(y + 2 * h, rows)) for _, y, _, h in regions)
    out: list[tuple[int, int]] = []
    for top, bottom in spans:
        if out and top <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], bottom))
        else:
            out.append((top, bottom))
    return [(t, b) for t, b in out if b > t]


def _contrast(image: Image8, scale: int) -> Image8:
    """Grey, stretched between its 1st and 99.9th percentile, inverted, enlarged ``scale`` x."""
    from PIL import Image  # noqa: PLC0415 - the ocr extra's dependency

    flat = grey(image)
    low, high = np.percentile(flat, (1.0, 99.9))
    span = max(float(high) - float(low), 1.0)
    stretched = np.clip((flat.astype(np.float32) - float(low)) * (255.0 / span), 0, 255)
    inverted = np.asarray(255 - stretched, dtype=np.uint8)
    if scale == 1:
        return inverted
    rows, columns = inverted.shape
    big = Image.fromarray(inverted, mode="L").resize((columns * scale, rows * scale),
                                                      Image.Resampling.BICUBIC)
    return np.asarray(big, dtype=np.uint8)


def _moved(word: Word, scale: int, top: int) -> Word:
    """``word`` read in an image enlarged ``scale`` times, or in a band starting at row ``top``,
    in the image's own coordinates."""
    x, y, w, h = shrink(word.box, scale)
    return Word(word.text, (x, y + top, w, h), word.confidence)


def _other_engine(settings: OcrSettings) -> Engine | None:
    if settings.engine == "tesseract":
        if importlib.util.find_spec("rapidocr_onnxruntime") is None:
            return None
        return get_engine("rapidocr", None, "eng")
    if importlib.util.find_spec("tesserocr") is None or find_tessdata(settings.tessdata) is None:
        return None
    return get_engine("tesseract", settings.tessdata, settings.languages)
