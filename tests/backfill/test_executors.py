"""Crash isolation, poison files, the time limit and dead workers, on both executors through the
same engine: the engine's own worker pool (the daemon's) and a Dask LocalCluster.

Each case runs `dcmwatch process`'s front end (`Driver`) over 49 good files and one that holds a
test marker, in batches of 2, and checks the outcome by content: the 49 outputs byte-identical to
the in-process step, the marked file quarantined with its reason and its sidecar, the journal
agreeing. The daemon's front end runs the same engine; its own crash tests are in
tests/integration.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import log as log_mod
from dcmwatch.backfill.driver import Driver, Options, identity
from dcmwatch.config import Config
from dcmwatch.engine.counts import Counts
from dcmwatch.engine.executors import DaskExecutor, Executor, PoolExecutor
from dcmwatch.engine.pool import Pool
from tests.backfill import hooks
from tests.backfill.conftest import journal_rows, load_config, tree

distributed = pytest.importorskip("distributed")

Runner = Callable[..., tuple[Counts, Executor]]


class HookPlugin(distributed.WorkerPlugin):  # type: ignore[misc]
    """The hook on every Dask worker, restarted ones too."""

    name = "dcmwatch-test-hook"

    def __init__(self, marker: bytes, action: str) -> None:
        self.marker = marker
        self.action = action

    def setup(self, worker: Any) -> None:
        hooks.install(self.marker, self.action)

    def teardown(self, worker: Any) -> None:
        hooks.uninstall()


@pytest.fixture(params=["pool", "dask"])
def run(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        ) -> Runner:
    """Runs the driver on the executor under test, with the hook for `marker` installed. Each
    Dask run gets a LocalCluster of its own (two single-threaded workers; a task is blamed after
    two deaths): a test that kills workers leaves nothing behind for the next."""
    kind = request.param

    def runner(config: Config, sources: tuple[str, ...], marker: bytes = b"", action: str = "",
               on_batch: Callable[[Executor, Counts], None] | None = None,
               ) -> tuple[Counts, Executor]:
        executor: Executor
        if kind == "pool":
            monkeypatch.setenv(hooks.ENV, f"{marker.decode()}:{action}")
            monkeypatch.setattr(Pool, "target", "tests.backfill.hooks:run_in_pool")
            executor = PoolExecutor(config)
        else:
            import dask

            with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
                executor = DaskExecutor(config, local_workers=2)
            if marker:
                executor.client.register_plugin(HookPlugin(marker, action),
                                                name=HookPlugin.name)
        options = Options(sources=sources, outbox=str(tmp_path / "outbox"),
                          quarantine=str(tmp_path / "quarantine"),
                          journal=tmp_path / "state" / "backfill.sqlite", batch_files=2)
        hook = None if on_batch is None else (lambda t: on_batch(executor, t))
        try:
            return Driver(config, options, executor, log_mod.get(), on_batch=hook).run(), executor
        finally:
            executor.close(wait=True)

    return runner


def _sources(tmp_path: Path, corpus: Path, marker: bytes | None) -> tuple[str, ...]:
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted(p for p in (corpus / "p0").rglob("*") if p.is_file())[:49]:
        (src / p.name).write_bytes(p.read_bytes())
    if marker is not None:
        (src / "bad.dcm").write_bytes(marker * 50)
    return (str(src),)


def _one_quarantined(tmp_path: Path, config: Config, tally: Counts, reason: str,
                     expected: dict[str, bytes]) -> None:
    ident = identity(config.key(), str(tmp_path / "src" / "bad.dcm"))
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


def test_a_file_that_kills_its_worker_is_isolated_and_quarantined(
        run: Runner, tmp_path: Path, corpus: Path, expected: dict[str, bytes]) -> None:
    """Its batch is rerun alone and halved until the file stands alone; it is quarantined as
    worker_crashed and no neighbour is blamed."""
    config = load_config(tmp_path)
    tally, _ = run(config, _sources(tmp_path, corpus, hooks.POISON_MARKER),
                   hooks.POISON_MARKER, "kill")
    assert tally.splits >= 1  # in batches of 2, the poison had a neighbour
    _one_quarantined(tmp_path, config, tally, "worker_crashed", expected)


def test_a_slow_file_is_stopped_by_the_time_limit(
        run: Runner, tmp_path: Path, corpus: Path, expected: dict[str, bytes]) -> None:
    """`limits.file_seconds` holds in a pool process's main thread (the alarm) and in a Dask
    worker's task thread (the watcher): stopped and quarantined as time_limit, no worker lost."""
    config = load_config(tmp_path, "[limits]\nfile_seconds = 0.5\n")
    t0 = time.monotonic()
    tally, _ = run(config, _sources(tmp_path, corpus, hooks.SLOW_MARKER),
                   hooks.SLOW_MARKER, "slow")
    assert time.monotonic() - t0 < 30  # the hook alone would take a minute
    assert tally.splits == 0  # stopped inside the worker: nothing died, nothing was split
    _one_quarantined(tmp_path, config, tally, "time_limit", expected)
    ident = identity(config.key(), str(tmp_path / "src" / "bad.dcm"))
    sidecar = json.loads((tmp_path / "quarantine" / f"{ident}.json").read_text())
    assert sidecar["message"] == "processing the file took longer than limits.file_seconds"


def test_a_file_stuck_in_c_code_ends_its_worker_and_is_quarantined(
        run: Runner, tmp_path: Path, corpus: Path, expected: dict[str, bytes]) -> None:
    """Past the backstop (`file_seconds` + 1 s) a file still inside C code ends its worker
    (exit 70); crash isolation then finds it and quarantines it as worker_crashed."""
    config = load_config(tmp_path, "[limits]\nfile_seconds = 0.3\n")
    t0 = time.monotonic()
    tally, _ = run(config, _sources(tmp_path, corpus, hooks.STUCK_MARKER),
                   hooks.STUCK_MARKER, "stuck")
    assert time.monotonic() - t0 < 90  # one stuck hook alone would take a minute
    _one_quarantined(tmp_path, config, tally, "worker_crashed", expected)


def test_a_worker_killed_mid_run_loses_nothing(
        run: Runner, tmp_path: Path, corpus: Path, expected: dict[str, bytes]) -> None:
    """SIGKILL of a worker mid-run: every input comes out once with the same bytes, nothing
    is quarantined for a crash it did not cause."""
    config = load_config(tmp_path)
    killed: list[int] = []

    def kill_one(executor: Executor, tally: Counts) -> None:
        if killed or tally.processed < 4:
            return
        if isinstance(executor, PoolExecutor):
            pid = executor.pool.pids()[0]
        else:
            assert isinstance(executor, DaskExecutor)
            pid = next(iter(executor.client.run(os.getpid).values()))
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    tally, _ = run(config, _sources(tmp_path, corpus, None), on_batch=kill_one)
    assert killed
    assert (tally.processed, tally.quarantined, tally.failed) == (49, 0, 0)
    outputs = tree(tmp_path / "outbox")
    assert len(outputs) == 49 and all(expected[k] == v for k, v in outputs.items())
    assert not any(p.name.endswith(".dcmwatch-tmp") for p in (tmp_path / "outbox").rglob("*"))
