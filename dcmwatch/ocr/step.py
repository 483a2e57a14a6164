"""The guard as a pipeline step: read the configured images, then quarantine, redact or flag.

Runs after de-identification and the pixel rules, on the dataset that is about to leave, with
the identifying values collected from the original header beforehand. Pure but for one thing:
the per-image time limit needs a clock. The outcome's *bytes* never depend on it; only whether
a slow image is quarantined (``ocr_timeout``) does.

``redact`` paints every finding's box, padded by ``pad``, on every frame (a banner sits in the
same place on each), with the darkest value through the pixel rules' own mask action: the image
gets a new SOP Instance UID and DERIVED like any pixel change. (0028,0301) Burned In Annotation
becomes NO only when every finding was redacted and every frame was read; with ``frames =
"first"`` on a multi-frame image, it stays as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from pydicom.dataset import Dataset

from dcmwatch.errors import DcmwatchError
from dcmwatch.ocr.engines import Box, TextLine, engine_for
from dcmwatch.ocr.errors import BurnedInTextError, OcrEngineError
from dcmwatch.ocr.findings import OTHER_TEXT, Finding, classify, summary
from dcmwatch.ocr.identifiers import IdentifyingValues
from dcmwatch.ocr.preprocess import View, read_frame
from dcmwatch.ocr.render import render_frames
from dcmwatch.ocr.settings import OcrSettings
from dcmwatch.pixels.settings import MaskAction, PixelSettings
from dcmwatch.pixels.step import apply_actions

__all__ = ["OcrStep", "make_ocr_step", "read_image"]

OcrStep = Callable[[Dataset, IdentifyingValues], tuple[Dataset, tuple[Finding, ...]]]


def make_ocr_step(
    settings: OcrSettings, pixel_settings: PixelSettings, derive_uid: Callable[[str], str]
) -> OcrStep:
    def ocr_step(ds: Dataset, ids: IdentifyingValues) -> tuple[Dataset, tuple[Finding, ...]]:
        if not settings.reads(ids.modality, ids.burned_in) or "PixelData" not in ds:
            return ds, ()
        try:
            return _guard(ds, ids)
        except DcmwatchError:
            raise
        except Exception as exc:  # a bug or an odd image: never quote the message
            name = type(exc).__name__
            raise OcrEngineError(f"the burned-in text guard failed ({name})") from None

    def _guard(ds: Dataset, ids: IdentifyingValues) -> tuple[Dataset, tuple[Finding, ...]]:
        total, findings = read_image(ds, ids, settings, pixel_settings.max_pixel_bytes)
        if not findings:
            return ds, ()
        if settings.policy == "quarantine":
            raise BurnedInTextError(f"OCR found {summary(findings)}", findings)
        if settings.policy == "flag":
            return ds, findings
        return ds, _redact(ds, findings, total, settings, pixel_settings, derive_uid)

    return ocr_step


def read_image(
    ds: Dataset, ids: IdentifyingValues, settings: OcrSettings, max_pixel_bytes: int
) -> tuple[int, tuple[Finding, ...]]:
    """(number of frames, findings) for the frames ``settings.frames`` chooses."""
    deadline = time.monotonic() + settings.time_limit_seconds
    engine = engine_for(settings)
    total, frames = render_frames(ds, settings.frames, max_pixel_bytes)
    findings: list[Finding] = []
    for index, image in frames:
        def judge(lines: tuple[TextLine, ...], view: View, frame: int = index + 1
                  ) -> list[Finding]:
            found = classify(lines, ids, settings, frame=frame)
            if view.name == "as-is":
                return found
            # A cleaned view turns speckle into confident nonsense now and then: there, only
            # a header value is evidence.
            return [f for f in found if f.classes != (OTHER_TEXT,)]

        try:
            # Cleaned views (preprocess) are read only when the frame as it is gave nothing.
            findings.extend(read_frame(engine, image, deadline, judge))
        except DcmwatchError:
            raise
        except Exception as exc:  # an engine's message could quote what it read
            raise OcrEngineError(f"the OCR engine failed ({type(exc).__name__})") from None
    return total, tuple(findings)


def _redact(
    ds: Dataset,
    findings: tuple[Finding, ...],
    total: int,
    settings: OcrSettings,
    pixel_settings: PixelSettings,
    derive_uid: Callable[[str], str],
) -> tuple[Finding, ...]:
    rows, columns = int(ds.Rows), int(ds.Columns)
    rects = tuple(_padded(f.box, settings.pad, rows, columns) for f in findings)
    action = MaskAction(type="mask", rects=rects, clears_burned_in=False)
    apply_actions(ds, [action], settings=pixel_settings, derive_uid=derive_uid)
    read_all = settings.frames == "all" or total == 1 or (
        isinstance(settings.frames, int) and settings.frames >= total
    )
    if read_all:
        ds.BurnedInAnnotation = "NO"
    return tuple(replace(f, redacted=True) for f in findings)


def _padded(box: Box, pad: int, rows: int, columns: int) -> tuple[float, float, float, float]:
    x, y, w, h = box
    x0, y0 = max(x - pad, 0), max(y - pad, 0)
    x1, y1 = min(x + w + pad, columns), min(y + h + pad, rows)
    return (float(x0), float(y0), float(max(x1 - x0, 1)), float(max(y1 - y0, 1)))
