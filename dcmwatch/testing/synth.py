"""Synthetic CT series full of planted PHI, for tests and benchmarks.

Real patient data can never live in this repository, and pydicom's bundled files are too few and
too tidy to exercise a de-identifier: they lack private blocks, nested sequences and a dozen
identifying attributes at once. Every identifying attribute here carries a distinctive marker
(:class:`PhiMarkers`) so a test can grep output bytes, file names and logs for leaks.

Everything is deterministic from ``seed`` and ``patient_index``: the same arguments give
byte-identical files, so a failing test reproduces and benchmark inputs stay comparable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid

__all__ = [
    "MARKERS",
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "PhiMarkers",
    "ct_series",
    "ct_series_bytes",
    "find_markers",
    "to_bytes",
    "write_series",
]

_PHI_PREFIX: Final = "ZZPHI"

#: Private creator of the fake vendor block, as a scanner would write it in group 0009.
PRIVATE_CREATOR: Final = "ACME 1.0"
PRIVATE_GROUP: Final = 0x0009

#: (0028,1052) *Rescale Intercept*: stored value = HU - intercept.
_INTERCEPT: Final = -1024
_HU_AIR: Final = -1000
_HU_FAT: Final = -100
_HU_SOFT_TISSUE: Final = 40
_HU_BONE: Final = 700
#: Noise stays small so stored values remain in 0..2047: no pixel byte pair can ever spell a
#: printable marker, which keeps :func:`find_markers` free of false hits in pixel data.
_NOISE: Final = 12

# Fixed acquisition moment, so output never depends on the clock.
_STUDY_DATE: Final = "20240315"
_STUDY_TIME_S: Final = 10 * 3600 + 15 * 60  # 10:15:00
_FIELD_OF_VIEW_MM: Final = 350.0
_SLICE_MM: Final = 1.25

_IMPLEMENTATION_UID: Final = generate_uid(entropy_srcs=["dcmwatch.testing.synth"])


@dataclass(frozen=True, slots=True)
class PhiMarkers:
    """Distinctive marker values planted in every identifying attribute, so a test can grep output bytes and logs for them."""  # noqa: E501

    patient_name: str = "ZZPHINAME^MARKER"
    patient_id: str = "ZZPHIID4711"
    birth_date: str = "19010203"
    accession: str = "ZZPHIACC0815"
    institution: str = "ZZPHI GENERAL HOSPITAL"
    referring_physician: str = "ZZPHIDOC^REFERRER"
    operator: str = "ZZPHIOPS^TECH"
    address: str = "ZZPHI 1 MAIN STREET"
    other_patient_id: str = "ZZPHIOTHER99"
    study_id: str = "ZZPHISTUDY1"
    private_text: str = "ZZPHIPRIVATE"

    def strings(self) -> tuple[str, ...]:
        """Every value that must never leak, in field order; dates only in their raw DA form."""
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def name_components(self) -> tuple[str, ...]:
        """PN components, because a leak may reformat a name (``MARKER ZZPHINAME``)."""
        names = (self.patient_name, self.referring_physician, self.operator)
        return tuple(c for name in names for c in name.split("^") if c)

    def for_patient(self, patient_index: int) -> PhiMarkers:
        """Markers of another patient that contain none of this patient's markers as substrings.

        A plain suffix would not do: ``ZZPHIID47111`` contains ``ZZPHIID4711``, and a test that
        proves patient 0's data never reaches patient 1's output would then fail spuriously. So
        the index goes *inside* each value: after the ``ZZPHI`` prefix, or after the first letter
        of a name component without it; the birth date moves by ``patient_index`` years.
        """
        if patient_index < 0:
            raise ValueError("patient_index must be >= 0")
        if patient_index == 0:
            return self
        changes: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value: str = getattr(self, f.name)
            if f.name == "birth_date":
                changes[f.name] = f"{int(value[:4]) + patient_index:04d}{value[4:]}"
            else:
                changes[f.name] = "^".join(
                    _tag_component(c, patient_index) for c in value.split("^")
                )
        return dataclasses.replace(self, **changes)


def _tag_component(component: str, index: int) -> str:
    if component.startswith(_PHI_PREFIX):
        return f"{_PHI_PREFIX}{index}{component[len(_PHI_PREFIX) :]}"
    if not component:
        return component
    return f"{component[0]}{index}{component[1:]}"


MARKERS: Final = PhiMarkers()


def find_markers(data: bytes | str, markers: PhiMarkers = MARKERS) -> list[str]:
    """Which markers occur in ``data``: empty means no planted PHI leaked into it.

    Full values come first, then name components found on their own, each once. Matching is
    case-sensitive and exact, so it answers "was this value copied", not "was it disguised".
    """
    needles = dict.fromkeys((*markers.strings(), *markers.name_components()))
    if isinstance(data, str):
        return [n for n in needles if n in data]
    return [n for n in needles if n.encode() in data]


def ct_series(
    n: int,
    *,
    seed: int = 0,
    rows: int = 512,
    columns: int = 512,
    markers: PhiMarkers = MARKERS,
    patient_index: int = 0,
) -> list[Dataset]:
    """One axial CT series of ``n`` slices, each a complete CT Image Storage instance.

    ``patient_index`` > 0 plants ``markers.for_patient(patient_index)`` instead of ``markers``.
    Slice 0 also carries a graphics overlay in group 6000: PS3.15 Annex E says to remove it, as
    overlays often hold burnt-in annotations.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if rows < 8 or columns < 8:
        raise ValueError("rows and columns must be >= 8")
    marks = markers.for_patient(patient_index)
    uid = _UidSource(seed, patient_index)
    base = _base_image(rows, columns)
    rng = np.random.default_rng([seed, patient_index])
    # One noise field, wider than a slice: slice i sees the window shifted by i columns, so each
    # slice differs for the cost of one addition.
    noise = rng.integers(-_NOISE, _NOISE + 1, size=(rows, columns + max(n - 1, 0)), dtype=np.int16)
    series: list[Dataset] = []
    previous_sop = uid("localizer")
    for i in range(n):
        pixels = (base + noise[:, i : i + columns]).astype("<i2", copy=False)
        current = _Slice(i, uid("sop", i), previous_sop, pixels)
        series.append(_slice(current, marks, uid, seed))
        previous_sop = current.sop_uid
    return series


