"""Backfills on a real Dask cluster (two worker processes on loopback): the same bytes as the
daemon's in-process step, a journal row per input, and recovery from dead workers, a dead
driver and a file that kills every worker that reads it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import log as log_mod
from dcmwatch.backfill.driver import Driver, Options, identity
from dcmwatch.backfill.engine import DaskEngine
from dcmwatch.backfill.report import Tally
from dcmwatch.config import Config
from dcmwatch.testing.synth import find_markers
from tests.backfill.conftest import (
    N_FILES,
    assert_journal_agrees,
    journal_rows,
    load_config,
    tree,
)
from tests.conftest import write_config

distributed = pytest.importorskip("distributed")


def run_driver(config: Config, root: Path, cluster: Any, sources: tuple[str, ...], *,
               batch: int = 8, on_batch: Callable[[DaskEngine, Tally], None] | None = None,
               ) -> Tally:
    engine = DaskEngine(config, address=cluster.scheduler_address)
    engine.client.wait_for_workers(2, timeout=60)
    options = Options(sources=sources, outbox=str(root / "outbox"),
                      quarantine=str(root / "quarantine"),
                      journal=root / "state" / "backfill.sqlite", batch_files=batch)
    hook = None if on_batch is None else (lambda t: on_batch(engine, t))
    try:
        return Driver(config, options, engine, log_mod.get(), on_batch=hook).run()
    finally:
        engine.close()


def no_temp_files(root: Path) -> bool:
    return not any(p.name.endswith(".dcmwatch-tmp") for p in root.rglob("*"))


class TestCluster:
    def test_outputs_identical_to_in_process_and_journal(
        self, tmp_path: Path, cluster: Any, corpus: Path, expected: dict[str, bytes]
    ) -> None:
        """200 files on the cluster: byte-identical to `job.process` in-process, a journal row
        per input whose output key and sha256 match the file written; a rerun does nothing."""
        config = load_config(tmp_path)
        before = tree(corpus)
        tally = run_driver(config, tmp_path, cluster, (str(corpus),))
        assert (tally.processed, tally.quarantined, tally.failed) == (N_FILES, 0, 0)
        assert tree(tmp_path / "outbox") == expected
        assert len(expected) == N_FILES
        assert_journal_agrees(tmp_path / "state" / "backfill.sqlite", tmp_path / "outbox",
                              N_FILES)
        assert tree(corpus) == before  # inputs untouched
        again = run_driver(config, tmp_path, cluster, (str(corpus),))
        assert (again.processed, again.skipped) == (0, N_FILES)

    def test_sigkill_one_worker_mid_run(
        self, tmp_path: Path, cluster: Any, corpus: Path, expected: dict[str, bytes]
    ) -> None:
        """A worker killed mid-run: Dask reschedules its batch, every input comes out once
        with the same bytes, and the journal agrees."""
        config = load_config(tmp_path)
        killed: list[int] = []

        def kill_one(engine: DaskEngine, tally: Tally) -> None:
            if not killed:
                pids = engine.client.run(os.getpid)
                pid = next(iter(pids.values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        tally = run_driver(config, tmp_path, cluster, (str(corpus),), batch=4, on_batch=kill_one)
        assert killed
        assert (tally.processed, tally.quarantined, tally.failed) == (N_FILES, 0, 0)
        assert tree(tmp_path / "outbox") == expected
        assert no_temp_files(tmp_path / "outbox")
        assert_journal_agrees(tmp_path / "state" / "backfill.sqlite", tmp_path / "outbox",
                              N_FILES)
        client = distributed.Client(cluster.scheduler_address)
        try:
            client.wait_for_workers(2, timeout=60)
            assert killed[0] not in client.run(os.getpid).values()
        finally:
            client.close()

    def test_sigkill_driver_then_resume(
        self, tmp_path: Path, cluster: Any, corpus: Path, expected: dict[str, bytes]
    ) -> None:
        """The driver (a subprocess) is killed mid-run; the same command with --resume skips
        what the journal holds, finishes the rest, and leaves one output per input."""
        cfg = write_config(tmp_path)
        journal = tmp_path / "state" / "backfill.sqlite"
        cmd = [sys.executable, "-m", "dcmwatch", "process", "--config", str(cfg), str(corpus),
               "--cluster", cluster.scheduler_address, "--batch-files", "2", "--inflight", "2"]
        log = (tmp_path / "first.log").open("wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 60
            while _rows(journal) < 20:
                assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.monotonic() < deadline
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            proc.kill()
            log.close()
        done_before = _rows(journal)
        assert 20 <= done_before < N_FILES
        res = subprocess.run([*cmd, "--resume"], capture_output=True, timeout=120, cwd=tmp_path,
                             check=False)
        assert res.returncode == 0, res.stderr.decode()[-3000:]
        events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith(b"{")]
        summary = next(e for e in events if e["event"] == "process.finished")
        assert summary["skipped"] >= done_before
        assert summary["skipped"] + summary["processed"] == N_FILES
        assert tree(tmp_path / "outbox") == expected
        assert no_temp_files(tmp_path / "outbox")
        assert_journal_agrees(journal, tmp_path / "outbox", N_FILES)
        logs = (tmp_path / "first.log").read_bytes() + res.stdout + res.stderr
        assert find_markers(logs) == []
        assert str(corpus).encode() not in logs  # no input path in any event

    def test_poison_file_is_quarantined(
        self, tmp_path: Path, cluster: Any, corpus: Path, expected: dict[str, bytes]
    ) -> None:
        """A file that kills every worker that reads it is isolated by splitting its batch,
        quarantined with a reason, and every other file comes out."""
        config = load_config(tmp_path)
        tally, bad = run_with_hook(tmp_path, cluster, corpus, config, POISON_MARKER, "kill")
        assert tally.splits >= 1  # 50 inputs in batches of 2: the poison had a neighbour
        assert_one_quarantined(tmp_path, config, tally, bad, "killed_worker", expected)

    def test_slow_file_is_stopped_by_the_time_limit_on_a_worker(
        self, tmp_path: Path, cluster: Any, corpus: Path, expected: dict[str, bytes]
    ) -> None:
        """`limits.file_seconds` applies in a Dask worker's task thread (no SIGALRM there):
        a file whose processing runs on in Python is stopped and quarantined as time_limit,
        without losing the worker, and every other file comes out."""
        config = load_config(tmp_path, "[limits]\nfile_seconds = 0.5\n")
        t0 = time.monotonic()
        tally, bad = run_with_hook(tmp_path, cluster, corpus, config, SLOW_MARKER, "slow")
        assert time.monotonic() - t0 < 30  # the hook alone would take a minute
        assert tally.splits == 0  # stopped in the thread: no worker died, no batch was split
        assert_one_quarantined(tmp_path, config, tally, bad, "time_limit", expected)
        sidecar = json.loads((tmp_path / "quarantine" / f"{bad}.json").read_text())
        assert sidecar["message"] == "processing the file took longer than limits.file_seconds"

    def test_file_stuck_in_c_code_ends_its_worker_and_is_quarantined(
        self, tmp_path: Path, cluster: Any, corpus: Path, expected: dict[str, bytes]
    ) -> None:
        """Past the backstop (`file_seconds` + 1 s here) a file still inside C code ends its
        worker process (exit 70); the nanny starts a new one, Dask reruns the batch, and the
        driver's KilledWorker splitting quarantines the file as killed_worker."""
        config = load_config(tmp_path, "[limits]\nfile_seconds = 0.3\n")
        t0 = time.monotonic()
        tally, bad = run_with_hook(tmp_path, cluster, corpus, config, STUCK_MARKER, "stuck")
        assert time.monotonic() - t0 < 60  # one stuck hook alone would take a minute
        assert tally.splits >= 1
        assert_one_quarantined(tmp_path, config, tally, bad, "killed_worker", expected)


