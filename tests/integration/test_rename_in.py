"""A file renamed into the inbox from outside it is complete: taken at once, never settled.

MTAs, storescp and careful scripts write into a temporary folder on the same filesystem and
rename into the inbox. Plain watchdog reports such a rename as a *creation* (inotify's
IN_MOVED_TO without a matching IN_MOVED_FROM), which made each file wait `settle_seconds`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dcmwatch.testing import ct_series_bytes
from tests.conftest import DaemonProcess, write_config

pytestmark = pytest.mark.integration


def test_renamed_in_from_outside_is_taken_without_settling(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "")
    cfg.write_text(cfg.read_text().replace("settle_seconds = 1.0", "settle_seconds = 60.0"))
    daemon = DaemonProcess(cfg, tmp_path)
    outside = tmp_path / "spool"
    outside.mkdir()
    try:
        daemon.start()
        for i, blob in enumerate(ct_series_bytes(3, rows=64, columns=64)):
            staged = outside / f"f{i}.dcm"
            staged.write_bytes(blob)
            staged.rename(daemon.inbox / staged.name)
        daemon.wait_outputs(3, timeout=20)  # far less than the 60 s settle window
        events = daemon.wait_event("file.processed", count=3)
        assert all(0 <= e["latency_ms"] < 20_000 for e in events)
        # Renaming out of the inbox is no input, and breaks nothing.
        (outside / "gone.dcm").write_bytes(b"x")
        (outside / "gone.dcm").rename(daemon.inbox / ".hidden")
        (daemon.inbox / ".hidden").rename(outside / "back")
        assert daemon.stop() == 0
        assert "watch.handler_failed" not in daemon.log_text()
    finally:
        daemon.kill()
