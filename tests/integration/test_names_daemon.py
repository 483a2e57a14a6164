"""The daemon's intake over inbox names that are not UTF-8 (Linux names are bytes): claimed,
processed or quarantined like any other, the name in no log line, journal row or sidecar."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from dcmwatch.testing import ct_series_bytes
from tests.conftest import DaemonProcess, outputs, write_config

pytestmark = pytest.mark.integration

_NAME_MARK = b"MKNAMEJOSE"


def _drop(inbox: Path, raw: bytes, data: bytes) -> None:
    """Complete and old, renamed in: the daemon takes it at once."""
    target = Path(os.fsdecode(os.fsencode(inbox) + b"/" + raw))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = inbox.parent / "staging.tmp"
    staging.write_bytes(data)
    old = time.time() - 3600
    os.utime(staging, (old, old))
    os.rename(staging, target)


def test_inbox_names_that_are_not_utf8(tmp_path: Path) -> None:
    """Two series files and a junk file, named with bytes no decoder accepts (one in a folder
    named so too): two outputs, one quarantine, nothing left in the inbox, no name anywhere."""
    d = DaemonProcess(write_config(tmp_path), tmp_path)
    good = ct_series_bytes(2, rows=16, columns=16)
    try:
        d.start()
        _drop(d.inbox, _NAME_MARK + b"\xff\xfe_1.dcm", good[0])
        _drop(d.inbox, b"sub\xe9" + _NAME_MARK + b"/" + _NAME_MARK + b"\x80_2.dcm", good[1])
        _drop(d.inbox, _NAME_MARK + b"\xffjunk.dcm", b"not dicom at all" * 16)
        d.wait_event("file.processed", count=2, timeout=60)
        d.wait_event("file.quarantined", timeout=60)
    finally:
        assert d.stop() == 0
    assert len(outputs(d.outbox)) == 2
    assert [p for p in d.inbox.rglob("*") if p.is_file()] == []
    db = sqlite3.connect(d.state / "journal.sqlite3")
    try:
        rows = dict(db.execute("SELECT outcome, COUNT(*) FROM files GROUP BY outcome"))
    finally:
        db.close()
    assert rows == {"processed": 2, "quarantined": 1}
    written = d.log_path.read_bytes()
    for folder in (d.outbox, d.quarantine, d.state):
        for path in folder.rglob("*"):
            written += os.fsencode(path)
            if path.suffix in (".json", ".sqlite3"):
                written += path.read_bytes()
    assert _NAME_MARK not in written
