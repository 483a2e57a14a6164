"""Backfills on a real Dask cluster (two worker processes on loopback): the same bytes as the
daemon's in-process step, a journal row per input, and recovery from a dead driver. Dead
workers, poison files and the time limit are tested on both executors in test_executors.py."""

from __future__ import annotations

import json
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
from dcmwatch.backfill.driver import Driver, Options
from dcmwatch.config import Config
from dcmwatch.engine.counts import Counts
from dcmwatch.engine.executors import DaskExecutor
from dcmwatch.testing.synth import find_markers
from tests.backfill.conftest import (
    N_FILES,
    assert_journal_agrees,
    load_config,
    tree,
)
from tests.conftest import write_config

distributed = pytest.importorskip("distributed")


def run_driver(config: Config, root: Path, cluster: Any, sources: tuple[str, ...], *,
               batch: int = 8, on_batch: Callable[[DaskExecutor, Counts], None] | None = None,
               ) -> Counts:
    engine = DaskExecutor(config, address=cluster.scheduler_address)
    engine.client.wait_for_workers(2, timeout=60)
    options = Options(sources=sources, outbox=str(root / "outbox"),
                      quarantine=str(root / "quarantine"),
                      journal=root / "state" / "backfill.sqlite", batch_files=batch)
    hook = None if on_batch is None else (lambda t: on_batch(engine, t))
    try:
        return Driver(config, options, engine, log_mod.get(), on_batch=hook).run()
    finally:
        engine.close(wait=True)


def no_temp_files(root: Path) -> bool:
    return not any(p.name.endswith(".dcmwatch-tmp") for p in root.rglob("*"))


class TestCluster:
    def test_outputs_identical_to_in_process_and_journal(
        self, tmp_path: Path, cluster: Any, corpus: Path, expected: dict[str, bytes]
    ) -> None:
        """200 files on the cluster: byte-identical to `work.run_one` in-process, a journal row
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
