"""The re-identification map end to end: the state folder's bytes with it off and on.

Off (the default): after the daemon has processed files full of PHI markers, no marker is
anywhere in the state folder (journal, its WAL, the key, the work area). On: the markers are
there, only in the journal's `reid` table, and `dcmwatch lookup` returns them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from dcmwatch.testing import MARKERS, find_markers, write_series
from tests.conftest import DaemonProcess, outputs, write_config

pytestmark = pytest.mark.integration


def _state_bytes(state: Path) -> dict[str, bytes]:
    return {str(p.relative_to(state)): p.read_bytes() for p in state.rglob("*") if p.is_file()}


def _run_daemon(root: Path, extra: str) -> DaemonProcess:
    d = DaemonProcess(write_config(root, extra), root)
    write_series(d.inbox, 3, rows=32, columns=32)
    try:
        d.start()
        d.wait_outputs(3)
        d.wait_event("file.processed", count=3)
        assert d.stop() == 0
    finally:
        d.kill()
    return d


def test_off_nothing_reversible_in_the_state_folder(tmp_path: Path) -> None:
    d = _run_daemon(tmp_path, "")
    state = _state_bytes(d.state)
    assert "journal.sqlite3" in state
    assert {name: find_markers(blob) for name, blob in state.items() if find_markers(blob)} == {}


def test_on_markers_only_in_the_reid_table_and_lookup_finds_them(tmp_path: Path) -> None:
    d = _run_daemon(tmp_path, "reid_map = true")
    state = _state_bytes(d.state)
    leaking = {name for name, blob in state.items() if find_markers(blob)}
    assert leaking == {"journal.sqlite3"}  # the WAL was checkpointed into it at close

    # Without the reid table's rows the database holds no marker: they were only there.
    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(d.state / "journal.sqlite3", copy)
    db = sqlite3.connect(copy)
    assert db.execute("SELECT COUNT(*) FROM reid").fetchone()[0] == 4  # id, name, study, series
    db.execute("DELETE FROM reid")
    db.commit()
    db.execute("VACUUM")
    db.close()
    assert find_markers(copy.read_bytes()) == []

    pseudonym = pydicom.dcmread(outputs(d.outbox)[0]).PatientID
    res = subprocess.run(
        [sys.executable, "-m", "dcmwatch", "lookup", "--config", str(d.config), pseudonym],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["originals"] == {
        "PatientID": [MARKERS.patient_id], "PatientName": [MARKERS.patient_name]}
    assert find_markers(res.stderr) == [] and find_markers(d.log_text()) == []