def run_with_hook(tmp_path: Path, cluster: Any, corpus: Path, config: Config, marker: bytes,
                  action: str) -> tuple[Tally, str]:
    """49 good files and one holding `marker`, in batches of 2, with the hook on every
    worker; returns the tally and the marked file's identity."""
    src = tmp_path / "src"
    series = sorted(p for p in (corpus / "p0").rglob("*") if p.is_file())[:49]
    src.mkdir()
    for p in series:
        (src / p.name).write_bytes(p.read_bytes())
    bad = src / "bad.dcm"
    bad.write_bytes(marker * 50)
    client = distributed.Client(cluster.scheduler_address)
    client.register_plugin(HookPlugin(marker, action), name=HookPlugin.name)
    try:
        tally = run_driver(config, tmp_path, cluster, (str(src),), batch=2)
    finally:
        client.unregister_worker_plugin(HookPlugin.name)
        client.close()
    return tally, identity(config.key(), str(bad))


def assert_one_quarantined(tmp_path: Path, config: Config, tally: Tally, ident: str,
                           reason: str, expected: dict[str, bytes]) -> None:
    assert (tally.processed, tally.quarantined, tally.failed) == (49, 1, 0)
    sidecar = json.loads((tmp_path / "quarantine" / f"{ident}.json").read_text())
    assert sidecar["reason"] == reason
    bad = tmp_path / "src" / "bad.dcm"
    assert (tmp_path / "quarantine" / f"{ident}.dcm").read_bytes() == bad.read_bytes()
    outputs = tree(tmp_path / "outbox")
    assert len(outputs) == 49
    assert all(expected[k] == v for k, v in outputs.items())
    rows = {r[0]: r for r in journal_rows(tmp_path / "state" / "backfill.sqlite")}
    assert rows[ident][1:] == ("quarantined", None, None, reason)


