"""A batch of inputs on a worker: read, run the daemon's core, write the outputs, report.

Runs on whatever executes it (a local pool process or a Dask worker): only paths go in, only
small `FileResult`s come out, never file bytes. It is the per-file error boundary of a backfill,
as `job.process` is the daemon's: every exception is caught per file (the rest of the batch goes
on) and reported by reason and class, never by message. A worker that *dies* is the driver's
business (it splits the batch until the file that kills workers stands alone).

Batches, not one task per file: at a few milliseconds a file, per-task scheduling costs a third
or more of the work on any engine; a batch of ~64 amortises it to a few percent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import operator
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pydicom.config

from dcmwatch import __version__, job, pipeline, thread_limit
from dcmwatch.backfill import locations
from dcmwatch.config import Config
from dcmwatch.errors import TransientError
from dcmwatch.ocr.findings import Finding
from dcmwatch.pixels.streams import StreamReport

Status = Literal["processed", "quarantined", "failed"]
_T = TypeVar("_T")


def _pickled_as_tuple(cls: type[_T]) -> type[_T]:
    """Pickle a frozen slots dataclass as (class, field values) taken by one C attrgetter: the
    generated `__getstate__`/`__setstate__` walk `dataclasses.fields()` in Python, and every
    input crosses a process boundary twice (its `Item` out, its `FileResult` back)."""
    values = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))  # type: ignore[arg-type]

    def __reduce__(self: Any) -> tuple[type[_T], tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


@_pickled_as_tuple
@dataclass(frozen=True, slots=True)
class Item:
    #: A local path or an s3:// URL. Travels to the worker; never logged.
    source: str
    #: Keyed digest of `source`: names the journal row, temp files and the quarantine entry.
    ident: str


@dataclass(frozen=True, slots=True)
class Batch:
    items: tuple[Item, ...]
    outbox: str
    quarantine: str
    #: Times this (single-file) batch crashed its pool while running alone.
    crashes: int = 0
    #: Run with nothing else in flight (a suspect after a local pool crash).
    isolated: bool = False


@_pickled_as_tuple
@dataclass(frozen=True, slots=True)
class FileResult:
    ident: str
    status: Status
    reason: str = ""
    #: A message of our own, free of PHI.
    message: str = ""
    #: Output key relative to the outbox.
    output: str = ""
    sha256_in: str = ""
    sha256_out: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    duration_ms: float = 0.0
    #: The burned-in text guard's findings (boxes and classes, never text): the driver logs them.
    findings: tuple[Finding, ...] = ()
    #: Re-identification pairs (kind, pseudonym, original), only with `[deid] reid_map`. PHI:
    #: never logged, never in the repr; the driver stores them in the state database.
    reid: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)
    #: What was removed from encapsulated Pixel Data (counts and sizes): the driver logs it.
    stream: StreamReport | None = None


_quiet = False


def _quiet_worker() -> None:
    """Once per worker process: library warnings and pydicom's log may quote element values.

    Unlike `job.init_worker` this leaves signals and the root logger alone: on a Dask worker
    they belong to Dask (and tasks run in a thread, where signal handlers cannot be set).
    """
    global _quiet  # noqa: PLW0603 - per-process state, set once
    if _quiet:
        return
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    warnings.simplefilter("ignore")
    pdlog = logging.getLogger("pydicom")
    pdlog.handlers[:] = [logging.NullHandler()]
    pdlog.propagate = False
    _quiet = True


@dataclass(frozen=True, slots=True)
class Results:
    """A batch's results as one object. Dask serializes a returned list (or tuple) element by
    element: a pickle, a header and a frame per file, in the worker's and the driver's event
    loops; one object is one pickle."""

    results: tuple[FileResult, ...]


def run_batch(batch: Batch, config: Config) -> list[FileResult]:
    _quiet_worker()
    return [run_one(item, batch, config) for item in batch.items]


def run_remote(batch: Batch, config: Config) -> Results:
    """Entry point on a Dask worker."""
    return Results(tuple(run_batch(batch, config)))


def run_local(batch: Batch) -> list[FileResult]:
    """Entry point in a local pool process (`job.init_worker` stored the configuration)."""
    if job._config is None:
        raise RuntimeError("worker used before init_worker")
    return run_batch(batch, job._config)


def run_one(item: Item, batch: Batch, config: Config) -> FileResult:
    start = time.perf_counter()
    size = 0
    try:
        data = locations.read(item.source, max_bytes=config.limits.max_file_bytes)
        size = len(data)
        # The daemon's per-file limit: its alarm in a local pool process, the thread watcher
        # on a Dask worker (tasks run in threads there, which cannot take signals).
        result = thread_limit.run_limited(config.limits.file_seconds, pipeline.process_bytes,
                                          data, config)
        locations.write(batch.outbox, result.relpath, result.data, tag=item.ident,
                        mode=config.output.file_mode)
    except BaseException as exc:  # every per-file failure is a result, said by `job.explain`
        err = job.explain(exc)
        if isinstance(err, TransientError):
            return FileResult(item.ident, "failed", reason=err.reason, message=str(err),
                              bytes_in=size, duration_ms=_ms(start))
        return quarantine(item, batch, config, err.reason, str(err), size, start,
                          findings=getattr(exc, "findings", ()))
    return FileResult(
        item.ident, "processed", output=result.relpath, sha256_in=result.sha256_in,
        sha256_out=hashlib.sha256(result.data).hexdigest(), bytes_in=size,
        bytes_out=len(result.data), duration_ms=_ms(start), findings=result.findings,
        reid=result.reid, stream=result.stream,
    )


def quarantine(item: Item, batch: Batch, config: Config, reason: str, message: str,
               size: int = 0, start: float | None = None, *,
               findings: tuple[Finding, ...] = ()) -> FileResult:
    """Copy the original into quarantine with a PHI-free sidecar; `failed` if that fails."""
    start = time.perf_counter() if start is None else start
    sidecar: dict[str, object] = {
        "event": "file.quarantined", "claim_id": item.ident, "reason": reason, "message": message,
        "bytes": size, "mode": "backfill", "dcmwatch_version": __version__,
    }
    if findings:
        sidecar["ocr_findings"] = [f.as_dict() for f in findings]
    try:
        locations.quarantine(item.source, batch.quarantine, item.ident, sidecar,
                             mode=config.output.file_mode)
    except Exception as exc:
        return FileResult(item.ident, "failed", reason="quarantine_failed",
                          message=f"cannot quarantine ({type(exc).__name__})",
                          bytes_in=size, duration_ms=_ms(start))
    return FileResult(item.ident, "quarantined", reason=reason, message=message,
                      bytes_in=size, duration_ms=_ms(start), findings=findings)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
