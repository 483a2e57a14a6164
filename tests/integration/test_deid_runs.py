"""Two daemon runs with a restart in between: the same inputs give byte-identical outputs, and
neither PHI nor the key reaches the log."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from dcmwatch.testing import find_markers, write_series
from tests.conftest import KEY_HEX, DaemonProcess, outputs, write_config

pytestmark = pytest.mark.integration

OPTIONS = 'options = ["retain_long_modified_dates", "clean_descriptors"]'


def _run_once(d: DaemonProcess, n: int) -> dict[str, bytes]:
    write_series(d.inbox, n, rows=32, columns=32)
    d.start()
    try:
        d.wait_outputs(n)
        d.wait_event("file.processed", count=n)
        assert d.stop() == 0
    finally:
        d.kill()
    got = {str(p.relative_to(d.outbox)): p.read_bytes() for p in outputs(d.outbox)}
    shutil.rmtree(d.outbox)
    return got


def test_restart_maps_the_same_inputs_to_identical_bytes(tmp_path: Path) -> None:
    d = DaemonProcess(write_config(tmp_path, OPTIONS), tmp_path)
    first = _run_once(d, 3)
    second = _run_once(d, 3)  # a new process: nothing but the key carries over
    assert len(first) == 3
    assert first == second
    for blob in first.values():
        assert find_markers(blob) == []

    log = d.log_text()
    assert find_markers(log) == []
    key = bytes.fromhex(KEY_HEX)
    for form in (KEY_HEX, KEY_HEX.upper(), base64.b64encode(key).decode(), KEY_HEX[:16]):
        assert form not in log