#: The test hooks live here, in a Dask worker plugin the test registers and removes, so no
#: production code carries a "kill me" switch. A real poison file (a crash in a C decoder, a
#: memory blow-up, a decoder looping in C) cannot be produced on demand; these stand in for it.
POISON_MARKER = b"DCMWATCH-TEST-POISON"
SLOW_MARKER = b"DCMWATCH-TEST-SLOW"
STUCK_MARKER = b"DCMWATCH-TEST-STUCK"


class HookPlugin(distributed.WorkerPlugin):  # type: ignore[misc]
    """On every worker (restarted ones too): `pipeline.process_bytes` of a file holding
    `marker` kills its process (`kill`), runs on in Python (`slow`: the soft limit can stop
    it) or sits in one C call (`stuck`: only the backstop can)."""

    name = "dcmwatch-test-hook"

    def __init__(self, marker: bytes, action: str = "kill") -> None:
        self.marker = marker
        self.action = action

    def setup(self, worker: Any) -> None:
        from dcmwatch import pipeline

        original = getattr(pipeline.process_bytes, "__wrapped__", pipeline.process_bytes)
        marker, action = self.marker, self.action

        def process_bytes(data: bytes, config: Config) -> Any:
            if marker in data:
                if action == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                elif action == "slow":
                    for _ in range(6000):
                        time.sleep(0.01)
                else:
                    time.sleep(60)
            return original(data, config)

        process_bytes.__wrapped__ = original  # type: ignore[attr-defined]
        pipeline.process_bytes = process_bytes  # type: ignore[assignment]

    def teardown(self, worker: Any) -> None:
        from dcmwatch import pipeline

        pipeline.process_bytes = getattr(pipeline.process_bytes, "__wrapped__",
                                         pipeline.process_bytes)


def _rows(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        db = sqlite3.connect(journal, timeout=5)
        try:
            return int(db.execute("SELECT COUNT(*) FROM backfill").fetchone()[0])
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0
