"""Whole-slide microscopy: keep the slide's label from passing (``[pixels] slide_label``).

A VL Whole Slide Microscopy series holds the tissue as a tiled VOLUME pyramid and, beside it,
a LABEL image (a photograph of the paper label: patient names, accession barcodes,
handwriting) and an OVERVIEW (the whole slide, label included). (0008,0008) *Image Type*
value 3 says which is which, and (0048,0010) *Specimen Label in Image* says whether the label
is visible. No header rule or mask can clean a label, so such images are not passed unless
the operator says ``keep``.

**The claims are checked against the image's size.** Exporters drop Image Type or write
VOLUME for everything, so an image counts as tissue only when everything agrees:

* Image Type value 3 is VOLUME or THUMBNAIL, and no value says LABEL or OVERVIEW;
* Specimen Label in Image is not YES;
* its imaged area is known — (0048,0001)/(0048,0002) *Imaged Volume Width/Height*, Type 1 in
  the Whole Slide Microscopy Image module, else Total Pixel Matrix Columns/Rows times the
  shared Pixel Spacing — and fits what a coverslip covers: the short side at most
  `COVERSLIP_MAX_MM` (coverslips are at most 24 mm wide; the slide is 25-26 mm, so an image
  wider than a coverslip shows the slide's edge, where the label is), the long side at most
  `SCAN_MAX_MM` (a 75-76 mm slide keeps ~20 mm at one end for the label).

Anything else — a label that says VOLUME, a file without Image Type, a VOLUME the size of the
whole slide — is treated as a label. A tissue image taken for a label is quarantined and a
person requeues it with ``keep``; a label taken for tissue would leak a name, so the doubt
goes that way. Which of these applies is in the error message (no value is quoted).

Images of other SOP classes are slides too when (0008,0060) *Modality* is SM: a label exported
as another class still shows the label.
"""

from __future__ import annotations

from typing import Final, Literal

from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dcmwatch.pixels import header
from dcmwatch.pixels.errors import SlideLabelError, SlideLabelWithheld

__all__ = ["COVERSLIP_MAX_MM", "SCAN_MAX_MM", "WSI_STORAGE", "check_slide_label", "label_reason"]

#: VL Whole Slide Microscopy Image Storage.
WSI_STORAGE: Final = "1.2.840.10008.5.1.4.1.1.77.1.6"
#: The widest coverslip is 24 mm (ISO 8255-1); a standard slide is 25-26 mm wide (ISO 8037-1).
COVERSLIP_MAX_MM: Final = 24.0
#: A 75-76 mm slide with ~20 mm of label end leaves ~55 mm that can hold tissue.
SCAN_MAX_MM: Final = 55.0

_SOP_CLASS, _MODALITY, _IMAGE_TYPE = Tag(0x00080016), Tag(0x00080060), Tag(0x00080008)
_LABEL_IN_IMAGE = Tag(0x00480010)
_WIDTH, _HEIGHT = Tag(0x00480001), Tag(0x00480002)
_TOTAL_COLUMNS, _TOTAL_ROWS = Tag(0x00480006), Tag(0x00480007)
_SHARED_GROUPS, _PIXEL_MEASURES, _PIXEL_SPACING = (
    Tag(0x52009229), Tag(0x00289110), Tag(0x00280030)
)
_LABEL_TYPES = frozenset({"LABEL", "OVERVIEW"})
_TISSUE_TYPES = frozenset({"VOLUME", "THUMBNAIL"})


def check_slide_label(ds: Dataset, policy: Literal["quarantine", "drop", "keep"]) -> None:
    """Raise `SlideLabelError` (quarantine) or `SlideLabelWithheld` (drop) for an image that
    may show the slide's label; nothing under ``keep`` or for anything else."""
    if policy == "keep":
        return
    reason = label_reason(ds)
    if reason is None:
        return
    if policy == "drop":
        raise SlideLabelWithheld(f"a whole-slide image withheld by slide_label = drop: {reason}")
    raise SlideLabelError(f"a whole-slide image that may show the slide label: {reason}")


def label_reason(ds: Dataset) -> str | None:
    """Why ``ds`` may show the slide label (a fixed phrase), or None when it is tissue only or
    no slide at all."""
    if header.text(ds, _SOP_CLASS) != WSI_STORAGE and header.text(ds, _MODALITY) != "SM":
        return None
    return _claims_reason(ds) or _size_reason(ds)


def _claims_reason(ds: Dataset) -> str | None:
    types = [t.upper() for t in header.texts(ds, _IMAGE_TYPE)]
    if _LABEL_TYPES.intersection(types):
        return "Image Type says LABEL or OVERVIEW"
    if header.text(ds, _LABEL_IN_IMAGE).upper() == "YES":
        return "Specimen Label in Image is YES"
    if len(types) < 3 or types[2] not in _TISSUE_TYPES:
        return "Image Type does not say VOLUME or THUMBNAIL"
    return None


def _size_reason(ds: Dataset) -> str | None:
    extent = imaged_area_mm(ds)
    if extent is None:
        return "the imaged area is not in the header"
    short, long = sorted(extent)
    if short > COVERSLIP_MAX_MM:
        return "the imaged area is wider than a coverslip"
    if long > SCAN_MAX_MM:
        return "the imaged area reaches the label end of the slide"
    return None


def imaged_area_mm(ds: Dataset) -> tuple[float, float] | None:
    """(width, height) in mm of what the image shows, None when the header does not say."""
    width, height = _positive(ds, _WIDTH), _positive(ds, _HEIGHT)
    if width is not None and height is not None:
        return width, height
    columns, rows = _positive(ds, _TOTAL_COLUMNS), _positive(ds, _TOTAL_ROWS)
    spacing = _shared_spacing(ds)
    if columns is None or rows is None or spacing is None:
        return None
    return columns * spacing[1], rows * spacing[0]


def _positive(ds: Dataset, tag: int) -> float | None:
    try:
        value = float(header.number(ds, tag))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _shared_spacing(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) spacing from the shared functional groups' Pixel Measures."""
    try:
        measures = ds[_SHARED_GROUPS].value[0][_PIXEL_MEASURES].value[0]
        row, column = (float(v) for v in measures[_PIXEL_SPACING].value)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
    return (row, column) if row > 0 and column > 0 else None
