"""Admission by memory: the engine never runs files whose estimated needs exceed the budget
together, lets anything run alone, and quarantines a file that could never fit."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import footprint
from dcmwatch.engine import admission
from dcmwatch.engine.core import Engine
from dcmwatch.engine.counts import Counts
from dcmwatch.engine.executors import Done
from dcmwatch.engine.intakes import Entry
from dcmwatch.engine.isolation import Isolation
from dcmwatch.engine.outcome import Batch, Outcome, WorkItem
from dcmwatch.engine.settle import Settle
from dcmwatch.testing import large
from tests.backfill.conftest import load_config
from tests.engine.fakes import FakeExecutor

MB = 1 << 20


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.events.append((event, fields))


class Holding(FakeExecutor):
    """Holds every batch until the test finishes it: what runs at once is visible."""

    name = "holding"
    local = True
    slots = 8

    def __init__(self) -> None:
        super().__init__()
        self.running: deque[Batch] = deque()
        self.finished: list[Done] = []

    def submit(self, batch: Batch) -> None:
        self.running.append(batch)

    def finish_one(self) -> None:
        batch = self.running.popleft()
        self.finished.append(Done(batch, tuple(Outcome(i.claim_id, "processed")
                                               for i in batch.items)))

    def take_done(self) -> list[Done]:
        out, self.finished = self.finished, []
        return out


class Needs:
    """An intake of files with given needs; quarantines are only recorded."""

    releases = False

    def __init__(self, needs: list[int]) -> None:
        self.todo = deque(Entry(WorkItem(f"/nowhere/{i}", f"c{i}"), need=n)
                          for i, n in enumerate(needs))
        self.quarantined: list[str] = []

    @property
    def exhausted(self) -> bool:
        return not self.todo

    def take(self, files: int) -> list[Entry]:
        return [self.todo.popleft() for _ in range(min(files, len(self.todo)))]

    def batch(self, entries: list[Entry], *, isolated: bool = False) -> Batch:
        return Batch(tuple(e.item for e in entries), "/nowhere", isolated=isolated)

    def release(self, entry: Entry) -> None:
        return None

    def quarantine(self, entry: Entry, sidecar: dict[str, object]) -> None:
        self.quarantined.append(str(sidecar["reason"]))

    def give_back(self, entry: Entry, outcome: Outcome) -> bool:
        return False

    def return_unstarted(self, entry: Entry) -> bool:
        return True


class Ledger:
    def claimed(self, claim_id: str, size: int) -> None: ...
    def processed(self, outcome: Outcome) -> None: ...
    def flush(self) -> None: ...
    def finished(self, outcome: Outcome, state: str, *, size: int) -> None: ...
    def attempt(self, claim_id: str) -> int:
        return 1
    def record_reid(self, pairs: Any) -> None: ...
    def close(self) -> None: ...


def _engine(tmp_path: Path, needs: list[int], budget: int) -> tuple[Engine, Holding, Needs]:
    config = load_config(tmp_path)
    executor, intake, log = Holding(), Needs(needs), Log()
    counts = Counts()
    settle = Settle(config, intake, Ledger(), log, counts, lambda: None)
    engine = Engine(executor, intake, settle, Isolation(3, lambda _c: 1, log, counts), log,
                    window=8, budget=budget)
    return engine, executor, intake


def test_never_more_than_the_budget_at_once(tmp_path: Path) -> None:
    """Ten files of 400 MB against 1 GB: two at a time, every one run, none refused."""
    engine, executor, intake = _engine(tmp_path, [400 * MB] * 10, 1024 * MB)
    most = 0
    for _ in range(100):
        engine.pump()
        most = max(most, len(executor.running))
        assert engine.running_need <= 1024 * MB
        if not executor.running:
            break
        executor.finish_one()
    assert most == 2
    assert engine.counts.processed == 10 and intake.quarantined == []
    engine.settle.close(wait=True)


def test_a_file_larger_than_the_budget_is_quarantined_not_retried(tmp_path: Path) -> None:
    engine, executor, intake = _engine(tmp_path, [100 * MB, 3000 * MB, 100 * MB], 1024 * MB)
    engine.pump()
    assert len(executor.running) == 2
    assert intake.quarantined == [admission.REASON]
    engine.settle.close(wait=True)


@pytest.mark.parametrize("budget_mb", [0, 64])
def test_the_budget_comes_from_the_config_or_the_machine(tmp_path: Path, budget_mb: int) -> None:
    config = load_config(tmp_path, f"[limits]\nmemory_budget_mb = {budget_mb}\n")
    got = admission.budget_bytes(config)
    if budget_mb:
        assert got == budget_mb * MB
    else:
        assert 0 < got <= admission.available_bytes()


def test_a_large_native_file_is_estimated_from_its_head(tmp_path: Path) -> None:
    mf = large.write_multiframe(tmp_path / "mf.dcm", frames=24)
    size = mf.path.stat().st_size
    assert admission.estimate(str(mf.path), size) == footprint.peak_bytes(
        mf.path.read_bytes()[:admission.HEAD_BYTES], size)
    assert size <= admission.estimate(str(mf.path), size) < 2 * size
