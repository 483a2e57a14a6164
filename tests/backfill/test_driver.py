"""The engine's bookkeeping for a listing, with a scripted executor: windows, batch splitting,
poison isolation on both executors' failure semantics, systemic failures, journal-driven
skipping."""

from __future__ import annotations

import dataclasses
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import log as log_mod
from dcmwatch.backfill import sources
from dcmwatch.backfill.driver import Driver, EngineFailed, Options, identity
from dcmwatch.backfill.journal import BackfillJournal
from dcmwatch.engine.executors import Done, Failure
from dcmwatch.engine.outcome import Batch, Outcome
from tests.backfill.conftest import load_config
from tests.engine.fakes import FakeExecutor


class ScriptedEngine(FakeExecutor):
    """Runs batches in the driver's process; a batch holding a `poison` source fails with
    `kind` (and, for "crashed", so does every batch in flight with it, as a pool whose workers
    all died does)."""

    name = "scripted"

    def __init__(self, poison: set[str], kind: str = "killed", slots: int = 2,
                 blamed_once: set[str] | None = None) -> None:
        super().__init__()
        self.poison = poison
        #: Innocent sources whose batches fail while other batches run beside them, as Dask
        #: blames every batch that shared a dying worker with the poison.
        self.blamed_once = set(blamed_once or ())
        self.blamed: list[str] = []
        self.kind = kind
        self.slots = slots
        self.queue: deque[Batch] = deque()
        self.max_inflight = 0
        self.submitted: list[int] = []

    def submit(self, batch: Batch) -> None:
        self.queue.append(batch)
        self.submitted.append(len(batch.items))
        self.max_inflight = max(self.max_inflight, len(self.queue))
        self.wake()

    def take_done(self) -> list[Done]:
        if not self.queue:
            return []
        batch = self.queue.popleft()
        blamed = [i.source for i in batch.items if i.source in self.blamed_once]
        if blamed and not batch.isolated:
            self.blamed.extend(blamed)
            return [Done(batch, None, Failure("crashed", "KilledWorker", retried=True))]
        if any(i.source in self.poison for i in batch.items):
            if self.kind == "crashed":  # every batch in flight fails with it
                out = [Done(batch, None, Failure("crashed", "BrokenProcessPool"))]
                while self.queue:
                    out.append(Done(self.queue.popleft(), None,
                                    Failure("crashed", "BrokenProcessPool")))
                return out
            if self.kind == "killed":
                return [Done(batch, None, Failure("crashed", "KilledWorker", retried=True))]
            return [Done(batch, None, Failure("error", "X"))]
        return [Done(batch, tuple(Outcome(i.claim_id, "processed", output=f"{i.claim_id}.dcm",
                                          bytes_in=10) for i in batch.items))]



def _setup(tmp_path: Path, n: int) -> tuple[Any, Options, list[str]]:
    tmp_path.mkdir(exist_ok=True)
    config = load_config(tmp_path)
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    names = []
    for i in range(n):
        p = src / ("a/b" if i % 2 else "a") / f"f{i:03d}.dcm"
        p.write_bytes(b"x")
        names.append(str(p))
    (src / ".hidden").write_bytes(b"x")
    (src / "link.dcm").symlink_to(names[0])
    options = Options(sources=(str(src),), outbox=str(tmp_path / "out"),
                      quarantine=str(tmp_path / "q"), journal=tmp_path / "j.sqlite",
                      batch_files=8, inflight=3)
    return config, options, names


def test_listing_skips_hidden_and_links(tmp_path: Path) -> None:
    """The lazy folder walk yields regular files only, hidden names and symlinks skipped."""
    _, options, names = _setup(tmp_path, 5)
    assert sorted(sources.iter_sources(options.sources)) == sorted(names)


def test_window_and_full_batches(tmp_path: Path) -> None:
    """At most K batches in flight; full batches once the run exceeds one window; a small run
    is spread over the window."""
    config, options, _ = _setup(tmp_path, 100)
    engine = ScriptedEngine(set())
    tally = Driver(config, options, engine, log_mod.get()).run()
    assert tally.processed == 100
    assert engine.max_inflight <= 3
    assert engine.submitted[:12] == [8] * 12
    small_cfg, small_opts, _ = _setup(tmp_path / "s", 9)
    engine = ScriptedEngine(set())
    Driver(small_cfg, small_opts, engine, log_mod.get()).run()
    assert engine.submitted == [3, 3, 3]


