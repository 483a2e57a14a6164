"""A baked (8-bit windowed) image becomes a Secondary Capture that validates as one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
)

from dcmwatch.testing import synth

from ._support import NEW_UID, decode, read, roundtrip, rule, step_for, synthetic, to_bytes
from .test_window import reference

BAKE = step_for([rule([{"type": "window", "center": 40, "width": 400, "mode": "bake"}])])


def _multiframe_ct() -> Dataset:
    """CT_small as three frames: a multi-frame 16-bit CT-like input."""
    ds = read("CT_small.dcm")
    arr = decode(ds)[0, :, :, 0]
    ds.PixelData = np.stack([arr, arr + 1, arr + 2]).astype("<i2").tobytes()
    ds.NumberOfFrames = 3
    ds.FrameIncrementPointer = 0x00182001
    ds.PageNumberVector = [1, 2, 3]
    return roundtrip(ds)


class TestSecondaryCapture:
    def test_single_frame(self) -> None:
        """SC Image Storage, WSD, DERIVED, new UID, identity modality LUT and window."""
        ds = read("CT_small.dcm")
        old_uid = ds.SOPInstanceUID
        out = roundtrip(BAKE(ds))
        assert out.SOPClassUID == SecondaryCaptureImageStorage
        assert out.file_meta.MediaStorageSOPClassUID == SecondaryCaptureImageStorage
        assert out.SOPInstanceUID == NEW_UID != old_uid
        assert out.file_meta.MediaStorageSOPInstanceUID == NEW_UID
        assert out.ConversionType == "WSD"
        assert out.ImageType[0] == "DERIVED"
        assert (out.BitsAllocated, out.BitsStored, out.HighBit) == (8, 8, 7)
        assert out.PhotometricInterpretation == "MONOCHROME2"
        assert (float(out.WindowCenter), float(out.WindowWidth)) == (128.0, 256.0)
        assert (float(out.RescaleSlope), float(out.RescaleIntercept)) == (1.0, 0.0)
        assert out.RescaleType == "US"
        assert "PixelPaddingValue" not in out  # referred to the old stored values
        assert "PatientOrientation" in out

    def test_multi_frame(self) -> None:
        """Several frames: Multi-frame Grayscale Byte SC with its Type 1C attributes."""
        out = roundtrip(BAKE(_multiframe_ct()))
        assert out.SOPClassUID == MultiFrameGrayscaleByteSecondaryCaptureImageStorage
        assert out.NumberOfFrames == 3
        assert out.FrameIncrementPointer == 0x00182001
        assert list(out.PageNumberVector) == [1, 2, 3]
        assert out.PresentationLUTShape == "IDENTITY"
        assert out.BurnedInAnnotation == "YES"  # unknown: the cautious answer
        assert decode(out).shape == (3, 128, 128, 1)

    def test_mask_then_bake_declares_no_burned_in_text(self) -> None:
        """A mask that covered every frame before the bake: Burned In Annotation NO."""
        step = step_for([rule([
            {"type": "mask", "rects": [[0, 0, 10, 10]]},
            {"type": "window", "center": 40, "width": 400, "mode": "bake"},
        ])])
        out = roundtrip(step(_multiframe_ct()))
        assert out.BurnedInAnnotation == "NO"

    def test_monochrome1_is_baked_as_monochrome2(self) -> None:
        """A MONOCHROME1 image keeps its look: windowed, inverted, stored as MONOCHROME2."""
        pixels = np.arange(-200, 200, dtype=np.int16).reshape(1, 20, 20, 1)
        ds = synthetic(pixels, photometric="MONOCHROME1", slope=2, intercept=-100)
        out = roundtrip(BAKE(ds))
        assert out.PhotometricInterpretation == "MONOCHROME2"
        hu = pixels[0, :, :, 0] * 2.0 - 100
        expected = 255 - np.vectorize(lambda x: reference(x, 40, 400))(hu)
        assert np.array_equal(decode(out)[0, :, :, 0], expected)


# -- dciodvfy (dicom3tools): no error the input did not already have ----------------------------
needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None,
    reason="dciodvfy is not installed: apt-get install dicom3tools",
)


def _errors(data: bytes, folder: Path, name: str) -> tuple[str, set[str]]:
    path = folder / name
    path.write_bytes(data)
    result = subprocess.run(
        ["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    text = result.stdout + result.stderr
    # The IOD dciodvfy recognised is the first line that is one bare word.
    iod = next((line for line in text.splitlines() if re.fullmatch(r"[A-Za-z]+", line)), "")
    errors = {
        re.sub(r"\s+", " ", line).strip()
        for line in text.splitlines()
        if line.startswith("Error")
    }
    return iod, errors


@needs_dciodvfy
@pytest.mark.parametrize(
    ("label", "make", "iod"),
    [
        ("CT_small", lambda: read("CT_small.dcm"), "SCImage"),
        ("multi-frame CT", _multiframe_ct, "MultiframeGrayscaleByteSCImage"),
        ("synthetic CT", lambda: synth.ct_series(1, rows=64, columns=64)[0], "SCImage"),
    ],
)
def test_dciodvfy_finds_no_new_error(label: str, make: object, iod: str, tmp_path: Path) -> None:
    """dciodvfy names the SC IOD and reports no error the input did not have."""
    assert callable(make)
    _, before = _errors(to_bytes(make()), tmp_path, "in.dcm")
    found, after = _errors(to_bytes(BAKE(make())), tmp_path, "out.dcm")
    assert found == iod
    assert after - before == set(), label
