"""VOI windows: written as attributes, or baked into an 8-bit derived image.

The window is the linear VOI function of PS3.3 C.11.2.1.2.1, applied to modality values (after
the modality LUT, so ``center``/``width`` are in HU for CT)::

    x <= c - 0.5 - (w - 1) / 2  ->  0
    x >  c - 0.5 + (w - 1) / 2  ->  255
    else                        ->  ((x - (c - 0.5)) / (w - 1) + 0.5) * 255

rounded half up. A baked image holds display values, not modality values, so its modality LUT
becomes the identity ((0028,1053) *Rescale Slope* 1, (0028,1052) *Rescale Intercept* 0,
(0028,1054) *Rescale Type* US) and its window the identity (center 128, width 256). A
MONOCHROME1 input is baked inverted into MONOCHROME2, so it looks the same.

**A baked image is a Secondary Capture.** An 8-bit windowed image no longer fits its original
IOD (the CT Image module requires 12-16 bits and HU; MR likewise), so `as_secondary_capture`
makes it the derived screen capture it is: (0008,0016) *SOP Class UID* Secondary Capture Image
Storage for one frame, Multi-frame Grayscale Byte SC Image Storage for several (PS3.3 A.8.1,
A.8.3), (0008,0064) *Conversion Type* ``WSD`` (workstation), and for multi-frame the SC
Multi-frame Image module's Type 1/1C attributes: *Presentation LUT Shape* IDENTITY, a *Frame
Increment Pointer* to a *Page Number Vector* 1..n, an empty *Patient Orientation* when absent
(Type 2C without an Image Plane module), and *Burned In Annotation*, which when absent
is declared ``YES``: dcmwatch cannot see text, so the unknown case is the cautious one. The new
SOP Instance UID comes from the de-identifier's UID map like every changed image's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import (
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
)

from dcmwatch.pixels import header
from dcmwatch.pixels.codec import Pixels
from dcmwatch.pixels.errors import UnsupportedPixelsError
from dcmwatch.pixels.hu import ModalityLut
from dcmwatch.pixels.settings import WindowAction

__all__ = [
    "Window",
    "as_secondary_capture",
    "bake",
    "header_window",
    "linear_window",
    "set_window_tags",
]

_WINDOW_CENTER, _WINDOW_WIDTH, _VOI_LUT_FUNCTION = Tag(0x00281050), Tag(0x00281051), Tag(0x00281056)

_VOI_KEYWORDS = (
    "VOILUTSequence",
    "VOILUTFunction",
    "WindowCenterWidthExplanation",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
)
#: Attributes whose values are stored pixel values or map them: meaningless after a bake.
_STORED_VALUE_KEYWORDS = (
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "RealWorldValueMappingSequence",
)


@dataclass(frozen=True, slots=True)
class Window:
    """A VOI window in modality units: LINEAR (PS3.3 C.11.2.1.2.1) or LINEAR_EXACT
    (C.11.2.1.3.2)."""

    center: float
    width: float
    exact: bool = False

    @property
    def lower(self) -> float:
        """Values at or below this render as the lowest output, under LINEAR and LINEAR_EXACT
        alike (``c - 0.5 - (w - 1) / 2`` and ``c - w / 2`` are the same number)."""
        return self.center - self.width / 2

    @property
    def upper(self) -> float:
        """Values above this render as the highest output."""
        if self.exact:
            return self.center + self.width / 2
        return self.center - 0.5 + (self.width - 1) / 2


def header_window(ds: Dataset) -> Window | None:
    """The first (0028,1050) *Window Center* / (0028,1051) *Window Width* pair, as a viewer
    shows the image first; None when absent, unusable, or (0028,1056) *VOI LUT Function* is
    SIGMOID (under which no value renders exactly black)."""
    centers, widths = header.texts(ds, _WINDOW_CENTER), header.texts(ds, _WINDOW_WIDTH)
    if not centers or not widths:
        return None
    function = header.text(ds, _VOI_LUT_FUNCTION).upper()
    if function not in ("", "LINEAR", "LINEAR_EXACT"):
        return None
    try:
        center, width = float(centers[0]), float(widths[0])
    except ValueError:
        return None  # the header's claim is not a number: no window to honour
    if not (math.isfinite(center) and math.isfinite(width)) or width < 1:
        return None
    return Window(center, width, exact=function == "LINEAR_EXACT")


def linear_window(values: npt.NDArray[Any], center: float, width: float) -> npt.NDArray[np.uint8]:
    """The 8-bit output of the linear VOI function for modality ``values``."""
    x = np.asarray(values, dtype=np.float64)
    lower = center - 0.5 - (width - 1) / 2
    upper = center - 0.5 + (width - 1) / 2
    if width <= 1:
        y = np.where(x <= lower, 0.0, 255.0)
    else:
        y = ((x - (center - 0.5)) / (width - 1) + 0.5) * 255.0
        y = np.where(x <= lower, 0.0, np.where(x > upper, 255.0, y))
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)


def set_window_tags(ds: Dataset, action: WindowAction) -> None:
    """Write (0028,1050) *Window Center* and (0028,1051) *Window Width* as the only VOI.

    A (0028,3010) *VOI LUT Sequence* or other window values would compete with the configured one
    in a viewer, so they go; the pixels stay untouched.
    """
    for keyword in _VOI_KEYWORDS[:3]:
        if keyword in ds:
            del ds[keyword]
    ds.WindowCenter = _ds(action.center)
    ds.WindowWidth = _ds(action.width)


def _ds(value: float) -> str:
    """A DS string (at most 16 characters)."""
    text = f"{value:.6g}"
    return text if len(text) <= 16 else f"{value:.8e}"[:16]


def bake(
    ds: Dataset, pixels: Pixels, luts: tuple[ModalityLut, ...], action: WindowAction
) -> Pixels:
    """The windowed 8-bit image; updates the modality and VOI attributes of ``ds`` to match."""
    layout = pixels.layout
    if layout.photometric not in ("MONOCHROME1", "MONOCHROME2") or layout.samples != 1:
        raise UnsupportedPixelsError("a window bake matched a colour image")
    out = np.empty(pixels.array.shape, dtype=np.uint8)
    for f in range(layout.frames):
        lut = luts[f] if len(luts) > 1 else luts[0]
        out[f] = linear_window(lut.apply(pixels.array[f]), action.center, action.width)
    if layout.photometric == "MONOCHROME1":
        np.subtract(255, out, out=out)  # same picture, stored as MONOCHROME2
    _identity_modality(ds)
    for keyword in _VOI_KEYWORDS + _STORED_VALUE_KEYWORDS:
        if keyword in ds:
            del ds[keyword]
    ds.WindowCenter = "128"
    ds.WindowWidth = "256"
    baked = replace(
        layout,
        bits_allocated=8,
        bits_stored=8,
        pixel_representation=0,
        photometric="MONOCHROME2",
    )
    return Pixels(out, baked)


def as_secondary_capture(ds: Dataset, frames: int) -> None:
    """Make a baked 8-bit image a (multi-frame grayscale byte) Secondary Capture instance."""
    sop_class = (
        SecondaryCaptureImageStorage
        if frames == 1
        else MultiFrameGrayscaleByteSecondaryCaptureImageStorage
    )
    ds.SOPClassUID = sop_class  # (0002,0002) follows when the file is written
    ds.ConversionType = "WSD"
    if "PatientOrientation" not in ds:
        # Type 2C in General Image when the IOD has no Image Plane module, as SC has not.
        ds.PatientOrientation = None
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    if frames > 1:
        ds.PresentationLUTShape = "IDENTITY"
        ds.PageNumberVector = list(range(1, frames + 1))
        ds.FrameIncrementPointer = 0x00182001  # (0018,2001) Page Number Vector
        if not str(ds.get("BurnedInAnnotation", "") or "").strip():
            ds.BurnedInAnnotation = "YES"


def _identity_modality(ds: Dataset) -> None:
    if "ModalityLUTSequence" in ds:
        del ds.ModalityLUTSequence
    items: list[Dataset] = [ds]
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(keyword) or []:
            items.extend(group.get("PixelValueTransformationSequence") or [])
    for item in items:
        if "RescaleSlope" in item or "RescaleIntercept" in item or item is not ds:
            item.RescaleSlope = "1"
            item.RescaleIntercept = "0"
            if "RescaleType" in item or item is not ds:
                item.RescaleType = "US"