@pytest.mark.parametrize("kind", ["killed", "crashed"])
def test_poison_isolated_by_splitting(tmp_path: Path, kind: str) -> None:
    """A batch that kills its worker is halved until the file stands alone; the file is
    quarantined (original copied, sidecar with the reason); every other file is processed.
    A crashed local pool retries a lone file `max_attempts` times before blaming it."""
    config, options, names = _setup(tmp_path, 40)
    poison = names[17]
    engine = ScriptedEngine({poison}, kind=kind)
    tally = Driver(config, options, engine, log_mod.get()).run()
    assert (tally.processed, tally.quarantined, tally.failed) == (39, 1, 0)
    ident = identity(config.key(), poison)
    assert (tmp_path / "q" / f"{ident}.dcm").read_bytes() == b"x"
    assert '"worker_crashed"' in (tmp_path / "q" / f"{ident}.json").read_text()
    assert Path(poison).exists()  # the input is never moved
    singles = engine.submitted.count(1)
    assert singles >= (config.workers.max_attempts if kind == "crashed" else 1)


def test_an_innocent_file_blamed_by_dask_is_rerun_alone_not_quarantined(tmp_path: Path) -> None:
    """Dask blames every batch on a dying worker; a batch it blamed is run again with nothing
    else in flight before anything in it is called poison: only the real poison is
    quarantined."""
    config, options, names = _setup(tmp_path, 40)
    poison, innocent = names[17], names[16]
    engine = ScriptedEngine({poison}, kind="killed", blamed_once={innocent})
    tally = Driver(config, options, engine, log_mod.get()).run()
    assert (tally.processed, tally.quarantined, tally.failed) == (39, 1, 0)
    assert innocent in engine.blamed  # it was blamed while running beside others
    assert not (tmp_path / "q" / f"{identity(config.key(), innocent)}.json").exists()
    assert (tmp_path / "q" / f"{identity(config.key(), poison)}.json").exists()


def test_systemic_failures_abort_and_rerun_resumes(tmp_path: Path) -> None:
    """Whole batches failing for a reason that is not a file (the cluster is gone) are
    not recorded as done, the run stops after three in a row, and a rerun does the rest."""
    config, options, names = _setup(tmp_path, 40)
    engine = ScriptedEngine(set(names), kind="error")
    with pytest.raises(EngineFailed):
        Driver(config, options, engine, log_mod.get()).run()
    tally = Driver(config, options, ScriptedEngine(set()), log_mod.get()).run()
    assert (tally.processed, tally.skipped) == (40, 0)
    again = Driver(config, options, ScriptedEngine(set()), log_mod.get()).run()
    assert (again.processed, again.skipped) == (0, 40)
    journal = BackfillJournal(options.journal)
    try:
        assert journal.done_count(Driver(config, options, engine, log_mod.get()).digest) == 40
    finally:
        journal.close()


def test_other_config_or_outbox_is_a_new_run(tmp_path: Path) -> None:
    """The journal is keyed by a digest of the configuration and destination: the same inputs
    to another outbox are processed again; the identity is keyed, not the path."""
    config, options, names = _setup(tmp_path, 10)
    Driver(config, options, ScriptedEngine(set()), log_mod.get()).run()
    other = dataclasses.replace(options, outbox=str(tmp_path / "out2"))
    tally = Driver(config, other, ScriptedEngine(set()), log_mod.get()).run()
    assert (tally.processed, tally.skipped) == (10, 0)
    assert names[0] not in identity(config.key(), names[0])
    assert options.journal.read_bytes().find(names[0].encode()) == -1


def test_an_input_listed_twice_is_run_once(tmp_path: Path) -> None:
    """A manifest (or two sources) naming the same input twice: one run of it, the other
    counted as skipped, never two files in flight under one identity."""
    config, options, names = _setup(tmp_path, 6)
    manifest = tmp_path / "manifest.txt"
    manifest.write_text("\n".join([names[0], names[0], names[1]]) + "\n")
    options = dataclasses.replace(options, manifest=str(manifest))
    engine = ScriptedEngine(set())
    tally = Driver(config, options, engine, log_mod.get()).run()
    assert tally.processed + tally.skipped == 9
    assert sum(engine.submitted) == tally.processed
    assert tally.processed <= 8
