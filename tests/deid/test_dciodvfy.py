"""De-identified outputs gain no ``Error`` lines under dciodvfy (dicom3tools) vs their inputs."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import Literal

import pytest
from conftest import KEY, to_bytes
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.settings import OPTION_NAMES
from dcmwatch.testing import ct_series_bytes

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy missing: apt-get install dicom3tools"
)


#: A UID dciodvfy quotes in a message: the same error on the input names the original UID.
_QUOTED_UID = re.compile(r"(UID) [0-9.]+$")


def _errors(path: Path) -> Counter[str]:
    """dciodvfy's Error lines, UIDs they quote masked, counted (a second instance is new)."""
    assert DCIODVFY is not None
    run = subprocess.run(
        [DCIODVFY, str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    lines = (run.stdout + run.stderr).splitlines()
    return Counter(_QUOTED_UID.sub(r"\1 <uid>", line) for line in lines if line.startswith("Error"))


#: pydicom's bundled files, by exact name: CT, MR (three encodings), RT (plan, dose, structure
#: set), SR (comprehensive and basic text), an overlay, a waveform.
BUNDLED = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
    "rtplan.dcm", "rtdose.dcm", "rtstruct.dcm", "test-SR.dcm", "reportsi.dcm",
    "examples_overlay.dcm", "waveform_ecg.dcm",
)  # fmt: skip
#: A realistic CT series: the first slice carries an overlay, the rest reference each other.
SERIES = tuple(f"synthetic_ct_{i}.dcm" for i in range(3))
_ALL_OPTIONS = tuple(o for o in OPTION_NAMES if o != "retain_long_full_dates")


def _input(name: str) -> bytes:
    if name in SERIES:
        return ct_series_bytes(len(SERIES), rows=64, columns=64)[SERIES.index(name)]
    return Path(get_testdata_file(name)).read_bytes()


def _new_errors(tmp_path: Path, name: str, settings: DeidSettings) -> list[str]:
    blob = _input(name)
    source, result = tmp_path / "in.dcm", tmp_path / "out.dcm"
    source.write_bytes(blob)
    deid = make_deidentifier(settings, KEY)
    result.write_bytes(to_bytes(deid(dcmread(BytesIO(blob), force=True))))
    # The input may have errors of its own (test-SR.dcm has several): none may be added.
    return sorted((_errors(result) - _errors(source)).elements())


@pytest.mark.parametrize("name", BUNDLED + SERIES)
@pytest.mark.parametrize("options", [(), _ALL_OPTIONS, ("retain_long_full_dates",)],
                         ids=["basic", "all-options", "full-dates"])
@pytest.mark.parametrize("unlisted", ["remove-text", "keep"])
def test_no_new_dciodvfy_errors(
    tmp_path: Path, name: str, options: tuple[str, ...], unlisted: Literal["keep", "remove-text"]
) -> None:
    """The basic profile (and the options) keep each IOD as valid as it was, whether the
    attributes Table E.1-1 does not name are kept or their text removed."""
    settings = DeidSettings(options=options, unlisted=unlisted)
    assert _new_errors(tmp_path, name, settings) == []


#: The images ``unlisted = "remove"`` keeps valid (its essential set covers CT and MR).
_IMAGES = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
           "examples_overlay.dcm", *SERIES)  # fmt: skip


@pytest.mark.parametrize("name", _IMAGES)
def test_remove_keeps_ct_and_mr_valid(tmp_path: Path, name: str) -> None:
    """``remove`` keeps every attribute a CT or MR image needs (README: not RT, SR, waveforms)."""
    assert _new_errors(tmp_path, name, DeidSettings(unlisted="remove")) == []
