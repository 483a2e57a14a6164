"""A mask that does not fit the image, through the real daemon: quarantined with the reason
``mask_outside_image`` in the event, the sidecar and `dcmwatch status`; nothing reaches the outbox
and no PHI reaches the log or the sidecar."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dcmwatch import cli
from dcmwatch.testing import ct_series_bytes, find_markers
from tests.conftest import DaemonProcess, outputs, write_config

pytestmark = pytest.mark.integration

#: A 64 x 64 CT meets a rectangle reaching column 70 (partly outside): no Rows/Columns in the
#: match, so only the image can tell.
RULE = """
[[rules]]
name = "device-banner"
[rules.match]
Modality = "CT"
[[rules.actions]]
type = "mask"
rects = [[0, 0, 64, 8], [40, 56, 30, 8]]
"""


def test_partly_outside_is_quarantined_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, RULE)
    d = DaemonProcess(cfg, tmp_path)
    (data,) = ct_series_bytes(1, rows=64, columns=64)
    staged = tmp_path / "staged.dcm"
    staged.write_bytes(data)
    old = time.time() - 3600
    os.utime(staged, (old, old))  # complete long ago: taken at once
    try:
        d.start()
        os.rename(staged, d.inbox / "scan.dcm")
        (event,) = d.wait_event("file.quarantined", timeout=30)
        d.wait_event("heartbeat", where=lambda e: e.get("quarantined", 0) >= 1, count=2)
        assert d.stop() == 0
    finally:
        d.kill()
    assert event["reason"] == "mask_outside_image"
    (sidecar,) = d.quarantine.glob("*.json")
    assert json.loads(sidecar.read_text())["reason"] == "mask_outside_image"
    assert outputs(d.outbox) == []
    assert find_markers(d.log_text()) == [] and find_markers(sidecar.read_text()) == []
    capsys.readouterr()
    assert cli.main(["status", "--json", "--config", str(cfg)], env={}) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["quarantine_reasons"]["last_day"] == {"mask_outside_image": 1}
