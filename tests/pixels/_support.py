"""Helpers for the pixel tests: bundled files by exact name, synthetic images, decoding."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from dcmwatch import dicomfile
from dcmwatch.pixels import PixelRule, PixelSettings, PixelStep, make_pixel_step

NEW_UID = "1.2.826.0.1.3680043.8.498.424242"


def derive(uid: str) -> str:
    """A deterministic stand-in for the de-identifier's UID map."""
    return NEW_UID if uid != NEW_UID else NEW_UID + ".1"


def bundled_path(name: str) -> str:
    """A pydicom test file by exact name; skip (never download) when it is not bundled."""
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return str(path)


def read(name: str) -> Dataset:
    return pydicom.dcmread(bundled_path(name))


def roundtrip(ds: Dataset) -> Dataset:
    """Write as a Part 10 file and read back: what a consumer of the output sees."""
    return pydicom.dcmread(io.BytesIO(to_bytes(ds)))


def to_bytes(ds: Dataset) -> bytes:
    """The file dcmwatch writes (`dicomfile.encode`): by the file meta's transfer syntax
    (``save_as`` refuses a dataset read as big endian and converted to little endian), with a
    file meta made anew from the dataset's SOP Class and Instance UIDs."""
    return dicomfile.encode(ds)


def decode(ds: Dataset) -> np.ndarray[Any, Any]:
    """Decoded pixels as (frames, rows, columns, samples), no colour conversion."""
    arr, _ = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, raw=True)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1))
    return np.asarray(arr).reshape(frames, ds.Rows, ds.Columns, samples)


def rule(actions: Sequence[dict[str, Any]], match: dict[str, Any] | None = None) -> PixelRule:
    return PixelRule.model_validate(
        {"name": "test", "match": match or {}, "actions": list(actions)}
    )


def step_for(
    rules: Sequence[PixelRule], settings: PixelSettings | None = None
) -> Callable[[Dataset], Dataset]:
    """The pixel step, returning the dataset only: what most tests look at."""
    step = pixel_step_for(rules, settings)
    return lambda ds: step(ds)[0]


def pixel_step_for(rules: Sequence[PixelRule], settings: PixelSettings | None = None) -> PixelStep:
    """The pixel step as the pipeline runs it: ``ds -> (ds, applied)``."""
    return make_pixel_step(rules, settings or PixelSettings(), derive)


def synthetic(
    pixels: np.ndarray[Any, Any],
    *,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    modality: str = "OT",
    slope: float | None = None,
    intercept: float | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    planar: int = 0,
) -> Dataset:
    """A minimal image read back from bytes; ``pixels`` is (frames, rows, columns, samples)."""
    frames, rows, columns, samples = pixels.shape
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.Modality = modality
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples > 1:
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if slope is not None:
        ds.RescaleSlope = f"{slope:.10g}"
        ds.RescaleIntercept = f"{intercept or 0:.10g}"
    tsyntax = UID(transfer_syntax)
    order = "<" if tsyntax.is_little_endian else ">"
    data = pixels.astype(pixels.dtype.newbyteorder(order))
    if samples > 1 and planar == 1:
        data = data.transpose(0, 3, 1, 2)
    raw = np.ascontiguousarray(data).tobytes()
    ds.PixelData = raw + b"\0" if len(raw) % 2 else raw
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = tsyntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buf.getvalue()))
