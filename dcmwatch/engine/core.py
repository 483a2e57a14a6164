"""The file engine: intake → executor → settle, for the daemon and for backfills alike.

One thread (the front end's) turns the crank with `pump()`: it collects what the executor
finished and hands each file's outcome to the settle stage (or a dead worker's batch to crash
isolation), moves files whose retry is due back in line, submits new batches while there is
room, and journals the turn. Executors and I/O threads only compute and wait; they wake the
front end through the callback it gave, and every decision is taken here, in one thread.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from dcmwatch.engine import admission
from dcmwatch.engine.counts import Counts
from dcmwatch.engine.executors import Done, Executor
from dcmwatch.engine.intakes import Entry, Intake
from dcmwatch.engine.isolation import Isolation
from dcmwatch.engine.outcome import Batch, Outcome
from dcmwatch.engine.settle import MAX_BUSY, Settle
from dcmwatch.errors import DcmwatchError


class EngineFailed(DcmwatchError):
    """Batches kept failing as a whole (not per file): the executor or cluster is broken."""

    reason = "engine"


class Engine:
    def __init__(self, executor: Executor, intake: Intake, settle: Settle,
                 isolation: Isolation, log: Any, *, window: int, batch_files: int = 1,
                 abort_after_errors: int | None = None, budget: int | None = None) -> None:
        self.executor = executor
        self.intake = intake
        self.settle = settle
        self.isolation = isolation
        self.log = log
        self.window = window
        self.batch_files = batch_files
        self._abort_after = abort_after_errors
        #: Bytes the running batches may need together (`engine.admission`); None: no limit.
        self.budget = budget
        self._needs: dict[int, int] = {}
        self.running_need = 0
        self._waiting_for_memory = False
        #: Files in batches the engine holds (submitted, due again, or suspect), by claim id.
        self._entries: dict[str, Entry] = {}
        self._ready: deque[Batch] = deque()
        self.inflight = 0
        self.running_files = 0
        self._isolating = False
        self._errors = 0
        #: Files the executor finished, whatever the outcome: the liveness check's progress.
        self.completed = 0
        #: No new work is taken (disk low; the daemon pauses intake and resumes it).
        self.paused = False
        self.stopping = False

    @property
    def counts(self) -> Counts:
        return self.settle.counts

    def pump(self) -> None:
        """One turn: collect, settle, requeue what is due, submit, journal."""
        for done in self.executor.take_done():
            self._collect(done)
        self.settle.drain()
        for entry in self.settle.due():
            self._entries[entry.item.claim_id] = entry
            self._ready.append(self.intake.batch([entry]))
        self._fill()
        self.settle.flush()

    @property
    def idle(self) -> bool:
        """Nothing held anywhere: in flight, waiting, suspect, or in the settle stage."""
        return (self.inflight == 0 and not self._ready and not self.isolation.active
                and self.settle.idle)

    @property
    def waiting(self) -> int:
        """Files held but not running: due again, suspect, or in their retry back-off."""
        return (sum(len(b.items) for b in self._ready) + len(self.isolation.waiting())
                + len(self.settle.waiting))

    def oldest_claim(self) -> float | None:
        """Wall-clock claim time of the oldest file held but not running."""
        held = [e.claimed_wall for b in self._ready for e in self._batch_entries(b)]
        held += [e.claimed_wall for e in self.settle.waiting]
        return min(held, default=None)

    def _batch_entries(self, batch: Batch) -> list[Entry]:
        return [self._entries[i.claim_id] for i in batch.items if i.claim_id in self._entries]

    # -- submitting ----------------------------------------------------------------------------
    def _fill(self) -> None:
        while not self.stopping and not self.paused:
            if self._isolating or self.isolation.active:
                suspect = self.isolation.next() if self.inflight == 0 else None
                if suspect is not None and self._admit(suspect):
                    self._isolating = True
                    self._submit(suspect)
                return
            if self.inflight >= self.window or self.settle.busy >= MAX_BUSY:
                return
            batch = self._ready.popleft() if self._ready else self._take()
            if batch is None:
                return
            if not self._admit(batch):
                self._ready.appendleft(batch)
                return
            self._submit(batch)

    def _take(self) -> Batch | None:
        """New files from the intake, as a batch; files that could never fit the memory
        budget are quarantined on the way. None when the intake has nothing now."""
        while True:
            entries = self.intake.take(self.batch_files)
            if not entries:
                return None
            fresh = [e for e in entries if self._hold(e) and self._fits_at_all(e)]
            if fresh:
                return self.intake.batch(fresh)

    def _fits_at_all(self, entry: Entry) -> bool:
        if self.budget is None or entry.need <= self.budget:
            return True
        claim_id = entry.item.claim_id
        self.settle.outcome(self._entries.pop(claim_id), Outcome(
            claim_id=claim_id, status="quarantined", reason=admission.REASON,
            message=f"the file would need about {entry.need >> 20} MB, more than "
                    f"limits.memory_budget_mb allows ({self.budget >> 20} MB)"))
        return False

    def _admit(self, batch: Batch) -> bool:
        """Room in the memory budget for `batch` (its largest file: a batch runs its files
        one after the other)? Anything fits when nothing runs."""
        need = max((e.need for e in self._batch_entries(batch)), default=0)
        if self.budget is not None and self.running_need and (
                self.running_need + need > self.budget):
            if not self._waiting_for_memory:
                self._waiting_for_memory = True
                self.log.info("memory.waiting", need_mb=need >> 20,
                              running_mb=self.running_need >> 20, budget_mb=self.budget >> 20)
            return False
        self._waiting_for_memory = False
        self._needs[id(batch)] = need
        self.running_need += need
        return True

    def _hold(self, entry: Entry) -> bool:
        """Hold a new file; False for one held already (a listing that names an input twice:
        it is in flight, and its output will be the same)."""
        if entry.item.claim_id in self._entries:
            self.counts.skipped += 1
            return False
        self._entries[entry.item.claim_id] = entry
        return True

    def _submit(self, batch: Batch) -> None:
        self.executor.submit(batch)
        self.inflight += 1
        self.running_files += len(batch.items)

    # -- collecting ----------------------------------------------------------------------------
    def _collect(self, done: Done) -> None:
        self.inflight -= 1
        self.running_need -= self._needs.pop(id(done.batch), 0)
        self.running_files -= len(done.batch.items)
        self.completed += len(done.batch.items)
        self.counts.batches += 1
        if done.batch.isolated:
            self._isolating = False
        if done.outcomes is not None:
            self._errors = 0
            for outcome in done.outcomes:
                self.settle.outcome(self._entries.pop(outcome.claim_id), outcome)
            return
        failure = done.failure
        assert failure is not None
        if failure.kind == "error":
            self._errors += 1
            self.log.error("batch.failed", error=failure.error, files=len(done.batch.items))
            if self._abort_after is not None and self._errors >= self._abort_after:
                raise EngineFailed(f"{self._errors} batches in a row failed ({failure.error})")
        else:
            self.log.error("worker.crashed", error=failure.error, files=len(done.batch.items),
                           restarts=self.executor.describe().get("restarts"))
        for poison in self.isolation.crashed(done.batch, failure):
            self.settle.outcome(self._entries.pop(poison.claim_id), poison)

    # -- stopping --------------------------------------------------------------------------------
    def take_unstarted(self) -> list[Entry]:
        """Stop taking work; hand back the files no worker has started (to return them)."""
        self.stopping = True
        batches = self.executor.cancel_waiting()
        self.inflight -= len(batches)
        for batch in batches:
            self.running_need -= self._needs.pop(id(batch), 0)
        self.running_files -= sum(len(b.items) for b in batches)
        batches += list(self._ready) + self.isolation.take_all()
        self._ready.clear()
        return [self._entries.pop(i.claim_id) for b in batches for i in b.items
                if i.claim_id in self._entries]