def ct_series_bytes(
    n: int,
    *,
    seed: int = 0,
    rows: int = 512,
    columns: int = 512,
    markers: PhiMarkers = MARKERS,
    patient_index: int = 0,
) -> list[bytes]:
    """The series as Part 10 files in memory, the shape a de-identifier reads from disk."""
    return [
        to_bytes(ds)
        for ds in ct_series(
            n,
            seed=seed,
            rows=rows,
            columns=columns,
            markers=markers,
            patient_index=patient_index,
        )
    ]


def write_series(
    folder: Path,
    n: int,
    *,
    seed: int = 0,
    rows: int = 512,
    columns: int = 512,
    markers: PhiMarkers = MARKERS,
    patient_index: int = 0,
) -> list[Path]:
    """Write the series as a scanner would, PHI in the file names, so tests prove names never leak."""  # noqa: E501
    folder.mkdir(parents=True, exist_ok=True)
    stem = markers.for_patient(patient_index).patient_name.split("^")[0]
    paths: list[Path] = []
    data = ct_series_bytes(
        n, seed=seed, rows=rows, columns=columns, markers=markers, patient_index=patient_index
    )
    for i, blob in enumerate(data):
        path = folder / f"{stem}_{i:04d}.dcm"
        path.write_bytes(blob)
        paths.append(path)
    return paths


def to_bytes(ds: Dataset) -> bytes:
    """Part 10 encoding (preamble, file meta), as the dataset's own transfer syntax says."""
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


class _UidSource:
    """Deterministic UIDs: one seed and patient give one study, and never another's."""

    __slots__ = ("_root",)

    def __init__(self, seed: int, patient_index: int) -> None:
        self._root = ("dcmwatch.testing.synth", str(seed), str(patient_index))

    def __call__(self, *parts: str | int) -> str:
        return str(generate_uid(entropy_srcs=[*self._root, *(str(p) for p in parts)]))


