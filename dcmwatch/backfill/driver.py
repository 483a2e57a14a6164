"""`dcmwatch process`'s front end to the file engine: a listing intake, an executor (the
engine's own worker pool or Dask), a backfill journal, and a loop that turns the engine until
the listing is exhausted and nothing is in flight.

Everything between intake and journal is the daemon's engine (`dcmwatch.engine`): the same
batches, per-file boundary, settle stage, crash isolation and retry. What differs is only what a
listing is: inputs stay where they are, outputs may be on S3, a rerun skips what the journal
calls done, and a retry that keeps failing within the run is left for the next one (`failed`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcmwatch.backfill import locations
from dcmwatch.backfill.report import Reporter
from dcmwatch.config import Config
from dcmwatch.engine import admission
from dcmwatch.engine.core import Engine, EngineFailed
from dcmwatch.engine.counts import Counts
from dcmwatch.engine.executors import Executor
from dcmwatch.engine.isolation import Isolation
from dcmwatch.engine.ledger import BackfillLedger, config_digest
from dcmwatch.engine.listing import Listing, ListingIntake, identity
from dcmwatch.engine.settle import Settle

__all__ = ["Driver", "EngineFailed", "Options", "identity"]

#: Consecutive batches failing as a whole (not per file) before the run gives up: the executor
#: or the cluster is broken, and a rerun resumes where this one stopped.
MAX_BATCH_ERRORS = 3
#: Retries of a file whose trouble is the world's (a denied read, a throttled PUT) within one
#: run, after 0.5 s and 1 s; then it is `failed` and the next run tries it again.
MAX_RETRIES = 2
_RETRY_BASE_S = 0.5
#: How long the loop sleeps when nothing wakes it: retries come due without a wake.
_TICK_S = 0.1


@dataclass(frozen=True, slots=True)
class Options:
    sources: tuple[str, ...]
    outbox: str
    quarantine: str
    journal: Path
    manifest: str | None = None
    batch_files: int = 64
    #: Batches in flight; default twice the executor's slots.
    inflight: int | None = None
    resume: bool = False


class Driver:
    def __init__(self, config: Config, options: Options, executor: Executor, log: Any,
                 reporter: Reporter | None = None,
                 on_batch: Callable[[Counts], None] | None = None) -> None:
        self.config = config
        self.options = options
        self.executor = executor
        self.log = log
        self.reporter = reporter or Reporter(log, bar=False)
        self.on_batch = on_batch
        self.tally = Counts()
        self.digest = config_digest(config, options.outbox, options.quarantine)

    def run(self) -> Counts:
        ledger = BackfillLedger(self.options.journal, self.config, self.digest)
        woken = threading.Event()
        self.executor.wake = woken.set
        engine = self._engine(ledger, woken.set)
        try:
            self.log.info("backfill.started", **self.executor.describe(),
                          batch_files=self.options.batch_files, inflight=engine.window,
                          resume=self.options.resume,
                          already_done=ledger.journal.done_count(self.digest))
            batches = -1
            while True:
                woken.clear()
                engine.pump()
                if self.tally.batches != batches:
                    batches = self.tally.batches
                    self.reporter.update(self.tally)
                    if self.on_batch is not None:
                        self.on_batch(self.tally)
                if engine.intake.exhausted and engine.idle:
                    break
                woken.wait(_TICK_S)
        finally:
            engine.settle.close(wait=True)  # outputs being committed: durable, then journaled
            engine.settle.flush()
            ledger.close()
            self.reporter.close(self.tally)
        self.log.info("process.finished", engine=self.executor.name,
                      **self.reporter.numbers(self.tally))
        return self.tally

    def _engine(self, ledger: BackfillLedger, wake: Callable[[], None]) -> Engine:
        window = self.options.inflight or 2 * self.executor.slots
        listing = Listing(self.options.sources, self.options.outbox, self.options.quarantine,
                          self.options.manifest, self.config.output.file_mode,
                          defer_commit=self.executor.local
                          and not locations.is_remote(self.options.outbox))

        def skipped() -> None:
            self.tally.skipped += 1

        intake = ListingIntake(listing, self.config.key(),
                               lambda ident: ledger.journal.is_done(ident, self.digest),
                               window=window, batch_files=self.options.batch_files,
                               on_skip=skipped)
        settle = Settle(self.config, intake, ledger, self.log, self.tally, wake,
                        max_retries=MAX_RETRIES, retry_base_s=_RETRY_BASE_S,
                        processed_level="debug")
        isolation = Isolation(self.config.workers.max_attempts, ledger.attempt, self.log,
                              self.tally)
        # Admission by memory where the workers share this machine's memory; a cluster's
        # workers have their own (and Dask's memory limits).
        budget = admission.budget_bytes(self.config) if self.executor.local else None
        return Engine(self.executor, intake, settle, isolation, self.log, window=window,
                      batch_files=self.options.batch_files,
                      abort_after_errors=MAX_BATCH_ERRORS, budget=budget)
