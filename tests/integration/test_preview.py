"""`dcmwatch preview` as an operator runs it: a subprocess, a real PNG, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from dcmwatch.pixels.preview import OUTLINE_RGB
from dcmwatch.pixels.window import linear_window

pytestmark = pytest.mark.integration

RULES = """
[[rules]]
name = "ct"
[rules.match]
Modality = "CT"
[[rules.actions]]
type = "mask"
rects = [[10, 20, 30, 40]]
fill_hu = -1000
[[rules.actions]]
type = "mask"
file = "masks/corner.png"
fill_hu = 3000
[[rules.actions]]
type = "window"
center = 40
width = 400
"""


def _bundled(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return Path(path)


def _preview(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DCMWATCH_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "dcmwatch", "preview", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A config with a rectangle, a PNG mask (rows 100..127, columns 100..127) and a window."""
    (tmp_path / "masks").mkdir()
    corner = np.zeros((128, 128), dtype=np.uint8)
    corner[100:, 100:] = 255
    Image.fromarray(corner).save(tmp_path / "masks" / "corner.png")
    cfg = tmp_path / "site.toml"
    cfg.write_text(RULES)
    return cfg


def test_png_shows_masks_outlined_and_filled(site: Path, tmp_path: Path) -> None:
    """Red outline on each mask's border, the fill inside, the windowed input elsewhere."""
    src = _bundled("CT_small.dcm")
    out = tmp_path / "shots" / "ct.png"
    result = _preview(tmp_path, str(src), "--config", str(site), "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        png = np.asarray(image)
    assert png.shape == (128, 128, 3)
    # Rectangle x=10, y=20, 30 x 40: border rows 20 and 59, columns 10 and 39.
    for row, col in [(20, 10), (20, 39), (59, 10), (59, 39), (40, 10), (20, 25)]:
        assert tuple(png[row, col]) == OUTLINE_RGB
    assert (png[21:59, 11:39] == 0).all()  # -1000 HU at W400/L40 is black
    # The PNG mask: its border red, inside the 3000 HU fill, white at this window.
    assert tuple(png[100, 110]) == OUTLINE_RGB and tuple(png[127, 127]) == OUTLINE_RGB
    assert (png[101:127, 101:127] == 255).all()
    # Everywhere else: the input's HU, windowed.
    ds = pydicom.dcmread(src)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = linear_window(hu, 40, 400)
    assert np.array_equal(png[70:95, 50:95, 0], expected[70:95, 50:95])
    assert np.array_equal(png[70:95, 50:95, 1], expected[70:95, 50:95])
    # Durable write left no temporary file, and the preview created no key or state folder.
    assert [p.name for p in out.parent.iterdir()] == ["ct.png"]
    assert not (tmp_path / "state").exists()


def test_without_config_renders_the_image(tmp_path: Path) -> None:
    """No rules (embedded default): the image windowed by its own window attributes."""
    out = tmp_path / "mr.png"
    result = _preview(tmp_path, str(_bundled("MR_small.dcm")), "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size == (64, 64)
    assert not (tmp_path / "state").exists()


def test_unrenderable_input_exits_1_without_its_name(site: Path, tmp_path: Path) -> None:
    """A file that is not DICOM: exit 1, a reason, and never the file's (PHI) name."""
    bad = tmp_path / "DOE^JOHN_1961.dcm"
    bad.write_bytes(b"not a dicom file at all" * 10)
    out = tmp_path / "x.png"
    result = _preview(tmp_path, str(bad), "-c", str(site), "-o", str(out))
    assert result.returncode == 1
    assert "not_dicom" in result.stderr
    assert "DOE" not in result.stderr + result.stdout
    assert not out.exists()


def test_undecodable_pixels_exit_1(site: Path, tmp_path: Path) -> None:
    result = _preview(tmp_path, str(_bundled("JPEG-lossy.dcm")), "-c", str(site),
                      "-o", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert "cannot be rendered" in result.stderr


def test_frame_beyond_the_image_exits_1(tmp_path: Path) -> None:
    result = _preview(tmp_path, str(_bundled("CT_small.dcm")), "--frame", "2",
                      "-o", str(tmp_path / "x.png"))
    assert result.returncode == 1
    assert "frame 2" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["{missing}", "-o", "x.png"],  # no such input
        ["{ct}"],  # -o is required
        ["{ct}", "-o", "x.png", "--frame", "0"],
        ["{ct}", "-o", "x.png", "--config", "{bad}"],
    ],
)
def test_usage_and_config_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nname = "x"\n[[rules.actions]]\ntype = "mask"\nfile = "no.png"\n')
    names = {"missing": str(tmp_path / "none.dcm"), "ct": str(_bundled("CT_small.dcm")),
             "bad": str(bad)}
    result = _preview(tmp_path, *[a.format(**names) for a in args])
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "x.png").exists()
