"""The guard as a pipeline step: read the configured images, then quarantine, redact or flag.

Runs after de-identification and the pixel rules, on the dataset that is about to leave, with
the identifying values collected from the original header beforehand. Pure but for one thing:
the per-image time limit needs a clock. The outcome's *bytes* never depend on it; only whether
a slow image is quarantined (``ocr_timeout``) does.

``redact`` and ``redact_all`` remove regions, not words: every block of lines holding a finding
(`Scan.regions`), padded, is filled on every frame (a banner sits in the same place on each)
with the darkest value through the pixel rules' own mask action, so the image gets a new SOP
Instance UID and DERIVED like any pixel change. Then the redacted image is read again, otherwise
(`dcmwatch.ocr.verify`): any text left quarantines the file (``burned_in_text_remains``), since
a guard that blacks out some words of a banner and calls the rest clean is worse than none.
(0028,0301) Burned In Annotation becomes NO only after that check passed on every frame; with
``frames = "first"`` on a multi-frame image it stays as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from pydicom.dataset import Dataset

from dcmwatch.errors import DcmwatchError
from dcmwatch.ocr.engines import Box
from dcmwatch.ocr.errors import BurnedInTextError, BurnedInTextRemainsError, OcrEngineError
from dcmwatch.ocr.findings import Finding, summary
from dcmwatch.ocr.identifiers import IdentifyingValues
from dcmwatch.ocr.scan import Scan, scan
from dcmwatch.ocr.settings import OcrSettings
from dcmwatch.ocr.verify import remaining_text
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
        deadline = time.monotonic() + settings.time_limit_seconds
        read = scan(ds, ids, settings, pixel_settings.max_pixel_bytes, deadline=deadline)
        findings = read.findings
        if not findings:
            return ds, ()
        if settings.policy == "quarantine":
            raise BurnedInTextError(f"OCR found {summary(findings)}", findings)
        if settings.policy == "flag":
            return ds, findings
        return ds, _redact(ds, ids, read, settings, pixel_settings, derive_uid, deadline)

    return ocr_step


def read_image(
    ds: Dataset, ids: IdentifyingValues, settings: OcrSettings, max_pixel_bytes: int
) -> tuple[int, tuple[Finding, ...]]:
    """(number of frames, findings) for the frames ``settings.frames`` chooses."""
    read = scan(ds, ids, settings, max_pixel_bytes)
    return read.total, read.findings


def _redact(
    ds: Dataset,
    ids: IdentifyingValues,
    read: Scan,
    settings: OcrSettings,
    pixel_settings: PixelSettings,
    derive_uid: Callable[[str], str],
    deadline: float,
) -> tuple[Finding, ...]:
    rows, columns = int(ds.Rows), int(ds.Columns)
    regions = read.regions(settings.pad, rows, columns)
    rects = tuple((float(x), float(y), float(w), float(h)) for x, y, w, h in regions)
    action = MaskAction(type="mask", rects=rects, clears_burned_in=False)
    apply_actions(ds, [action], settings=pixel_settings, derive_uid=derive_uid)
    left = remaining_text(ds, ids, settings, pixel_settings.max_pixel_bytes, regions, deadline)
    if left:
        raise BurnedInTextRemainsError(
            f"text remains after redaction: {summary(left)}", (*read.findings, *left)
        )
    if read.read_all():
        ds.BurnedInAnnotation = "NO"
    return tuple(replace(f, redacted=True, filled=_around(f.box, regions))
                 for f in read.findings)


def _around(box: Box, regions: tuple[Box, ...]) -> Box | None:
    """The filled region holding the middle of ``box`` (every finding's line is in one)."""
    cx, cy = box[0] + box[2] // 2, box[1] + box[3] // 2
    for r in regions:
        if r[0] <= cx < r[0] + r[2] and r[1] <= cy < r[1] + r[3]:
            return r
    return None
