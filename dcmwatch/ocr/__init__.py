"""The burned-in text guard: OCR the pixels that are about to leave, and stop what it finds.

Header de-identification cannot see a name painted into an ultrasound banner. After the pixel
rules, `make_ocr_step` reads the images the ``[ocr]`` section selects (modalities, or Burned In
Annotation = YES), compares each recognised word with the *original* header's identifying values
(`collect`, taken before de-identification) and quarantines, redacts (whole lines and blocks,
then checked by another reading: `dcmwatch.ocr.regions`, `dcmwatch.ocr.verify`) or flags, by
policy. Findings carry boxes, confidences and classes of header value, never the text.
`text_boxes` gives an operator's tools (``dcmwatch preview``, ``dcmwatch suggest-masks``) the
guard's own findings, from the same reading (`dcmwatch.ocr.scan`). Engines:
`dcmwatch.ocr.engines`.
"""

from dcmwatch.ocr.boxes import text_boxes
from dcmwatch.ocr.errors import (
    BurnedInTextError,
    BurnedInTextRemainsError,
    OcrEngineError,
    OcrTimeoutError,
)
from dcmwatch.ocr.findings import Finding
from dcmwatch.ocr.identifiers import IdentifyingValues, collect
from dcmwatch.ocr.settings import OcrSettings
from dcmwatch.ocr.step import OcrStep, make_ocr_step

__all__ = [
    "BurnedInTextError",
    "BurnedInTextRemainsError",
    "Finding",
    "IdentifyingValues",
    "OcrEngineError",
    "OcrSettings",
    "OcrStep",
    "OcrTimeoutError",
    "collect",
    "make_ocr_step",
    "text_boxes",
]
