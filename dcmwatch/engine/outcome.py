"""The values that cross the engine: what a worker is given (`WorkItem`s in a `Batch`) and what
it says back (`Outcome`), with the one vocabulary of statuses shared by the journal, the logs,
the metrics and `dcmwatch status`.

A file's life, in those words:

* ``claimed``: the inbox intake renamed it into the work area (the daemon only).
* ``processed``: its output is durable and journaled; the input is released.
* ``quarantined``: the original and a PHI-free sidecar are durable in quarantine.
* ``retry``: the world failed, not the file (a full disk, a denied read); it is tried again
  after a back-off.
* ``returned``: given back to the inbox unread (still being written, or the daemon stopped).
* ``requeued``: an operator sent a quarantined file back (`dcmwatch requeue`).
* ``failed``: a backfill gave up retrying within this run; the journal does not call it done, so
  the next run tries it again.

Only paths and these small records cross a process boundary, never file bytes or a Dataset.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from dcmwatch.ocr.findings import Finding
from dcmwatch.pixels.streams import StreamReport

#: What a worker (or the engine, for a file that killed workers) decided about one file.
Status = Literal["processed", "quarantined", "retry"]

#: Every state a file's journal row, last event and metrics can be in (see the module doc).
FILE_STATES: Final = ("claimed", "processed", "quarantined", "retry", "returned", "requeued",
                      "failed")

_T = TypeVar("_T")


def _pickled_as_tuple(cls: type[_T]) -> type[_T]:
    """Pickle a frozen slots dataclass as (class, field values) taken by one C attrgetter: the
    generated `__getstate__`/`__setstate__` walk `dataclasses.fields()` in Python, and every
    file crosses a process boundary twice (its item out, its outcome back)."""
    values = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))  # type: ignore[arg-type]

    def __reduce__(self: Any) -> tuple[type[_T], tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


@_pickled_as_tuple
@dataclass(frozen=True, slots=True)
class WorkItem:
    #: A local path (a work-area file, or an archive's original) or an s3:// URL. Never logged.
    source: str
    #: Our own id for this input: names its journal row, temp files and quarantine entry.
    claim_id: str


@dataclass(frozen=True, slots=True)
class Batch:
    """Files that travel to one worker together: one for the daemon (latency), dozens for a
    backfill (per-task scheduling costs a third or more of a few-millisecond file on any engine;
    a batch amortises it)."""

    items: tuple[WorkItem, ...]
    #: Where outputs go: a local folder or an s3:// prefix.
    outbox: str
    #: Leave each local output in an unsynced temporary file (`Outcome.pending`) for the settle
    #: stage's I/O threads to commit, so a worker never waits on the disk. Off where the settle
    #: stage cannot reach the output (a remote worker's disk, S3): the worker commits it.
    defer_commit: bool = False
    #: The operator named these files (a backfill): hard links are fine. A claimed inbox file
    #: with another link could be someone else's file, and is refused.
    allow_hardlinks: bool = False
    #: Hash each output (`Outcome.sha256_out`): a backfill's journal keeps it, so a rerun or
    #: an audit can check an object it cannot list cheaply. The daemon does not pay for it.
    digest_output: bool = False
    #: Run with nothing else in flight: a suspect after a worker died.
    isolated: bool = False


@_pickled_as_tuple
@dataclass(frozen=True, slots=True)
class Outcome:
    claim_id: str
    status: Status
    reason: str = ""
    #: A message of our own, free of PHI.
    message: str = ""
    #: Output path relative to the outbox.
    output: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    sha256_in: str = ""
    sha256_out: str = ""
    mtime_ns: int = 0
    duration_ms: float = 0.0
    #: The worker's process id (0 when the engine decided without a worker).
    worker: int = 0
    rules: tuple[str, ...] = ()
    #: Re-identification pairs (kind, pseudonym, original), only with `[deid] reid_map`. PHI:
    #: never logged, never in the repr; the settle stage stores them in the state database.
    reid: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)
    #: The burned-in text guard's findings (boxes and classes, never text), for the settle stage
    #: to log: workers do not log.
    findings: tuple[Finding, ...] = ()
    #: What was removed from encapsulated Pixel Data (counts and sizes), for the settle stage.
    stream: StreamReport | None = None
    #: With `Batch.defer_commit`: (temporary file, final path) still to be committed.
    pending: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Results:
    """A batch's outcomes as one object. Dask serializes a returned list (or tuple) element by
    element: a pickle, a header and a frame per file, in the worker's and the driver's event
    loops; one object is one pickle."""

    outcomes: tuple[Outcome, ...]
