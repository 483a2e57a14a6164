"""Outputs decode with dcmtk too (dcmdump parses them, dcm2pnm renders them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ._support import decode, read, roundtrip, rule, step_for, to_bytes

pytestmark = pytest.mark.skipif(
    shutil.which("dcmdump") is None or shutil.which("dcm2pnm") is None,
    reason="dcmtk (dcmdump, dcm2pnm) is not installed: apt-get install dcmtk",
)

#: Output syntaxes dcmtk's free build decodes: native, RLE, JPEG-LS (not JPEG 2000).
RENDERABLE = [
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "ExplVR_BigEnd.dcm",
    "image_dfl.dcm",
    "rtdose.dcm",
    "examples_palette.dcm",
    "liver_1frame.dcm",
]
PARSE_ONLY = ["MR_small_jp2klossless.dcm", "examples_jpeg2k.dcm"]

STEP = step_for([rule([{"type": "mask", "rects": [[1, 1, 2, 2]], "fill": 1}])])


def _write(name: str, folder: Path) -> Path:
    path = folder / f"out_{name}"
    path.write_bytes(to_bytes(STEP(read(name))))
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("name", RENDERABLE + PARSE_ONLY)
def test_dcmdump_parses_output(name: str, tmp_path: Path) -> None:
    """dcmdump reads the whole output without errors."""
    result = _run("dcmdump", "-q", "+E", str(_write(name, tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "E:" not in result.stderr


@pytest.mark.parametrize("name", RENDERABLE)
def test_dcm2pnm_renders_output(name: str, tmp_path: Path) -> None:
    """dcm2pnm decodes the output's pixel data."""
    out = tmp_path / "img.pnm"
    # dcm2pnm decodes native and RLE data; JPEG-LS needs its sibling dcml2pnm.
    tool = "dcml2pnm" if "jpeg_ls" in name and shutil.which("dcml2pnm") else "dcm2pnm"
    result = _run(tool, "+Fa", str(_write(name, tmp_path)), str(out))
    assert result.returncode == 0, result.stderr
    assert out.exists() or list(tmp_path.glob("img*"))


def test_dcm2pnm_pixels_match_pydicom(tmp_path: Path) -> None:
    """An 8-bit RGB RLE output: dcmtk's pixels equal pydicom's, the mask included."""
    path = _write("SC_rgb_rle.dcm", tmp_path)
    ppm = tmp_path / "img.ppm"
    result = _run("dcm2pnm", "--write-raw-pnm", str(path), str(ppm))
    assert result.returncode == 0, result.stderr
    data = ppm.read_bytes()
    header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+255\s", data)  # one whitespace after maxval
    assert header is not None
    width, height = int(header[1]), int(header[2])
    raster = data[header.end() : header.end() + width * height * 3]
    pixels = np.frombuffer(raster, np.uint8).reshape(height, width, 3)
    expected = decode(roundtrip(STEP(read("SC_rgb_rle.dcm"))))[0]
    assert np.array_equal(pixels, expected)


def test_dcm2pnm_reads_a_baked_secondary_capture(tmp_path: Path) -> None:
    """A baked CT (now an 8-bit Secondary Capture): dcmtk's pixels equal pydicom's."""
    step = step_for([rule([{"type": "window", "center": 40, "width": 400, "mode": "bake"}])])
    path = tmp_path / "baked.dcm"
    path.write_bytes(to_bytes(step(read("CT_small.dcm"))))
    assert _run("dcmdump", "-q", "+E", str(path)).returncode == 0
    pgm = tmp_path / "img.pgm"
    result = _run("dcm2pnm", "--write-raw-pnm", str(path), str(pgm))
    assert result.returncode == 0, result.stderr
    data = pgm.read_bytes()
    header = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", data)
    assert header is not None
    width, height = int(header[1]), int(header[2])
    pixels = np.frombuffer(data[header.end() : header.end() + width * height], np.uint8)
    expected = decode(roundtrip(step(read("CT_small.dcm"))))[0, :, :, 0]
    assert np.array_equal(pixels.reshape(height, width), expected)
