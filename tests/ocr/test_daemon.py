"""The guard in the running daemon: findings reach the log as `ocr.finding` (and the regions a
redaction filled as `ocr.redacted`), quarantines carry reason burned_in_text with boxes in the
sidecar, and no recognised text is in any log line, sidecar or error message (marker test)."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from dcmwatch.testing.banners import Banner, banner_dataset, banner_text, to_bytes
from tests.conftest import DaemonProcess, outputs, write_config

from ._support import installed, leaked

pytestmark = pytest.mark.integration


def _drop(daemon: DaemonProcess, name: str, data: bytes) -> None:
    tmp = daemon.inbox / f".{name}.part"
    tmp.write_bytes(data)
    tmp.rename(daemon.inbox / name)


#: One engine is enough here (both are covered in test_guard): the first installed.
ENGINE = next((n for n in ("tesseract", "rapidocr") if installed(n)), None)


@pytest.mark.skipif(ENGINE is None, reason="no OCR engine installed")
@pytest.mark.parametrize("policy", ["quarantine", "redact", "flag"])
def test_guard_in_the_daemon_leaks_no_text(tmp_path: Path, policy: str) -> None:
    engine = ENGINE
    cfg = write_config(tmp_path, f'\n[ocr]\nenabled = true\nengine = "{engine}"\n'
                                 f'policy = "{policy}"\n')
    daemon = DaemonProcess(cfg, tmp_path)
    try:
        daemon.start()
        banner = Banner(banner_text(style=1), size=18)
        _drop(daemon, "echo.dcm", to_bytes(banner_dataset(banner, rows=240)))
        _drop(daemon, "clean.dcm", to_bytes(banner_dataset(None, rows=240, seed=3)))
        found = daemon.wait_event("ocr.finding", timeout=60)
        if policy == "quarantine":
            daemon.wait_event("file.quarantined", timeout=60)
            daemon.wait_outputs(1, timeout=60)
        else:
            daemon.wait_outputs(2, timeout=60)
        filled = daemon.wait_event("ocr.redacted", timeout=60) if policy == "redact" else []
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    event = found[0]
    assert event["policy"] == policy and event["count"] >= 1
    assert {"patient_name", "patient_id", "birth_date"} <= {
        c for f in event["findings"] for c in f["classes"]}
    texts = {"log": daemon.log_text()}
    for sidecar in daemon.quarantine.glob("*.json"):
        texts[sidecar.name] = sidecar.read_text()
    for where, text in texts.items():
        assert leaked(text) == [], f"recognised text in {where}"
    if policy == "quarantine":
        [sidecar] = [json.loads(t) for n, t in texts.items() if n != "log"]
        assert sidecar["reason"] == "burned_in_text"
        assert sidecar["ocr_findings"] and "x" in sidecar["ocr_findings"][0]
    if policy == "redact":
        assert all(f["redacted"] for f in event["findings"])
        out = [pydicom.dcmread(p) for p in outputs(daemon.outbox)]
        redacted = [ds for ds in out if ds.ImageType[0] == "DERIVED"]
        assert len(redacted) == 1 and redacted[0].BurnedInAnnotation == "NO"
        # The regions filled, as numbers: whole blocks, at least as large as what was read.
        [record] = filled
        assert record["regions"] == len(record["boxes"]) >= 1
        assert record["findings"] == event["count"]
        for f in event["findings"]:
            x, y, w, h = f["filled"]
            assert x <= f["x"] and y <= f["y"]
            assert f["x"] + f["width"] <= x + w and f["y"] + f["height"] <= y + h


@pytest.mark.skipif(ENGINE is None, reason="no OCR engine installed")
def test_batch_process_logs_findings_and_writes_them_to_the_sidecar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dcmwatch import cli

    cfg = write_config(tmp_path, f'\n[ocr]\nenabled = true\nengine = "{ENGINE}"\n')
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "echo.dcm").write_bytes(to_bytes(banner_dataset(Banner(banner_text()), rows=240)))
    assert cli.main(["process", "--config", str(cfg), str(folder)]) == 1
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    [found] = [e for e in events if e["event"] == "ocr.finding"]
    assert found["count"] >= 1 and found["policy"] == "quarantine"
    [sidecar] = [json.loads(p.read_text()) for p in (tmp_path / "quarantine").glob("*.json")]
    assert sidecar["reason"] == "burned_in_text" and sidecar["ocr_findings"]
    assert leaked(captured.out + captured.err + json.dumps(sidecar)) == []
