"""The Dask units verify cleanly and keep the daemon's sandbox (exposure <= 2.0). (The systemd
suite checks every unit in systemd/ the same way; this keeps the check on this branch too.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).parents[2] / "systemd"
UNITS = [SYSTEMD / "dcmwatch-dask-scheduler.service", SYSTEMD / "dcmwatch-dask-worker.service"]
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies_and_is_sandboxed(unit: Path, tmp_path: Path) -> None:
    assert ANALYZE is not None
    host = next(p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                if p.is_dir())
    shutil.copytree(host, tmp_path / "usr/lib/systemd/system", symlinks=True)
    stub = tmp_path / "opt/dcmwatch/bin/dask"  # installed later, by pip, into /opt/dcmwatch
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    dest = tmp_path / "etc/systemd/system" / unit.name
    dest.parent.mkdir(parents=True)
    shutil.copy(unit, dest)
    res = subprocess.run([ANALYZE, "verify", f"--root={tmp_path}", "--man=no",
                          "--generators=no", str(dest)],
                         capture_output=True, text=True, check=False, timeout=60)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stderr
    sec = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, check=False, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", sec.stdout + sec.stderr)
    assert m is not None, sec.stdout + sec.stderr
    assert float(m.group(1)) <= 2.0, sec.stdout
