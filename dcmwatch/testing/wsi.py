"""A generated whole-slide microscopy file set: a tiled VOLUME pyramid, a LABEL and an OVERVIEW.

VL Whole Slide Microscopy Image Storage puts each pyramid level and each auxiliary image in its
own instance of one series (PS3.3 A.32.8): VOLUME levels tiled (TILED_FULL, 256 x 256 RGB tiles
here), the LABEL (a photograph of the slide's paper label: names, barcodes, handwriting) and the
OVERVIEW (the whole slide, label included) as single frames. Real files are gigabytes and full
of patients; these are small, deterministic and marked. The label's pixels spell nothing, but
its header carries the same markers as the others (`PATIENT_NAME`, `PATIENT_ID`).

`variant` lets a test make the claims lie, the way real exports do: a label without
(0008,0008) *Image Type* or (0048,0010) *Specimen Label in Image*, a label that says VOLUME,
one whose only tell is its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

__all__ = ["WSI_STORAGE", "SlideImage", "slide_set"]

#: VL Whole Slide Microscopy Image Storage.
WSI_STORAGE: Final = UID("1.2.840.10008.5.1.4.1.1.77.1.6")
PATIENT_NAME: Final = "ZZSLIDE^MARKER"
PATIENT_ID: Final = "ZZSLIDEID42"
TILE: Final = 256
#: Pixel spacing (mm) of the base level: 4 um, a 10x scan.
_BASE_SPACING: Final = 0.004

Kind = Literal["VOLUME", "LABEL", "OVERVIEW"]
#: How a generated label or overview describes itself.
#: no_claims: neither Image Type nor Specimen Label in Image; claims_volume: VOLUME, label flag
#: YES; claims_volume_no_flag: VOLUME, flag NO (only the imaged area tells).
Variant = Literal["honest", "no_claims", "claims_volume", "claims_volume_no_flag"]
#: The label: 25 x 25 mm of paper at 0.05 mm/pixel; the overview: the whole 75 x 25 mm slide.
_AUXILIARY: Final[tuple[tuple[Kind, int, int, float], ...]] = (
    ("LABEL", 500, 500, 0.05), ("OVERVIEW", 500, 1500, 0.05),
)


@dataclass(frozen=True, slots=True)
class SlideImage:
    """One instance of the set, as Part 10 bytes."""

    kind: Kind
    #: Pyramid level (0 = full resolution) for VOLUME images, else -1.
    level: int
    data: bytes
    rows: int
    columns: int
    frames: int


def slide_set(levels: int = 3, *, base_columns: int = 2048, base_rows: int = 1024,
              variant: Variant = "honest") -> list[SlideImage]:
    """VOLUME levels 0..levels-1 (each half the last), a LABEL and an OVERVIEW."""
    study, series = generate_uid(entropy_srcs=["wsi-study"]), generate_uid(entropy_srcs=["wsi"])
    images: list[SlideImage] = []
    for level in range(levels):
        columns, rows = base_columns >> level, base_rows >> level
        spacing = _BASE_SPACING * (1 << level)
        tiles = _tiles(_tissue(rows, columns, level))
        ds = _dataset(study, series, f"volume-{level}", ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"],
                      rows=TILE, columns=TILE, total=(rows, columns), spacing=spacing,
                      frames=len(tiles), label_in_image=False)
        ds.PixelData = np.stack(tiles).tobytes()
        images.append(SlideImage("VOLUME", level, _bytes(ds), TILE, TILE, len(tiles)))
    for kind, rows, columns, spacing in _AUXILIARY:
        image_type = _claimed_type(kind, variant)
        ds = _dataset(study, series, kind.lower(), image_type, rows=rows, columns=columns,
                      total=(rows, columns), spacing=spacing, frames=1,
                      label_in_image=_claimed_flag(variant))
        ds.PixelData = _label_pixels(rows, columns).tobytes()
        images.append(SlideImage(kind, -1, _bytes(ds), rows, columns, 1))
    return images


def _claimed_type(kind: str, variant: Variant) -> list[str] | None:
    if variant == "no_claims":
        return None
    if variant in ("claims_volume", "claims_volume_no_flag"):
        return ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    return ["ORIGINAL", "PRIMARY", kind, "NONE"]


def _claimed_flag(variant: Variant) -> bool | None:
    if variant == "no_claims":
        return None
    return variant != "claims_volume_no_flag"


def _tissue(rows: int, columns: int, level: int) -> npt.NDArray[np.uint8]:
    """A pink-and-purple RGB field that differs per pixel and level."""
    r = np.arange(rows, dtype=np.uint32)[:, None]
    c = np.arange(columns, dtype=np.uint32)[None, :]
    red = 180 + (r * 3 + c + level) % 60
    green = 80 + (r + c * 5 + level * 7) % 90
    blue = 150 + (r * 7 + c * 2) % 80
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def _tiles(image: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.uint8]]:
    """TILED_FULL order: row by row of tiles, each padded to TILE x TILE."""
    rows, columns = image.shape[:2]
    out = []
    for y in range(0, rows, TILE):
        for x in range(0, columns, TILE):
            tile = np.zeros((TILE, TILE, 3), np.uint8)
            part = image[y : y + TILE, x : x + TILE]
            tile[: part.shape[0], : part.shape[1]] = part
            out.append(tile)
    return out


def _label_pixels(rows: int, columns: int) -> npt.NDArray[np.uint8]:
    """White paper with black bars (a barcode's stand-in)."""
    img = np.full((rows, columns, 3), 245, np.uint8)
    for i, x in enumerate(range(20, min(columns, 480), 12)):
        img[40:200, x : x + 4 + (i % 3) * 2] = 0
    return img


def _dataset(study: str, series: str, name: str, image_type: list[str] | None, *, rows: int,
             columns: int, total: tuple[int, int], spacing: float, frames: int,
             label_in_image: bool | None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = WSI_STORAGE
    ds.SOPClassUID = WSI_STORAGE
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["wsi-instance", name])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID = PATIENT_NAME, PATIENT_ID
    ds.Modality = "SM"
    if image_type is not None:
        ds.ImageType = image_type
    if label_in_image is not None:
        ds.SpecimenLabelInImage = "YES" if label_in_image else "NO"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = total
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.ImagedVolumeHeight = round(total[0] * spacing, 3)
    ds.ImagedVolumeWidth = round(total[1] * spacing, 3)
    measures = Dataset()
    measures.PixelSpacing = [spacing, spacing]
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    return ds


def _bytes(ds: Dataset) -> bytes:
    buf = BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
