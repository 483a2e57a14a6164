"""Synthetic images with a burned-in patient banner, for the OCR guard's tests and benchmarks.

An ultrasound-like frame (a dark background with a speckled fan) carries a banner of name, ID and
birth date drawn with Pillow's bundled font, so no system font is needed. Every photometric
interpretation the guard renders (MONOCHROME1/2, RGB, YBR_FULL, multi-frame; 8 and 16 bits) is
produced from the same drawing, so a detection rate can be compared across them. The header
carries the same values, so a test can tell a header match from other text.

Needs Pillow (the ``ocr`` and ``test`` extras).
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.processing import convert_color_space
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
)

__all__ = ["PATIENT", "Banner", "Patient", "banner_dataset", "banner_text", "to_bytes"]

Photometric = Literal["MONOCHROME2", "MONOCHROME1", "RGB", "YBR_FULL"]
Position = Literal["top-left", "top-right", "bottom-left", "center"]


@dataclass(frozen=True, slots=True)
class Patient:
    name: str = "ZZOCRDOE^JOHANNA"
    patient_id: str = "PID48213907"
    birth_date: str = "19510829"
    accession: str = "ACC7731942"
    institution: str = "Mercyhurst General"


PATIENT: Final = Patient()

_DATE_STYLES = ("%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d", "%Y%m%d")


def banner_text(patient: Patient = PATIENT, style: int = 0) -> str:
    """"NAME, GIVEN  ID  DOB" with the birth date in one of the common spellings."""
    family, _, given = patient.name.partition("^")
    y, m, d = patient.birth_date[:4], patient.birth_date[4:6], patient.birth_date[6:8]
    fmt = _DATE_STYLES[style % len(_DATE_STYLES)]
    dob = fmt.replace("%Y", y).replace("%m", m).replace("%d", d)
    names = (f"{family}, {given}", f"{family}^{given}", f"{given} {family}")
    return f"{names[style % 3]}  {patient.patient_id}  DOB {dob}"


@dataclass(frozen=True, slots=True)
class Banner:
    text: str
    #: Font size in pixels (Pillow's bundled font); capitals are about 0.72 of it.
    size: int = 18
    position: Position = "top-left"
    #: Brightness of the text, 0..1 of the displayable range.
    level: float = 1.0


def banner_dataset(
    banner: Banner | None,
    *,
    photometric: Photometric = "MONOCHROME2",
    bits: Literal[8, 16] = 8,
    frames: int = 1,
    rows: int = 480,
    columns: int = 640,
    modality: str = "US",
    patient: Patient = PATIENT,
    seed: int = 0,
) -> Dataset:
    """A Part 10 dataset whose every frame carries ``banner`` (none: an image without text)."""
    canvas = _canvas(rows, columns, seed)
    if banner is not None:
        canvas = np.maximum(canvas, _text(banner, rows, columns))
    colour = photometric in ("RGB", "YBR_FULL")
    max_value = (1 << (12 if bits == 16 else 8)) - 1
    values = np.asarray(np.rint(canvas * max_value), dtype=np.uint16 if bits == 16 else np.uint8)
    if photometric == "MONOCHROME1":
        values = np.asarray(max_value - values, dtype=values.dtype)
    if colour:
        blue = (values.astype(np.float64) * 0.8).astype(values.dtype)
        rgb = np.stack([values, values, blue], axis=-1)
        if photometric == "YBR_FULL":
            if bits != 8:
                raise ValueError("YBR_FULL synthetic images are 8-bit")
            rgb = convert_color_space(rgb, "RGB", "YBR_FULL")
        values = rgb
    stack = np.stack([values] * frames)
    return _dataset(stack, photometric, bits, frames, modality, patient, seed)


def _canvas(rows: int, columns: int, seed: int) -> npt.NDArray[np.float64]:
    """Dark background with a speckled sector, values 0..0.6: anatomy that is not text."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns]
    cy, cx = rows * 0.1, columns / 2
    r = np.hypot(y - cy, x - cx)
    angle = np.arctan2(x - cx, y - cy)
    sector = (r > rows * 0.15) & (r < rows * 0.9) & (np.abs(angle) < 0.6)
    speckle = rng.gamma(2.0, 0.12, size=(rows, columns))
    return np.where(sector, np.clip(speckle, 0, 0.6), 0.02)


def _text(banner: Banner, rows: int, columns: int) -> npt.NDArray[np.float64]:
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415 - test-only dependency

    font = ImageFont.load_default(size=banner.size)
    img = Image.new("L", (columns, rows), 0)
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), banner.text, font=font)
    width, height = right - left, bottom - top
    margin = 8
    x, y = {
        "top-left": (margin, margin),
        "top-right": (columns - width - margin, margin),
        "bottom-left": (margin, rows - height - margin),
        "center": ((columns - width) // 2, (rows - height) // 2),
    }[banner.position]
    # A dark plate behind the text, as scanners draw it.
    draw.rectangle((x - 4, y - 4, x + width + 4, y + height + 4), fill=0)
    draw.text((x - left, y - top), banner.text, fill=255, font=font)
    text = np.asarray(img, dtype=np.float64) / 255 * banner.level
    plate = np.zeros((rows, columns), dtype=bool)
    plate[max(y - 4, 0) : y + height + 5, max(x - 4, 0) : x + width + 5] = True
    return np.where(plate, text, -1.0)


def _dataset(
    stack: npt.NDArray[np.generic],
    photometric: str,
    bits: int,
    frames: int,
    modality: str,
    patient: Patient,
    seed: int,
) -> Dataset:
    ds = Dataset()
    if modality == "US":
        sop_class = UltrasoundMultiFrameImageStorage if frames > 1 else UltrasoundImageStorage
    else:
        sop_class = SecondaryCaptureImageStorage
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = UID(f"1.2.826.0.1.3680043.8.498.7001.{seed + 1}")
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.7002"
    ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.7003"
    ds.Modality = modality
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.AccessionNumber = patient.accession
    ds.InstitutionName = patient.institution
    ds.StudyDate = "20240315"
    ds.Manufacturer = "ACME Sonics"
    ds.ManufacturerModelName = "EchoView 9"
    ds.BurnedInAnnotation = "YES"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns = stack.shape[1], stack.shape[2]
    ds.SamplesPerPixel = 3 if stack.ndim == 4 else 1
    ds.PhotometricInterpretation = photometric
    if stack.ndim == 4:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = bits
    ds.BitsStored = 12 if bits == 16 else 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = 33.3
    ds.PixelData = np.ascontiguousarray(stack).tobytes()
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buf = BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
