"""What the engine has done so far, counted once for every reader: the daemon's heartbeat and
`status`, a backfill's progress bar, `process.finished`, and the metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Counts:
    processed: int = 0
    quarantined: int = 0
    #: Given up within a backfill run (retries spent); the next run tries them again.
    failed: int = 0
    #: Outcomes that asked for a retry (each attempt counts).
    retried: int = 0
    #: Files given back to the inbox while still being written.
    deferred: int = 0
    #: Inputs a backfill's journal already marked done (a rerun or `--resume`).
    skipped: int = 0
    bytes_in: int = 0
    batches: int = 0
    #: Batches split to find a file that kills workers.
    splits: int = 0
    #: Quarantined files per reason.
    quarantine_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def files(self) -> int:
        return self.processed + self.quarantined + self.failed
