"""Large native multi-frame files written frame by frame, for memory tests and benchmarks.

A 236 MB tomosynthesis-like file must not be committed, and building it as one numpy array
and one pydicom dataset would cost the generating process several times its size. Here the
header is written by pydicom and the Pixel Data element's header and frames are appended to it
one frame at a time, so the generator holds one frame at a time.

Pixel values are a closed form of (frame, row, column) (`expected_frame`), so a test can check
every pixel of the output, masked or not, without keeping the input.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

__all__ = ["MultiFrame", "expected_frame", "write_multiframe"]

#: Breast Tomosynthesis Image Storage: the files issue 21 was measured with.
TOMOSYNTHESIS: Final = UID("1.2.840.10008.5.1.4.1.1.13.1.3")
#: Marker values: a test greps outputs and logs for them.
PATIENT_NAME: Final = "ZZLARGE^MARKER"
PATIENT_ID: Final = "ZZLARGEID77"
#: Stored values stay below this (12 bits stored), whatever the pattern.
_BITS_STORED: Final = 12


@dataclass(frozen=True, slots=True)
class MultiFrame:
    """Where a generated file is and what its pixel data looks like."""

    path: Path
    frames: int
    rows: int
    columns: int
    #: Offset of the first Pixel Data byte in the file.
    pixel_offset: int

    @property
    def pixel_bytes(self) -> int:
        return self.frames * self.rows * self.columns * 2


def expected_frame(index: int, rows: int, columns: int) -> npt.NDArray[np.uint16]:
    """The stored values of frame ``index`` (0-based): a ramp that differs per frame, row and
    column and never reaches 0, so a zero fill is visible everywhere."""
    r = np.arange(rows, dtype=np.uint32)[:, None]
    c = np.arange(columns, dtype=np.uint32)[None, :]
    values = 1 + (r * 7 + c * 3 + index * 11) % ((1 << _BITS_STORED) - 1)
    return values.astype(np.uint16)


def write_multiframe(
    path: Path, *, frames: int, rows: int = 768, columns: int = 1024, modality: str = "MG",
    instance: int = 0,
) -> MultiFrame:
    """Write a 16-bit MONOCHROME2 multi-frame in Explicit VR Little Endian, frame by frame;
    `instance` tells several files of one shape apart (their SOP Instance UIDs)."""
    ds = _header(frames, rows, columns, modality, instance)
    buf = BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    head = buf.getvalue()
    length = frames * rows * columns * 2
    element = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, length)
    with path.open("wb") as fh:
        fh.write(head)
        fh.write(element)
        for f in range(frames):
            fh.write(expected_frame(f, rows, columns).astype("<u2").tobytes())
    return MultiFrame(path, frames, rows, columns, len(head) + len(element))


def _header(frames: int, rows: int, columns: int, modality: str, instance: int) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = TOMOSYNTHESIS
    ds.SOPClassUID = TOMOSYNTHESIS
    ds.SOPInstanceUID = generate_uid(
        entropy_srcs=["large", str(frames), str(rows), *([str(instance)] if instance else [])])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["large-study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["large-series"])
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.Modality = modality
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, _BITS_STORED, _BITS_STORED - 1
    ds.PixelRepresentation = 0
    return ds
