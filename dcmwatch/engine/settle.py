"""The settle stage: what happens to a file once a worker (or the engine) has decided about it,
the same for the daemon and for backfills.

* **processed**: the re-identification pairs are stored first; the output is committed
  (temporary name, fsync, rename, folder fsync) in an I/O thread if the worker left it pending;
  the turn's processed files are journaled in one transaction; only then is the input released
  (removed or archived) and `file.processed` logged. A kill anywhere in between leaves the
  input, which is processed again to the same bytes at the same path.
* **quarantined**: unless the intake gives it back (an unfinished file), the original and a
  PHI-free sidecar are made durable in quarantine, then journaled.
* **retry**: back-off (doubling, capped), then the engine runs the file again. A backfill gives
  up after `max_retries` (`failed`: the journal does not call it done, so a rerun tries again).

Runs in the engine's thread; only fsyncs, renames and unlinks go to the I/O threads, and their
results come back through one queue, each with the handler that continues the file's life.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcmwatch import __version__, store
from dcmwatch.config import Config
from dcmwatch.engine.counts import Counts
from dcmwatch.engine.intakes import Entry, Intake
from dcmwatch.engine.ledger import Ledger
from dcmwatch.engine.outcome import Outcome
from dcmwatch.errors import DcmwatchError
from dcmwatch.ocr.findings import redaction_record

if TYPE_CHECKING:
    from dcmwatch.metrics import Metrics

#: Threads that commit outputs and release inputs: they only wait on the disk, with the GIL
#: released, while the workers go on computing.
IO_THREADS = 4
#: Files in the I/O threads before the engine stops taking more: a slow disk slows intake
#: instead of filling memory with dirty pages.
MAX_BUSY = 64
MAX_RETRY_DELAY_S = 300.0

_Handler = Callable[[Entry, Outcome, BaseException | None], None]


class Settle:
    def __init__(self, config: Config, intake: Intake, ledger: Ledger, log: Any,
                 counts: Counts, wake: Callable[[], None], *, metrics: Metrics | None = None,
                 max_retries: int | None = None, retry_base_s: float = 2.0,
                 processed_level: str = "info") -> None:
        self.config = config
        self.intake = intake
        self.ledger = ledger
        self.log = log
        self.counts = counts
        self.metrics = metrics
        self._wake = wake
        self._max_retries = max_retries
        self._retry_base_s = retry_base_s
        self._log_processed = getattr(log, processed_level)
        self._io: ThreadPoolExecutor | None = ThreadPoolExecutor(
            IO_THREADS, thread_name_prefix="dcmwatch-durable")
        self._io_done: deque[tuple[_Handler, Entry, Outcome, BaseException | None]] = deque()
        #: Files in the I/O threads: an output being committed, or a processed input released.
        self.busy = 0
        #: I/O results handled: progress for the liveness check.
        self.completed = 0
        #: This turn's durable outputs: journaled together by `flush`, then their inputs go.
        self._turn: list[tuple[Entry, Outcome]] = []
        self._retry: list[tuple[float, int, Entry]] = []
        self._seq = itertools.count()

    # -- the engine's calls ----------------------------------------------------------------------
    def outcome(self, entry: Entry, outcome: Outcome) -> None:
        """A decision about one file. Settling trouble (a full disk under the quarantine, say)
        never ends the engine: the input stays and the file is done again later."""
        try:
            self._settle(entry, outcome)
        except Exception as exc:
            self._failed_to_settle(entry, exc)

    def flush(self) -> None:
        """Journal this turn's claims and durable outputs in one transaction, then release the
        processed files' inputs. Journal first: a kill between the two leaves the input, which
        is processed again and journaled again; the other order could leave a row saying
        "claimed" for a file that is done."""
        turn, self._turn = self._turn, []
        for _, outcome in turn:
            self.ledger.processed(outcome)
        self.ledger.flush()
        for entry, outcome in turn:
            if self.intake.releases:
                self._in_io(functools.partial(self.intake.release, entry), self._released,
                            entry, outcome)
            else:
                self._released(entry, outcome, None)

    def drain(self) -> None:
        """Continue the files whose I/O finished (in the engine's thread)."""
        while self._io_done:
            handler, entry, outcome, exc = self._io_done.popleft()
            self.busy -= 1
            self.completed += 1
            handler(entry, outcome, exc)

    def due(self) -> list[Entry]:
        """Files whose retry back-off is over."""
        now, out = time.monotonic(), []
        while self._retry and self._retry[0][0] <= now:
            out.append(heapq.heappop(self._retry)[2])
        return out

    @property
    def waiting(self) -> list[Entry]:
        """Files waiting for a retry."""
        return [e for _, _, e in self._retry]

    @property
    def idle(self) -> bool:
        return self.busy == 0 and not self._retry and not self._turn

    def close(self, *, wait: bool) -> None:
        """Stop the I/O threads, finishing (or, without `wait`, abandoning) what they hold.
        After this, I/O runs in the caller's thread."""
        io, self._io = self._io, None
        if io is not None:
            io.shutdown(wait=wait)
        self.drain()

    # -- the file's life -------------------------------------------------------------------------
    def _settle(self, entry: Entry, outcome: Outcome) -> None:
        self._report(outcome)
        if outcome.status == "processed":
            if outcome.reid:
                # Before the input can go: a crash after that would lose the pairs with it.
                # Idempotent if redone.
                self.ledger.record_reid(outcome.reid)
            outcome = replace(outcome, findings=(), reid=(), stream=None)
            if outcome.pending is not None:
                self._in_io(functools.partial(_commit, outcome), self._committed, entry,
                            outcome)
            else:
                self._turn.append((entry, outcome))
        elif outcome.status == "retry":
            self.retry(entry, outcome)
        elif self.intake.give_back(entry, outcome):
            self.ledger.finished(outcome, "returned", size=entry.size)
            self.counts.deferred += 1
            self.log.info("file.deferred", claim_id=outcome.claim_id, reason=outcome.reason,
                          retry_in_s=self.config.watch.settle_seconds)
        else:
            self.quarantine(entry, outcome)

    def _report(self, outcome: Outcome) -> None:
        """What the worker found and could not log itself: workers do not log."""
        if outcome.findings:
            self.log.warning("ocr.finding", claim_id=outcome.claim_id,
                             policy=self.config.ocr.policy, count=len(outcome.findings),
                             findings=[f.as_dict() for f in outcome.findings])
            redacted = redaction_record(outcome.findings)
            if redacted is not None and outcome.status == "processed":
                self.log.info("ocr.redacted", claim_id=outcome.claim_id, **redacted)
        if outcome.stream is not None and outcome.stream.changed:
            self.log.info("pixels.stream_cleaned", claim_id=outcome.claim_id,
                          **outcome.stream.as_dict())

    def _committed(self, entry: Entry, outcome: Outcome, exc: BaseException | None) -> None:
        if exc is None:
            self._turn.append((entry, replace(outcome, pending=None)))
            return
        self.retry(entry, _retry_for(outcome, exc, "output", "committing the output failed"))

    def _released(self, entry: Entry, outcome: Outcome, exc: BaseException | None) -> None:
        if exc is not None:
            self._failed_to_settle(entry, exc)
            return
        c = self.counts
        c.processed += 1
        c.bytes_in += outcome.bytes_in
        latency = (time.monotonic() - entry.seen) * 1000 if entry.seen is not None else None
        if self.metrics is not None:
            self.metrics.processed(latency / 1000 if latency is not None else None)
        self._log_processed(
            "file.processed", claim_id=outcome.claim_id, output=outcome.output,
            bytes=outcome.bytes_in, bytes_out=outcome.bytes_out,
            duration_ms=outcome.duration_ms,
            latency_ms=round(latency, 1) if latency is not None else None,
            worker=outcome.worker, rules=list(outcome.rules),
        )

    def quarantine(self, entry: Entry, outcome: Outcome) -> None:
        size = outcome.bytes_in or entry.size
        sidecar: dict[str, object] = {
            "event": "file.quarantined", "claim_id": outcome.claim_id, "reason": outcome.reason,
            "message": outcome.message, "bytes": size,
            "quarantined_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "dcmwatch_version": __version__,
        }
        if outcome.findings:
            sidecar["ocr_findings"] = [f.as_dict() for f in outcome.findings]
        try:
            self.intake.quarantine(entry, sidecar)
        except (DcmwatchError, OSError) as exc:
            # Cannot even quarantine (disk full?): keep the input and try again later.
            self.retry(entry, _retry_for(outcome, exc, "quarantine_failed",
                                         "cannot quarantine the file"))
            return
        self.ledger.finished(outcome, "quarantined", size=size)
        c = self.counts
        c.quarantined += 1
        c.bytes_in += size
        c.quarantine_reasons[outcome.reason or "unknown"] += 1
        if self.metrics is not None:
            self.metrics.quarantined(outcome.reason)
        self.log.warning("file.quarantined", claim_id=outcome.claim_id, reason=outcome.reason,
                         message=outcome.message, bytes=size)

    def retry(self, entry: Entry, outcome: Outcome) -> None:
        attempt = self.ledger.attempt(outcome.claim_id)
        if self._max_retries is not None and attempt > self._max_retries:
            self.ledger.finished(outcome, "failed", size=entry.size)
            self.counts.failed += 1
            self.log.error("file.failed", claim_id=outcome.claim_id, reason=outcome.reason,
                           message=outcome.message, attempt=attempt)
            return
        delay = min(self._retry_base_s * 2.0 ** (attempt - 1), MAX_RETRY_DELAY_S)
        heapq.heappush(self._retry, (time.monotonic() + delay, next(self._seq), entry))
        self.counts.retried += 1
        self.log.warning("file.retry", claim_id=outcome.claim_id, reason=outcome.reason,
                         message=outcome.message, attempt=attempt, retry_in_s=delay)

    def _failed_to_settle(self, entry: Entry, exc: BaseException) -> None:
        self.log.error("file.finish_failed", claim_id=entry.item.claim_id, exc_info=exc)
        self.retry(entry, Outcome(claim_id=entry.item.claim_id, status="retry",
                                  reason="finish_failed", message="settling the outcome failed"))

    # -- the I/O threads -------------------------------------------------------------------------
    def _in_io(self, work: Callable[[], None], then: _Handler, entry: Entry,
               outcome: Outcome) -> None:
        self.busy += 1
        if self._io is None:  # stopping: the I/O threads are gone
            exc: BaseException | None = None
            try:
                work()
            except Exception as err:
                exc = err
            self._io_done.append((then, entry, outcome, exc))
            return
        fut = self._io.submit(work)
        fut.add_done_callback(functools.partial(self._io_finished, then, entry, outcome))

    def _io_finished(self, then: _Handler, entry: Entry, outcome: Outcome,
                     fut: Future[None]) -> None:
        """In an I/O thread: hand the result to the engine's thread."""
        self._io_done.append((then, entry, outcome, fut.exception()))
        self._wake()


def _commit(outcome: Outcome) -> None:
    assert outcome.pending is not None
    tmp, dest = outcome.pending
    store.commit(Path(tmp), Path(dest))


def _retry_for(outcome: Outcome, exc: BaseException, reason: str, message: str) -> Outcome:
    if isinstance(exc, DcmwatchError):
        reason, message = exc.reason, str(exc)
    return Outcome(claim_id=outcome.claim_id, status="retry", reason=reason, message=message,
                   findings=outcome.findings)
