"""OCR engines behind one small interface: an 8-bit image in, lines of words with boxes out.

* ``tesseract`` — Debian's tesseract-ocr language data read through **tesserocr**, which calls
  libtesseract in-process. Chosen over pytesseract, which runs the ``tesseract`` program per image
  and hands it the image as a temporary file: that would write patient pixels to /tmp and pay a
  process start per image. tesserocr's ``Recognize(timeout)`` also enforces the time limit inside
  tesseract itself.
* ``rapidocr`` — **rapidocr-onnxruntime**: PP-OCR detection and recognition models that ship
  inside the wheel (nothing is downloaded at run time), run by onnxruntime on one thread (the
  worker pool is the parallelism). It reports lines, not words: a line's words share its box.

Engines are built once per process (loading models is too slow to repeat per image) and are
not thread-safe; each worker process has its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from dcmwatch.ocr.errors import OcrEngineError, OcrTimeoutError
from dcmwatch.ocr.settings import OcrSettings, find_tessdata

__all__ = ["Box", "Engine", "TextLine", "Word", "get_engine"]

#: (x, y, width, height) in image pixels, origin top-left.
Box = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    box: Box
    #: 0..100
    confidence: float


@dataclass(frozen=True, slots=True)
class TextLine:
    words: tuple[Word, ...]

    @property
    def box(self) -> Box:
        return union([w.box for w in self.words])


def union(boxes: list[Box]) -> Box:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


class Engine(Protocol):
    name: str
    #: How many times `dcmwatch.ocr.preprocess` enlarges a frame for its cleaned views.
    view_scale: int

    def read(
        self, image: npt.NDArray[np.uint8], timeout_s: float, *, binary: bool = False
    ) -> tuple[TextLine, ...]:
        """Text in ``image`` ((rows, columns) gray or (rows, columns, 3) RGB ``uint8``).

        ``binary``: the image is black strokes on white and nothing else (a cleaned view of
        `dcmwatch.ocr.preprocess`), which an engine may segment differently.
        Raises `OcrTimeoutError` when it took longer than ``timeout_s``.
        """
        ...


class TesseractEngine:
    name = "tesseract"
    #: Tesseract reads 12 px text far better at twice the size.
    view_scale = 2

    def __init__(self, tessdata: str, languages: str) -> None:
        import tesserocr  # noqa: PLC0415 - optional dependency, imported when chosen

        self._tesserocr: Any = tesserocr
        # Sparse text: banners and labels are scattered words, not a page of paragraphs.
        self._api: Any = tesserocr.PyTessBaseAPI(
            path=tessdata, lang=languages, psm=tesserocr.PSM.SPARSE_TEXT
        )

    def read(
        self, image: npt.NDArray[np.uint8], timeout_s: float, *, binary: bool = False
    ) -> tuple[TextLine, ...]:
        from PIL import Image  # noqa: PLC0415

        tess = self._tesserocr
        gray = grey(image)
        # Sparse-text mode suits a frame with scattered labels over anatomy, but on a cleaned
        # view it drops whole lines that stand among a few leftover dots; automatic page
        # segmentation reads them.
        self._api.SetPageSegMode(tess.PSM.AUTO if binary else tess.PSM.SPARSE_TEXT)
        self._api.SetImage(Image.fromarray(gray, mode="L"))
        started = time.monotonic()
        ok = self._api.Recognize(max(int(timeout_s * 1000), 1))
        if not ok:
            if time.monotonic() - started >= timeout_s * 0.9:
                raise OcrTimeoutError("OCR took longer than ocr.time_limit_seconds")
            raise OcrEngineError("tesseract could not read the image")
        lines: list[TextLine] = []
        words: list[Word] = []
        it = self._api.GetIterator()
        word_level, line_level = tess.RIL.WORD, tess.RIL.TEXTLINE
        for r in tess.iterate_level(it, word_level):
            try:
                text = r.GetUTF8Text(word_level) or ""
            except RuntimeError:  # tesserocr raises for an element without text
                text = ""
            bbox = r.BoundingBox(word_level)
            if text.strip() and bbox is not None:
                x0, y0, x1, y1 = bbox
                words.append(Word(text.strip(), (x0, y0, x1 - x0, y1 - y0),
                                  float(r.Confidence(word_level))))
            if r.IsAtFinalElement(line_level, word_level) and words:
                lines.append(TextLine(tuple(words)))
                words = []
        if words:
            lines.append(TextLine(tuple(words)))
        self._api.Clear()
        return tuple(lines)


class RapidOcrEngine:
    name = "rapidocr"
    #: Its recogniser scales every detected line to its own height; enlarging the frame would
    #: only quadruple the detector's work.
    view_scale = 1

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415 - optional dependency

        # One thread: the worker pool already runs one process per core. No angle classifier:
        # overlay text is upright, and it would cost a third of the time. Detection at the
        # image's own size (its default scales the *shorter* side up to 736 px: four times the
        # work on a 640x480 frame, and no better on overlay text), shrunk only beyond 2000 px.
        self._ocr: Any = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1,
                                  det_limit_type="max", det_limit_side_len=2000)

    def read(
        self, image: npt.NDArray[np.uint8], timeout_s: float, *, binary: bool = False
    ) -> tuple[TextLine, ...]:
        del binary  # the detector finds lines on any background
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        started = time.monotonic()
        # onnxruntime cannot be interrupted: the limit is checked once the call returns (the
        # daemon's per-file limit is the backstop for a call that never does).
        result, _ = self._ocr(np.ascontiguousarray(rgb[..., ::-1]), use_cls=False)
        if time.monotonic() - started > timeout_s:
            raise OcrTimeoutError("OCR took longer than ocr.time_limit_seconds")
        lines: list[TextLine] = []
        for points, text, score in result or ():
            xs = [float(p[0]) for p in points]
            ys = [float(p[1]) for p in points]
            x0, y0 = int(np.floor(min(xs))), int(np.floor(min(ys)))
            box = (max(x0, 0), max(y0, 0), int(np.ceil(max(xs))) - x0,
                   int(np.ceil(max(ys))) - y0)
            conf = float(score) * 100
            tokens = str(text).split()
            if tokens:
                lines.append(TextLine(tuple(Word(t, box, conf) for t in tokens)))
        return tuple(lines)


def grey(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """An 8-bit frame as one grey channel (ITU-R BT.601 luma for colour): what every reading
    and every cleaned view starts from."""
    if image.ndim == 2:
        return image
    weights = np.array([0.299, 0.587, 0.114])
    return np.asarray(np.clip(image @ weights + 0.5, 0, 255), dtype=np.uint8)


@lru_cache(maxsize=2)
def get_engine(engine: str, tessdata: str | None, languages: str) -> Engine:
    """The engine for these settings, built once per process."""
    if engine == "tesseract":
        folder = find_tessdata(tessdata)
        if folder is None:
            raise OcrEngineError("tesseract language data (eng.traineddata) was not found")
        return TesseractEngine(str(folder), languages)
    return RapidOcrEngine()


def engine_for(settings: OcrSettings) -> Engine:
    return get_engine(settings.engine, settings.tessdata, settings.languages)
