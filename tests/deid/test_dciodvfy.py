"""De-identified outputs gain no ``Error`` lines under dciodvfy (dicom3tools) vs their inputs."""

from __future__ import annotations

import shutil
import subprocess
from io import BytesIO
from pathlib import Path

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


def _errors(path: Path) -> set[str]:
    assert DCIODVFY is not None
    run = subprocess.run(
        [DCIODVFY, str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    return {line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")}


def _inputs() -> dict[str, bytes]:
    files = {n: Path(get_testdata_file(n)).read_bytes()
             for n in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm")}  # fmt: skip
    files["synthetic_ct.dcm"] = ct_series_bytes(1, rows=64, columns=64)[0]
    return files


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "synthetic_ct.dcm"])
@pytest.mark.parametrize("options", [(), tuple(o for o in OPTION_NAMES if o != "retain_long_full_dates")])
def test_no_new_dciodvfy_errors(tmp_path: Path, name: str, options: tuple[str, ...]) -> None:
    """The basic profile (and all options together) keep each IOD as valid as it was."""
    blob = _inputs()[name]
    source, result = tmp_path / "in.dcm", tmp_path / "out.dcm"
    source.write_bytes(blob)
    deid = make_deidentifier(DeidSettings(options=options), KEY)
    result.write_bytes(to_bytes(deid(dcmread(BytesIO(blob), force=True))))
    assert sorted(_errors(result) - _errors(source)) == []
