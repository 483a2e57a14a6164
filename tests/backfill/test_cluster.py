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
        src = tmp_path / "src"
        series = sorted(p for p in (corpus / "p0").rglob("*") if p.is_file())[:49]
        src.mkdir()
        for p in series:
            (src / p.name).write_bytes(p.read_bytes())
        poison = src / "poison.dcm"
        poison.write_bytes(POISON_MARKER * 50)
        client = distributed.Client(cluster.scheduler_address)
        client.register_plugin(PoisonPlugin(POISON_MARKER), name=PoisonPlugin.name)
        try:
            tally = run_driver(config, tmp_path, cluster, (str(src),), batch=2)
        finally:
            client.unregister_worker_plugin(PoisonPlugin.name)
            client.close()
        assert (tally.processed, tally.quarantined, tally.failed) == (len(series), 1, 0)
        assert tally.splits >= 1  # 50 inputs in batches of 2: the poison had a neighbour
        ident = identity(config.key(), str(poison))
        sidecar = json.loads((tmp_path / "quarantine" / f"{ident}.json").read_text())
        assert sidecar["reason"] == "killed_worker"
        assert (tmp_path / "quarantine" / f"{ident}.dcm").read_bytes() == poison.read_bytes()
        outputs = tree(tmp_path / "outbox")
        assert len(outputs) == len(series)
        assert all(expected[k] == v for k, v in outputs.items())
        rows = {r[0]: r for r in journal_rows(tmp_path / "state" / "backfill.sqlite")}
        assert rows[ident][1:] == ("quarantined", None, None, "killed_worker")


#: The test hook lives here, in a Dask worker plugin the test registers and removes, so no
#: production code carries a "kill me" switch. A real poison file (a crash in a C decoder, a
#: memory blow-up) cannot be produced on demand; this stands in for it.
POISON_MARKER = b"DCMWATCH-TEST-POISON"


class PoisonPlugin(distributed.WorkerPlugin):  # type: ignore[misc]
    name = "dcmwatch-test-poison"

    def __init__(self, marker: bytes) -> None:
        self.marker = marker

    def setup(self, worker: Any) -> None:
        from dcmwatch import pipeline

        original = getattr(pipeline.process_bytes, "__wrapped__", pipeline.process_bytes)
        marker = self.marker

        def process_bytes(data: bytes, config: Config) -> Any:
            if marker in data:
                os.kill(os.getpid(), signal.SIGKILL)
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
