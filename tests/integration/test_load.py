"""Load: a burst, then a steady soak at half the burst's throughput.

CI runs shortened versions; the full ones (issue 7: a 20,000-file burst, a 10-minute soak) run
with `DCMWATCH_BURST_FILES=20000 DCMWATCH_SOAK_SECONDS=600`. The numbers are printed (run
pytest with `-s`) so that a full run can be recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import itertools
import os
import time
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from dcmwatch.testing import ct_series
from tests.conftest import DaemonProcess, write_config

pytestmark = pytest.mark.integration

BURST = int(os.environ.get("DCMWATCH_BURST_FILES", "5000"))
SOAK = float(os.environ.get("DCMWATCH_SOAK_SECONDS", "60"))
HEARTBEAT = 2.0
WARMUP = min(20.0, SOAK / 3)


class Files:
    """Distinct small instances, made fast: one template, a new SOP Instance UID each."""

    def __init__(self) -> None:
        self.template = ct_series(1, rows=16, columns=16)[0]
        self.n = 0

    def next(self) -> bytes:
        self.n += 1
        ds = self.template
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.10.1234.{self.n}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = self.n
        buf = BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        return buf.getvalue()

    def drop(self, staging: Path, inbox: Path) -> None:
        name = f"f{self.n + 1:07d}.dcm"
        (staging / name).write_bytes(self.next())
        os.rename(staging / name, inbox / name)


def _pids(pid: int) -> list[int]:
    """The daemon and its worker processes."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        out += [int(c) for c in children]
    return out


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _sample(pid: int) -> tuple[int, int, int]:
    """(RSS of the daemon, RSS of daemon + workers, open fds of the daemon) in kB / count."""
    total = 0
    for p in _pids(pid):
        try:
            total += _rss_kb(p)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return _rss_kb(pid), total, len(os.listdir(f"/proc/{pid}/fd"))


def _count_outputs(outbox: Path) -> int:
    return sum(1 for p in outbox.rglob("*.dcm") if not p.name.startswith("."))


def test_burst_then_soak(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace('level = "debug"', 'level = "info"')
                   .replace("heartbeat_seconds = 2", f"heartbeat_seconds = {HEARTBEAT}"))
    d = DaemonProcess(cfg, tmp_path)
    files = Files()
    staging = tmp_path / "staging"
    staging.mkdir()
    d.inbox.mkdir()
    for _ in range(BURST):  # the burst lands before the daemon looks: all at once
        files.drop(staging, d.inbox)
    try:
        d.start(wait_ready=False)
        d.wait_event("daemon.started", timeout=60)
        t0 = time.monotonic()
        while _count_outputs(d.outbox) < BURST:
            assert time.monotonic() - t0 < 600, f"burst: {_count_outputs(d.outbox)} of {BURST}"
            assert d.proc is not None and d.proc.poll() is None
            time.sleep(0.2)
        burst_s = time.monotonic() - t0
        peak = BURST / burst_s
        rate = peak / 2

        assert d.proc is not None
        pid = d.proc.pid
        samples: list[tuple[float, int, int, int]] = []
        start = time.monotonic()
        next_sample = start
        dropped = 0
        while (now := time.monotonic()) - start < SOAK:
            due = int((now - start) * rate)
            while dropped < due:
                files.drop(staging, d.inbox)
                dropped += 1
            if now >= next_sample:
                samples.append((now - start, *_sample(pid)))
                next_sample += 2.0
            time.sleep(0.01)
        deadline = time.monotonic() + 120
        while _count_outputs(d.outbox) < BURST + dropped:
            assert time.monotonic() < deadline, "soak files did not all come out"
            time.sleep(0.2)
        soak_end = time.monotonic()
        assert d.stop() == 0
    finally:
        d.kill()

    total = BURST + dropped
    assert _count_outputs(d.outbox) == total  # none lost, none twice (one path per instance)
    assert list(d.quarantine.glob("*")) == []
    warm = [s for s in samples if s[0] >= WARMUP]
    base_main, base_all = warm[0][1], warm[0][2]
    growth_main = max(s[1] for s in warm) - base_main
    growth_all = max(s[2] for s in warm) - base_all
    fds = [s[3] for s in warm]
    beats = [e for e in d.events() if e.get("event") == "heartbeat"]
    stamps = sorted(time.mktime(time.strptime(e["timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
                    for e in beats)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    print(f"\nload: burst {BURST} files in {burst_s:.1f}s = {peak:.0f}/s; soak {SOAK:.0f}s at "
          f"{rate:.0f}/s = {dropped} files; RSS growth after {WARMUP:.0f}s warm-up: daemon "
          f"{growth_main / 1024:.1f} MB, with workers {growth_all / 1024:.1f} MB; fds "
          f"{min(fds)}..{max(fds)}; heartbeats {len(beats)}, max gap {max(gaps):.0f}s; "
          f"drained {soak_end - start - SOAK:.1f}s after the soak")
    assert growth_main < 10 * 1024, f"daemon RSS grew {growth_main} kB"
    assert growth_all < 10 * 1024 * 3, f"daemon + workers RSS grew {growth_all} kB"
    # No descriptor leak: a leak grows with the files processed (hundreds here), while the
    # descriptors in flight at a sample (an I/O thread's file, the rescan's folder) come and go.
    quarter = max(len(fds) // 4, 1)
    early, late = sorted(fds[:quarter]), sorted(fds[-quarter:])
    assert late[len(late) // 2] - early[len(early) // 2] <= 2, fds
    assert len(beats) >= (burst_s + SOAK) / HEARTBEAT * 0.7
    assert max(gaps) <= HEARTBEAT * 2 + 1, gaps  # one-second stamps: a beat every interval
