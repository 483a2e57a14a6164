"""`dcmwatch process` over source names that are not UTF-8: Linux names are bytes, and an
archive written by another system's software holds Latin-1 or worse. Each such file is processed
(or quarantined) like any other, and its name appears in no log line, journal row or sidecar."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from dcmwatch.testing import ct_series_bytes
from tests.conftest import write_config

#: Name fragments that would betray the source name if they leaked anywhere.
_NAME_MARK = b"MKNAMEJOSE"
_NAMES = (
    _NAME_MARK + b"\xff\xfe_1.dcm",                 # bytes no decoder accepts
    _NAME_MARK + b"_Jos\xe9_2.dcm",                 # Latin-1
    b"dir\xe9" + _NAME_MARK + b"/" + _NAME_MARK + b"\x80_3.dcm",  # a folder too
)  # fmt: skip
_JUNK = _NAME_MARK + b"\xffjunk.dcm"


def _place(src: Path, raw: bytes, data: bytes) -> Path:
    path = Path(os.fsdecode(os.fsencode(src) + b"/" + raw))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _run(root: Path, *args: str | bytes) -> tuple[int, bytes, list[dict[str, object]]]:
    res = subprocess.run(
        [sys.executable, "-m", "dcmwatch", "process", "--config", str(root / "dcmwatch.toml"),
         "--batch-files", "2", *args],
        capture_output=True, timeout=180, cwd=root, check=False,
    )  # fmt: skip
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith(b"{")]
    return res.returncode, res.stdout + res.stderr, events


def _finished(events: list[dict[str, object]]) -> dict[str, object]:
    return next(e for e in events if e["event"] == "process.finished")


def _everything_written(root: Path) -> bytes:
    """The bytes of every journal, sidecar and the names of every file we wrote."""
    blob = b""
    for folder in ("outbox", "quarantine", "state"):
        for path in (root / folder).rglob("*"):
            blob += os.fsencode(path) + b"\n"
            if path.is_file() and path.suffix in (".json", ".sqlite", ".sqlite3", ".log"):
                blob += path.read_bytes()
    return blob


def _leaks(blob: bytes) -> bool:
    return _NAME_MARK in blob or _NAME_MARK.decode() in blob.decode("utf-8", "replace")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_config(tmp_path)
    src = tmp_path / "src"
    for raw, data in zip(_NAMES, ct_series_bytes(len(_NAMES), rows=16, columns=16), strict=True):
        _place(src, raw, data)
    _place(src, _JUNK, b"not dicom at all" * 16)
    return tmp_path


def test_names_that_are_not_utf8_are_processed_and_never_logged(root: Path) -> None:
    """Every file comes out (the junk one quarantined), the journal has a row for each, a rerun
    skips them all, and neither the log nor anything written carries the names."""
    code, logs, events = _run(root, "src")
    assert code == 1, logs[-3000:]  # the junk file is quarantined: exit 1, not a crash
    done = _finished(events)
    assert (done["processed"], done["quarantined"], done["failed"]) == (3, 1, 0)
    outputs = sorted((root / "outbox").rglob("*.dcm"))
    assert len(outputs) == 3
    for out in outputs:  # real DICOM, read by another reader than ours
        assert dcmread(out).PatientIdentityRemoved == "YES"
    assert len(list((root / "quarantine").glob("*.dcm"))) == 1
    db = sqlite3.connect(root / "state" / "backfill.sqlite")
    try:
        rows = db.execute("SELECT outcome, COUNT(*) FROM backfill GROUP BY outcome").fetchall()
    finally:
        db.close()
    assert dict(rows) == {"processed": 3, "quarantined": 1}
    code, more, events = _run(root, "src")
    assert code == 0, more[-3000:]
    assert _finished(events)["skipped"] == 4
    assert not _leaks(logs + more)
    assert not _leaks(_everything_written(root))


def test_a_manifest_may_name_files_whose_names_are_not_utf8(root: Path) -> None:
    """A manifest is the archive's own listing: its lines are names as bytes too."""
    manifest = root / "list.txt"
    src = os.fsencode(root / "src")
    manifest.write_bytes(b"".join(src + b"/" + raw + b"\n" for raw in _NAMES))
    code, logs, events = _run(root, "--manifest", str(manifest))
    assert code == 0, logs[-3000:]
    assert _finished(events)["processed"] == len(_NAMES)
    assert not _leaks(logs)


def test_a_source_named_on_the_command_line(root: Path) -> None:
    """The name as argv bytes, as a shell passes it."""
    path = os.fsencode(root / "src") + b"/" + _NAMES[0]
    code, logs, events = _run(root, path)
    assert code == 0, logs[-3000:]
    assert _finished(events)["processed"] == 1
    assert not _leaks(logs)
