"""The guard's findings in an image, for the tools an operator looks at.

`text_boxes` is what ``dcmwatch preview`` outlines beside the mask rectangles, and `text_regions`
what ``dcmwatch suggest-masks`` turns into rectangles. Both are the guard's own reading
(`dcmwatch.ocr.scan.scan`: same engine, thresholds, allow patterns and header values), so an
operator sees exactly what the guard acts on: a word that matched the patient's name at a low
confidence is outlined because the guard stops it, and speckle the guard ignores is not. Boxes,
confidences and frame numbers only, never the text.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from dcmwatch.ocr.engines import Box
from dcmwatch.ocr.identifiers import IdentifyingValues, collect
from dcmwatch.ocr.scan import Scan, scan
from dcmwatch.ocr.settings import OcrSettings

__all__ = ["TextBox", "text_boxes", "text_regions"]


@dataclass(frozen=True, slots=True)
class TextBox:
    #: 1-based frame number.
    frame: int
    box: Box
    confidence: float


def text_boxes(
    ds: Dataset, settings: OcrSettings, *, max_pixel_bytes: int = 2 * 1024**3,
    frame: int | None = None, ids: IdentifyingValues | None = None,
) -> tuple[TextBox, ...]:
    """The guard's findings in the frames ``settings.frames`` chooses, or in the 1-based
    ``frame`` alone, of ``ds`` as it is (apply the rules first to see what would remain).

    ``ids``: the identifying values to match, by default ``ds``'s own header's (pass the
    original's when ``ds`` was de-identified)."""
    read = _scan(ds, settings, max_pixel_bytes, frame, ids)
    return tuple(TextBox(f.frame, f.box, f.confidence) for f in read.findings)


def text_regions(
    ds: Dataset, settings: OcrSettings, *, max_pixel_bytes: int = 2 * 1024**3,
    ids: IdentifyingValues | None = None,
) -> tuple[tuple[TextBox, ...], tuple[Box, ...]]:
    """(the guard's findings, the regions its redaction would fill) in ``ds``."""
    read = _scan(ds, settings, max_pixel_bytes, None, ids)
    found = tuple(TextBox(f.frame, f.box, f.confidence) for f in read.findings)
    return found, read.regions(settings.pad, int(ds.Rows), int(ds.Columns))


def _scan(
    ds: Dataset, settings: OcrSettings, max_pixel_bytes: int, frame: int | None,
    ids: IdentifyingValues | None,
) -> Scan:
    only = None if frame is None else frame - 1
    return scan(ds, collect(ds) if ids is None else ids, settings, max_pixel_bytes, only=only)