def _base_image(rows: int, columns: int) -> npt.NDArray[np.int16]:
    """A body-like cross-section in stored values: air, a fat rim, soft tissue, spine, ribs."""
    y, x = np.ogrid[:rows, :columns]
    cy, cx = (rows - 1) / 2, (columns - 1) / 2
    scale = min(rows, columns) / 2
    r = np.hypot((y - cy) / (0.8 * scale), (x - cx) / (0.95 * scale))
    hu = np.full((rows, columns), _HU_AIR, dtype=np.int16)
    hu[r < 1.0] = _HU_FAT
    hu[r < 0.92] = _HU_SOFT_TISSUE
    hu[(r > 0.82) & (r < 0.86)] = _HU_BONE  # ribs, as one ring
    spine = np.hypot((y - (cy + 0.45 * scale)) / scale, (x - cx) / scale) < 0.12
    hu[spine] = _HU_BONE
    return (hu - _INTERCEPT).astype(np.int16)


def _overlay_bits(rows: int, columns: int) -> bytes:
    """A burnt-in-style rectangle, packed as (60xx,3000) expects: 1 bit a pixel, LSB first."""
    mask = np.zeros((rows, columns), dtype=np.uint8)
    mask[rows // 16 : rows // 8, columns // 16 : columns // 2] = 1
    packed = np.packbits(mask.ravel(), bitorder="little").tobytes()
    return packed + b"\x00" * (len(packed) % 2)


def _time(seconds: float) -> str:
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    return f"{whole // 3600:02d}{whole // 60 % 60:02d}{whole % 60:02d}.{micros:06d}"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


@dataclass(frozen=True, slots=True)
class _Slice:
    """What varies from slice to slice; everything else follows from the markers and seed."""

    index: int
    sop_uid: str
    previous_sop_uid: str
    pixels: npt.NDArray[np.int16]

    @property
    def content_time(self) -> str:
        return _time(_STUDY_TIME_S + 125 + self.index * 0.5)

    @property
    def z(self) -> float:
        return -100.0 - self.index * _SLICE_MM


def _slice(s: _Slice, m: PhiMarkers, uid: _UidSource, seed: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = _file_meta(s.sop_uid)
    _sop_common(ds, s, m)
    _private(ds, m)
    _patient(ds, m)
    _acquisition(ds, seed)
    _study_series_plane(ds, s, m, uid)
    _image_pixel(ds, s)
    return ds


def _file_meta(sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # Set, not left to pydicom, whose default names its own version: output would change with it.
    meta.ImplementationClassUID = _IMPLEMENTATION_UID
    meta.ImplementationVersionName = "DCMWATCH_SYNTH"
    meta.SourceApplicationEntityTitle = "ACME_CT01"
    return meta


def _sop_common(ds: Dataset, s: _Slice, m: PhiMarkers) -> None:
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate = _STUDY_DATE
    ds.InstanceCreationTime = s.content_time
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = s.sop_uid
    ds.StudyDate = _STUDY_DATE
    ds.SeriesDate = _STUDY_DATE
    ds.AcquisitionDate = _STUDY_DATE
    ds.ContentDate = _STUDY_DATE
    ds.AcquisitionDateTime = f"{_STUDY_DATE}{s.content_time}"
    ds.StudyTime = _time(_STUDY_TIME_S)
    ds.SeriesTime = _time(_STUDY_TIME_S + 120)
    ds.AcquisitionTime = s.content_time
    ds.ContentTime = s.content_time
    ds.AccessionNumber = m.accession
    ds.Modality = "CT"
    ds.Manufacturer = "ACME Medical"
    ds.InstitutionName = m.institution
    ds.InstitutionAddress = m.address
    ds.ReferringPhysicianName = m.referring_physician
    ds.StationName = "ACMECT01"
    ds.StudyDescription = "CT CHEST W/O CONTRAST"
    ds.ProcedureCodeSequence = Sequence([_code("CTCHEST", "ACME", "CT chest without contrast")])
    ds.SeriesDescription = "AXIAL 1.25mm STANDARD"
    ds.PerformingPhysicianName = m.referring_physician
    ds.OperatorsName = m.operator
    ds.ManufacturerModelName = "Acme CT 9000"
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = CTImageStorage
    referenced.ReferencedSOPInstanceUID = s.previous_sop_uid
    ds.ReferencedImageSequence = Sequence([referenced])


def _patient(ds: Dataset, m: PhiMarkers) -> None:
    ds.PatientName = m.patient_name
    ds.PatientID = m.patient_id
    other_id = Dataset()
    other_id.PatientID = m.other_patient_id
    other_id.IssuerOfPatientID = "ACME RIS"
    other_id.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other_id])
    ds.PatientBirthDate = m.birth_date
    ds.PatientSex = "O"
    age = max(0, min(999, int(_STUDY_DATE[:4]) - int(m.birth_date[:4])))
    ds.PatientAge = f"{age:03d}Y"
    ds.PatientWeight = "72.5"
    ds.PatientAddress = m.address


def _acquisition(ds: Dataset, seed: int) -> None:
    ds.BodyPartExamined = "CHEST"
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = f"{_SLICE_MM}"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.DeviceSerialNumber = f"ACME{seed:06d}"
    ds.SoftwareVersions = "ACME-CT 4.2.1"
    ds.ProtocolName = "CHEST ROUTINE"
    ds.ReconstructionDiameter = f"{_FIELD_OF_VIEW_MM:.1f}"
    ds.DistanceSourceToDetector = "1085.6"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "150"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = "200"
    ds.Exposure = "100"
    ds.FilterType = "BODY"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "FFS"


def _study_series_plane(ds: Dataset, s: _Slice, m: PhiMarkers, uid: _UidSource) -> None:
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series")
    ds.StudyID = m.study_id
    ds.SeriesNumber = 2
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = s.index + 1
    corner = f"{-_FIELD_OF_VIEW_MM / 2:.3f}"
    ds.ImagePositionPatient = [corner, corner, f"{s.z:.3f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = uid("frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{s.z:.3f}"
    ds.RequestAttributesSequence = Sequence([_request_attributes(m)])


def _image_pixel(ds: Dataset, s: _Slice) -> None:
    rows, columns = s.pixels.shape
    spacing = f"{_FIELD_OF_VIEW_MM / columns:.6f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = [spacing, spacing]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.RescaleIntercept = str(_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    if s.index == 0:
        _overlay(ds, rows, columns)
    ds.add_new(0x7FE00010, "OW", s.pixels.tobytes())


def _request_attributes(m: PhiMarkers) -> Dataset:
    item = Dataset()
    item.AccessionNumber = m.accession
    item.RequestedProcedureID = m.accession
    item.ScheduledProcedureStepID = m.study_id
    item.ScheduledProtocolCodeSequence = Sequence([_code("CT-CH-01", "ACME", "Chest routine")])
    return item


def _private(ds: Dataset, m: PhiMarkers) -> None:
    """A vendor block of the kinds de-identifiers must handle: text, numbers, UN, a sequence."""
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", m.private_text)
    block.add_new(0x11, "SH", "RECON-A")
    block.add_new(0x12, "DS", "1.5")
    # An element whose VR the reader cannot know: the marker hides inside opaque bytes.
    unknown = f"{m.private_text}\x00".encode()
    block.add_new(0x13, "UN", unknown + b"\x00" * (len(unknown) % 2))
    item = Dataset()
    item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True).add_new(
        0x10, "LO", m.private_text
    )
    item.CodeMeaning = "ACME scan context"
    block.add_new(0x20, "SQ", Sequence([item]))


def _overlay(ds: Dataset, rows: int, columns: int) -> None:
    ds.add_new(0x60000010, "US", rows)  # Overlay Rows
    ds.add_new(0x60000011, "US", columns)  # Overlay Columns
    ds.add_new(0x60000022, "LO", "ACME annotation")  # Overlay Description
    ds.add_new(0x60000040, "CS", "G")  # Overlay Type: graphics
    ds.add_new(0x60000050, "SS", [1, 1])  # Overlay Origin
    ds.add_new(0x60000100, "US", 1)  # Overlay Bits Allocated
    ds.add_new(0x60000102, "US", 0)  # Overlay Bit Position
    ds.add_new(0x60003000, "OW", _overlay_bits(rows, columns))  # Overlay Data
