"""Every file pydicom bundles, through the worker's error boundary with pixel rules that match
it: it comes out (and decodes) or is quarantined with a reason of ours; nothing is "internal".

The file list is the installed pydicom's own test-data folder, listed locally (names only, no
download). Non-DICOM files in it must be quarantined as such, not crash anything.
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dcmwatch import config as config_mod
from dcmwatch.engine.work import process_file
from tests.conftest import write_config

_ANCHOR = get_testdata_file("CT_small.dcm", download=False)
FOLDER = Path(_ANCHOR).parent if _ANCHOR else None
NAMES = sorted(p.name for p in FOLDER.iterdir() if p.is_file()) if FOLDER else []

#: Quarantine reasons an input may legitimately get (dcmwatch.errors, dcmwatch.pixels.errors).
REASONS = {"empty", "not_dicom", "truncated", "too_large", "not_regular_file", "transform",
           "burned_in_annotation", "pixel_data_too_large", "pixel_decode", "pixel_unsupported",
           "mask_geometry", "mask_outside_image",
           # the core's own pixel checks (limits.verify_compressed, declared vs actual length)
           "pixel_data"}

RULES = {
    "masks-and-hu": """
[pixels]
all_matching_rules = true
burned_in_annotation = "require-mask"
[[rules]]
name = "ct"
[rules.match]
Modality = "CT"
[[rules.actions]]
type = "hu_threshold"
below = -500
fill_hu = -1000
[[rules.actions]]
type = "hu_clip"
max = 2000
[[rules.actions]]
type = "mask"
rects = [[0, 0, 8, 4]]
fill_hu = -1000
[[rules.actions]]
type = "window"
center = 40
width = 400

[[rules]]
name = "all"
[[rules.actions]]
type = "mask"
rects = [[1, 1, 3, 2]]
circles = [[6, 6, 2]]
[[rules.actions]]
type = "mask"
polygons = [[[0, 0], [0.99, 0], [0, 0.99]]]
fractions = true
keep_inside = true
""",
    "bake": """
[[rules]]
name = "bake"
[[rules.actions]]
type = "mask"
rects = [[0, 0, 4, 4]]
[[rules.actions]]
type = "window"
center = 100
width = 500
mode = "bake"
""",
}


@pytest.fixture(scope="module", params=sorted(RULES))
def configured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> config_mod.Config:
    root = tmp_path_factory.mktemp(request.param)
    config = config_mod.load(write_config(root, RULES[request.param]))
    return config.with_secret(b"k" * 32)


@pytest.mark.skipif(not NAMES, reason="pydicom's test data is not installed")
@pytest.mark.parametrize("name", NAMES)
def test_comes_out_or_is_quarantined(name: str, configured: config_mod.Config) -> None:
    assert FOLDER is not None
    outcome = process_file(str(FOLDER / name), "c0ffee", configured, allow_hardlinks=True)
    assert outcome.status in ("processed", "quarantined"), outcome
    if outcome.status == "quarantined":
        assert outcome.reason in REASONS, (outcome.reason, outcome.message)
        assert outcome.message and "Traceback" not in outcome.message
        return
    out = configured.paths.outbox / outcome.output
    ds = pydicom.dcmread(io.BytesIO(out.read_bytes()))
    if "PixelData" in ds and ds.get("Rows"):
        assert ds.pixel_array.size > 0  # decodes with pydicom
