"""Cleaned streams decode to the same pixels in decoders that are not pydicom's: dcmtk's
dcmdjpeg, dcmdjpls and dcmdrle (IJG libjpeg, CharLS, dcmtk's own RLE) for the syntaxes its free
build reads, Pillow (libjpeg-turbo, OpenJPEG through another binding) for JPEG and JPEG 2000
codestreams. Bundled files as they are and with planted metadata."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from dcmwatch.pixels.streams import clean_pixel_data

from ._streams import MARK, even, frames, output, plant_j2k, plant_jpeg, with_fragments
from ._support import read

_TOOLS = {"jpeg": "dcmdjpeg", "jpegls": "dcmdjpls", "rle": "dcmdrle"}

DCMTK = [
    ("JPGExtended.dcm", "jpeg"),
    ("SC_jpeg_no_color_transform.dcm", "jpeg"),
    ("SC_jpeg_no_color_transform_2.dcm", "jpeg"),
    ("SC_rgb_dcmtk_+eb+cy+n1.dcm", "jpeg"),
    ("SC_rgb_jpeg_app14_dcmd.dcm", "jpeg"),
    ("SC_rgb_jpeg_dcmtk.dcm", "jpeg"),
    ("SC_rgb_jpeg_gdcm.dcm", "jpeg"),
    ("SC_rgb_jpeg_lossy_gdcm.dcm", "jpeg"),
    ("examples_ybr_color.dcm", "jpeg"),
    ("JPEGLSNearLossless_16.dcm", "jpegls"),
    ("MR_small_jpeg_ls_lossless.dcm", "jpegls"),
    ("SC_rgb_jls_lossy_sample.dcm", "jpegls"),
    ("MR_small_RLE.dcm", "rle"),
    ("SC_rgb_rle_32bit_2frame.dcm", "rle"),
    ("rtdose_rle.dcm", "rle"),
]


def _dcmtk_pixels(tool: str, data: bytes, tmp: Path, name: str) -> bytes:
    """Pixel Data of `data` after dcmtk decompressed it to a native file."""
    src, dst = tmp / f"{name}.in.dcm", tmp / f"{name}.out.dcm"
    src.write_bytes(data)
    subprocess.run([tool, str(src), str(dst)], check=True, capture_output=True, timeout=60)
    value: bytes = pydicom.dcmread(dst).PixelData
    return value


@pytest.mark.skipif(shutil.which("dcmdjpeg") is None, reason="dcmtk is not installed")
@pytest.mark.parametrize(("name", "family"), DCMTK)
def test_dcmtk_decodes_the_same_pixels(name: str, family: str, tmp_path: Path) -> None:
    tool = _TOOLS[family]
    ds = read(name)
    original = _dcmtk_pixels(tool, output(ds), tmp_path, "original")
    first = frames(ds)[0]
    if family != "rle":
        planted = with_fragments(ds, [even(plant_jpeg(first)), *map(even, frames(ds)[1:])])
    else:
        planted = with_fragments(ds, [even(f + MARK) for f in frames(ds)], bot=MARK + b"!")
    for source in (read(name), planted):
        clean_pixel_data(source)
        data = output(source)
        assert MARK not in data
        assert _dcmtk_pixels(tool, data, tmp_path, "cleaned") == original


def _pillow(stream: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(stream)) as image:
        return np.asarray(image)


@pytest.mark.parametrize("name", ["SC_jpeg_no_color_transform.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                  "SC_rgb_jpeg_lossy_gdcm.dcm", "JPEG2000.dcm",
                                  "MR_small_jp2klossless.dcm", "SC_rgb_gdcm_KY.dcm"])
def test_pillow_decodes_the_same_pixels(name: str) -> None:
    ds = read(name)
    first = frames(ds)[0]
    expected = _pillow(first)
    plant = plant_j2k if first[:2] == b"\xff\x4f" else plant_jpeg
    planted = with_fragments(ds, [even(plant(first))])
    assert np.array_equal(_pillow(frames(planted)[0]), expected)
    clean_pixel_data(planted)
    cleaned = frames(planted)[0]
    assert MARK not in cleaned
    assert np.array_equal(_pillow(cleaned), expected)
