"""A burst of large files against a memory budget, through the real daemon: every file comes
out, none is killed or quarantined, and the workers' memory stays within the budget.

The issue's case: ten 400 MB files against a budget of 1 GB, on three workers, so that without
admission three files (1.2 GB) would be held at once and with it two fit (`DCMWATCH_BURST_MB`
scales the files and the budget together). The workers' resident memory is sampled from /proc
while they work, an oracle independent of the engine's own estimates.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from dcmwatch.testing import large
from tests.conftest import DaemonProcess, outputs, write_config
from tests.integration.test_notify import worker_pids

pytestmark = pytest.mark.integration

FILE_MB = int(os.environ.get("DCMWATCH_BURST_MB", "400"))
FILES = 10
#: 1 GB for 400 MB files: room for two files' estimates (size + 16 MB of header copies each),
#: not three.
BUDGET_MB = FILE_MB * 1024 // 400


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _settled_rss(daemon_pid: int) -> float:
    """The idle workers' resident memory once their imports are done (it stops growing)."""
    last, deadline = -1.0, time.monotonic() + 30
    while time.monotonic() < deadline:
        now = sum(_rss_mb(p) for p in worker_pids(daemon_pid))
        if now and abs(now - last) < 1.0:
            return now
        last = now
        time.sleep(0.5)
    return last


def test_a_burst_of_large_files_waits_for_memory_instead_of_dying(tmp_path: Path) -> None:
    frames = max(1, FILE_MB * 2**20 // (768 * 1024 * 2))
    stage = tmp_path / "stage"
    stage.mkdir()
    for i in range(FILES):
        large.write_multiframe(stage / f"mf{i}.dcm", frames=frames, instance=i + 1)
    cfg = write_config(tmp_path, f"[limits]\nmemory_budget_mb = {BUDGET_MB}\n"
                                 "file_seconds = 60\n")
    cfg.write_text(cfg.read_text().replace("[workers]\ncount = 2", "[workers]\ncount = 3"))
    d = DaemonProcess(cfg, tmp_path)
    d.start()
    assert d.proc is not None
    baseline = _settled_rss(d.proc.pid)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], sum(_rss_mb(p) for p in worker_pids(d.proc.pid)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for p in sorted(stage.iterdir()):
            p.rename(d.inbox / p.name)  # whole files, all at once
        d.wait_event("file.processed", count=FILES, timeout=60 + FILES * FILE_MB / 10)
    finally:
        done.set()
        sampler.join()
        assert d.stop() == 0
    names = {e.get("event") for e in d.events()}
    assert "memory.waiting" in names  # the third file waited
    assert "worker.crashed" not in names
    assert list(d.quarantine.glob("*")) == []
    assert len(outputs(d.outbox)) == FILES
    # Two files' worth above what the idle workers held, never three.
    assert peak[0] - baseline <= BUDGET_MB * 1.1, (peak[0], baseline)
