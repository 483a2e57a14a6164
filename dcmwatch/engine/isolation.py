"""Crash isolation: when a worker dies, find the file that killed it without blaming the others.

With several files in flight the culprit is unknown. Each batch that was in flight is rerun
alone (`isolated`: nothing else runs meanwhile); an isolated batch of several files that dies
again is halved until one file stands alone; a file that kills its worker while alone counts an
attempt, and after `workers.max_attempts` it is quarantined (`worker_crashed`). So a poison file
cannot loop and its neighbours are never blamed for it. A batch the executor already retried on
other workers before giving up (Dask's `KilledWorker`) needs no second count: alone, it is the
culprit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dcmwatch.engine.counts import Counts
from dcmwatch.engine.executors import Failure
from dcmwatch.engine.outcome import Batch, Outcome, WorkItem

REASON = "worker_crashed"


class Isolation:
    def __init__(self, max_attempts: int, attempts: Callable[[str], int], log: Any,
                 counts: Counts) -> None:
        self._max_attempts = max_attempts
        self._attempts = attempts
        self._log = log
        self._counts = counts
        self._suspects: deque[Batch] = deque()

    @property
    def active(self) -> bool:
        """Suspects wait: nothing else may be started until they have run alone."""
        return bool(self._suspects)

    def next(self) -> Batch | None:
        """The next suspect, to run with nothing else in flight."""
        return self._suspects.popleft() if self._suspects else None

    def waiting(self) -> list[WorkItem]:
        return [item for batch in self._suspects for item in batch.items]

    def take_all(self) -> list[Batch]:
        out = list(self._suspects)
        self._suspects.clear()
        return out

    def crashed(self, batch: Batch, failure: Failure) -> list[Outcome]:
        """A batch died with its worker. Returns the quarantine outcomes of files proven to be
        poison; the others wait here to run alone."""
        if not batch.isolated:
            for item in batch.items:
                self._log.warning("file.retry", claim_id=item.claim_id, reason=REASON,
                                  attempt=0, error=failure.error)
            self._suspects.append(replace(batch, isolated=True))
            return []
        if len(batch.items) > 1:
            mid = len(batch.items) // 2
            self._suspects.extendleft([replace(batch, items=batch.items[mid:]),
                                       replace(batch, items=batch.items[:mid])])
            self._counts.splits += 1
            self._log.warning("batch.split", error=failure.error, files=len(batch.items))
            return []
        item = batch.items[0]
        attempts = self._max_attempts if failure.retried else self._attempts(item.claim_id)
        if attempts >= self._max_attempts:
            return [Outcome(claim_id=item.claim_id, status="quarantined", reason=REASON,
                            message=f"the worker died {attempts} times on this file")]
        self._log.warning("file.retry", claim_id=item.claim_id, reason=REASON, attempt=attempts,
                          error=failure.error)
        self._suspects.appendleft(batch)
        return []
