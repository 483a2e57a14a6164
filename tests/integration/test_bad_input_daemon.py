"""The bad-input battery through the real daemon: each quarantined with its reason and a PHI-free
sidecar, the daemon still running and still processing good files after them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dcmwatch.testing import ct_series_bytes
from tests.conftest import DaemonProcess, outputs, write_config
from tests.integration.test_daemon import assert_no_phi, phi_name
from tests.test_bad_input import with_changes

pytestmark = pytest.mark.integration

TINY = {"rows": 16, "columns": 16}


def _drop(inbox: Path, name: str, data: bytes) -> None:
    """Complete and old: the daemon takes it at once and cannot mistake it for a slow write."""
    tmp = inbox.parent / f"staging-{name}"
    tmp.write_bytes(data)
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    os.rename(tmp, inbox / name)


def _absurd_pixel_length(data: bytes) -> bytes:
    pos = data.find(b"\xe0\x7f\x10\x00OW\x00\x00")  # (7FE0,0010) Pixel Data, explicit VR LE
    assert pos > 0
    return data[: pos + 8] + (0xFFFFFFF0).to_bytes(4, "little") + data[pos + 12 :]


def test_a_handful_of_bad_inputs_are_quarantined_and_the_daemon_goes_on(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    d = DaemonProcess(cfg, tmp_path)
    good = ct_series_bytes(2, **TINY)

    def huge(ds):  # type: ignore[no-untyped-def]
        ds.Rows = ds.Columns = 65535
        ds.NumberOfFrames = 100_000

    def short(ds):  # type: ignore[no-untyped-def]
        ds.PixelData = ds.PixelData[:-64]

    bad = {
        "empty": b"",
        "random": os.urandom(5000),
        "truncated": good[0][: len(good[0]) // 2],
        "absurd_length": _absurd_pixel_length(good[0]),
        "gigapixels": with_changes(huge),
        "short_pixels": with_changes(short),
    }
    try:
        d.start()
        for i, (_kind, data) in enumerate(bad.items()):
            _drop(d.inbox, phi_name(i), data)
        d.wait_event("file.quarantined", count=len(bad), timeout=60)
        _drop(d.inbox, phi_name(99), good[1])
        d.wait_outputs(1)
        assert d.proc is not None and d.proc.poll() is None
        assert d.stop() == 0
    finally:
        d.kill()
    reasons = sorted(json.loads(p.read_text())["reason"] for p in d.quarantine.glob("*.json"))
    assert len(reasons) == len(bad)
    assert "internal" not in reasons
    assert {"empty", "too_large", "pixel_data"} <= set(reasons), reasons
    assert len(outputs(d.outbox)) == 1
    assert_no_phi(d)


def test_a_file_over_the_time_limit_is_quarantined_and_the_daemon_goes_on(
    tmp_path: Path,
) -> None:
    """With a limit far below what a 512x512 image takes, it is stopped as `time_limit`."""
    cfg = write_config(tmp_path, "[limits]\nfile_seconds = 0.001\n")
    d = DaemonProcess(cfg, tmp_path)
    try:
        d.start()
        _drop(d.inbox, phi_name(1), ct_series_bytes(1, rows=512, columns=512)[0])
        ev = d.wait_event("file.quarantined", timeout=60)
        assert ev[0]["reason"] == "time_limit"
        assert d.proc is not None and d.proc.poll() is None
        assert d.stop() == 0
    finally:
        d.kill()
    assert_no_phi(d)
