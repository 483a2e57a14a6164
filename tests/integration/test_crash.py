"""Crash consistency: SIGKILL the daemon at random (seeded) moments while files flow through.

Each input's expected output is computed in this process with the same configuration and key
(`pipeline.process_bytes` is pure and deterministic), so "exactly once" is checked by content:
the outbox must hold exactly the expected files, byte for byte, and the quarantine exactly the
bad inputs, byte for byte.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import pydicom
import pytest

from dcmwatch import config as config_mod
from dcmwatch import pipeline
from dcmwatch.testing import ct_series_bytes
from tests.conftest import KEY_HEX, DaemonProcess, write_config
from tests.integration.test_daemon import assert_no_phi

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("DCMWATCH_CRASH_SEED", "20261125"))
GOOD_FILES = int(os.environ.get("DCMWATCH_CRASH_FILES", "1000"))
BAD_FILES = 20
KILLS = int(os.environ.get("DCMWATCH_CRASH_KILLS", "20"))
TINY = {"rows": 16, "columns": 16}


def _inputs(rng: random.Random) -> tuple[list[bytes], list[bytes]]:
    good: list[bytes] = []
    seed = 0
    while len(good) < GOOD_FILES:
        good.extend(ct_series_bytes(min(100, GOOD_FILES - len(good)), seed=seed, **TINY))
        seed += 1
    # Bad inputs: not DICOM at all (each unique, so the quarantine can be matched by content).
    bad = [b"NOT-DICOM-%04d" % i + rng.randbytes(500 + i) for i in range(BAD_FILES)]
    return good, bad


def _stage(staging: Path, good: list[bytes], bad: list[bytes], rng: random.Random) -> list[Path]:
    """Write every input to a staging folder on the inbox's filesystem, old mtime (complete)."""
    staging.mkdir()
    files = [(f"g{i:05d}.dcm", data) for i, data in enumerate(good)]
    files += [(f"b{i:05d}.dcm", data) for i, data in enumerate(bad)]
    rng.shuffle(files)
    old = time.time() - 3600
    out = []
    for name, data in files:
        p = staging / name
        p.write_bytes(data)
        os.utime(p, (old, old))
        out.append(p)
    return out


def _move_in(paths: list[Path], inbox: Path) -> None:
    for p in paths:
        os.rename(p, inbox / p.name)  # atomic: the daemon never sees a partial file


def _starts(d: DaemonProcess) -> int:
    if not d.log_path.exists():
        return 0
    return sum(1 for e in d.events() if e.get("event") == "daemon.started")


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_random_sigkills_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    cfg_path = write_config(tmp_path)
    config = config_mod.load(cfg_path).with_secret(bytes.fromhex(KEY_HEX))
    good, bad = _inputs(rng)
    expected = {}
    for data in good:
        result = pipeline.process_bytes(data, config)
        expected[result.relpath] = result.data
    assert len(expected) == len(good), "synthetic inputs must be distinct instances"

    d = DaemonProcess(cfg_path, tmp_path)
    d.inbox.mkdir()
    staged = _stage(tmp_path / "staging", good, bad, rng)
    # The first chunk is waiting at the first start; the rest arrive while the daemon runs.
    chunks = [staged[i:: KILLS + 1] for i in range(KILLS + 1)]
    kill_delays = [rng.uniform(0.3, 3.0) for _ in range(KILLS)]
    try:
        for k in range(KILLS):
            _move_in(chunks[k][: len(chunks[k]) // 2], d.inbox)
            starts = _starts(d)
            d.start(wait_ready=False)
            if k % 2 == 0:
                # Every other kill is timed from readiness, so that at least half land while
                # files flow whatever the machine's start-up time; the rest from the spawn.
                d.wait_event("daemon.started", count=starts + 1, timeout=60)
            t0 = time.monotonic()
            half = kill_delays[k] * rng.random()
            time.sleep(half)
            _move_in(chunks[k][len(chunks[k]) // 2 :], d.inbox)
            time.sleep(max(0.0, kill_delays[k] - (time.monotonic() - t0)))
            assert d.proc is not None and d.proc.poll() is None, d.log_text()[-3000:]
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(10)
            d._log_fh.close()
        _move_in(chunks[KILLS], d.inbox)
        d.start(wait_ready=False)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            outs = [p for p in d.outbox.rglob("*.dcm") if not p.name.startswith(".")]
            quarantined = list(d.quarantine.glob("*.dcm"))
            if len(outs) >= len(good) and len(quarantined) >= len(bad):
                break
            assert d.proc is not None and d.proc.poll() is None, d.log_text()[-3000:]
            time.sleep(0.2)
        time.sleep(1.0)  # anything extra (a duplicate) would show up now
        assert d.stop() == 0
    finally:
        d.kill()

    # Most kills must land while files flow, not during start-up (else the test proves little).
    assert _starts(d) >= 1 + KILLS // 2

    # Every output exactly once, byte for byte what the input must become.
    files = _visible_files(d.outbox)
    assert not [p for p in files if p.name.startswith(".")], "temporary files left in the outbox"
    got = {str(p.relative_to(d.outbox)): p.read_bytes() for p in files}
    assert set(got) == set(expected), (
        f"missing {len(set(expected) - set(got))}, unexpected {len(set(got) - set(expected))}"
    )
    for rel, data in got.items():
        assert data == expected[rel], f"output {rel} differs from its input's only rendering"
    for p in files[:: max(1, len(files) // 50)]:  # and they parse and decode
        ds = pydicom.dcmread(p)
        assert ds.pixel_array.shape == (TINY["rows"], TINY["columns"])

    # Every bad input exactly once in quarantine, untouched, with a sidecar.
    qfiles = sorted(d.quarantine.glob("*.dcm"))
    assert sorted(p.read_bytes() for p in qfiles) == sorted(bad)
    for q in qfiles:
        assert q.with_suffix(".json").is_file()
    assert not [p for p in d.quarantine.iterdir() if p.name.startswith(".")]

    # Nothing left behind.
    assert _visible_files(d.inbox) == []
    assert _visible_files(d.state / "work") == []

    # The journal agrees with the folders.
    db = sqlite3.connect(d.state / "journal.sqlite3")
    rows = db.execute("SELECT claim_id, outcome, output FROM files").fetchall()
    db.close()
    by_outcome: dict[str, list[tuple[str, str | None]]] = {}
    for claim_id, outcome, output in rows:
        by_outcome.setdefault(outcome, []).append((claim_id, output))
    assert set(by_outcome) <= {"processed", "quarantined"}, {k: len(v) for k, v in by_outcome.items()}
    processed = by_outcome.get("processed", [])
    assert sorted(o for _, o in processed) == sorted(expected)
    assert sorted(c for c, _ in by_outcome.get("quarantined", [])) == sorted(q.stem for q in qfiles)
    assert_no_phi(d)  # the inputs carry PHI markers; logs, sidecars, paths and outputs must not
