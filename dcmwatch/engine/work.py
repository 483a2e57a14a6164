"""One file on a worker, wherever it runs: read, run the core under the time limit, write the
output, say what happened as an `Outcome`.

This is the per-file error boundary of both front ends. Expected failures (`InputError`:
quarantine; `TransientError`: retry later) become outcomes; anything else is a bug and becomes a
quarantine outcome too, carrying the exception's class and never its message. A worker never
quarantines, journals or logs: the settle stage does, in the process that owns the journal, so
stdout has one writer and journald gets whole lines.

Entry points: `run_in_pool` in the engine's own worker processes (the configuration arrived once,
at start), `run_on_dask` on a Dask worker (the configuration travels with each batch: a few
kilobytes against megabytes of files, and nothing a worker restart could lose).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from dcmwatch import dicomfile, libc, pipeline, store
from dcmwatch.backfill import locations
from dcmwatch.config import Config
from dcmwatch.engine.limits import explain, run_limited
from dcmwatch.engine.outcome import Batch, Outcome, Results, WorkItem
from dcmwatch.errors import DcmwatchError, OutputError, TransientError
from dcmwatch.ocr.engines import engine_for

_config: Config | None = None
_quiet = False


def init_worker(config: Config) -> None:
    """Once in each of the engine's own worker processes, before the first batch."""
    global _config  # noqa: PLW0603 - the per-process state of a worker, set once
    _config = config
    _die_with_parent()
    libc.keep_buffers_in_heap()
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    root = logging.getLogger()
    root.handlers[:] = [logging.NullHandler()]
    root.setLevel(logging.CRITICAL)
    logging.captureWarnings(True)
    _silence()
    with contextlib.suppress(DcmwatchError):
        pipeline.build_steps(config)  # warm the cache; a failure surfaces per file
    if config.ocr.enabled:
        with contextlib.suppress(Exception):  # load the OCR models now, not on the first file
            engine_for(config.ocr)


def _silence() -> None:
    """Library warnings and pydicom's log may quote element values: nothing of them leaves a
    worker. Unlike `init_worker` this leaves signals and the root logger alone, for a Dask
    worker, where they belong to Dask (and tasks run in threads, which cannot set handlers)."""
    global _quiet  # noqa: PLW0603 - per-process state, set once
    if _quiet:
        return
    dicomfile.silence_library_messages()
    pdlog = logging.getLogger("pydicom")
    pdlog.handlers[:] = [logging.NullHandler()]
    pdlog.propagate = False
    _quiet = True


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: after `kill -9` of the daemon, an orphan must not write on."""
    prctl = libc.function("prctl")
    if prctl is None:
        return
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def run_in_pool(batch: Batch) -> tuple[Outcome, ...]:
    """Entry point in the engine's worker processes (`init_worker` stored the configuration)."""
    if _config is None:
        raise RuntimeError("worker used before init_worker")
    return run_batch(batch, _config)


def run_on_dask(batch: Batch, config: Config) -> Results:
    """Entry point on a Dask worker."""
    _silence()
    return Results(run_batch(batch, config))


def run_batch(batch: Batch, config: Config) -> tuple[Outcome, ...]:
    return tuple(run_one(item, batch, config) for item in batch.items)


@dataclass(slots=True)
class _Input:
    """What is known of the input so far, for an outcome that fails half-way."""

    mtime_ns: int = 0
    size: int = 0


def run_one(item: WorkItem, batch: Batch, config: Config) -> Outcome:
    start = time.perf_counter()
    seen = _Input()
    try:
        result = run_limited(config.limits.file_seconds, _core, item, batch, config, seen)
        # The write is outside the limit: an alarm there would leave a temporary file.
        pending = _write(batch, result.relpath, result.data, tag=item.claim_id,
                         mode=config.output.file_mode)
    except BaseException as exc:  # every per-file failure is an outcome, said by `explain`
        err = explain(exc)
        return Outcome(
            claim_id=item.claim_id,
            status="retry" if isinstance(err, TransientError) else "quarantined",
            reason=err.reason, message=str(err), mtime_ns=seen.mtime_ns, bytes_in=seen.size,
            duration_ms=_ms(start), worker=os.getpid(), findings=getattr(exc, "findings", ()),
        )
    return Outcome(
        claim_id=item.claim_id, status="processed", output=result.relpath,
        bytes_in=seen.size, bytes_out=len(result.data), sha256_in=result.sha256_in,
        sha256_out=hashlib.sha256(result.data).hexdigest() if batch.digest_output else "",
        mtime_ns=seen.mtime_ns,
        duration_ms=_ms(start), worker=os.getpid(), rules=result.rules, reid=result.reid,
        findings=result.findings, stream=result.stream, pending=pending,
    )


def _core(item: WorkItem, batch: Batch, config: Config, seen: _Input) -> pipeline.Processed:
    """Read and de-identify, inside the time limit (a read from a hung NFS server is the
    file's time too)."""
    limit = config.limits.max_file_bytes
    if locations.is_remote(item.source):
        data = locations.read(item.source, max_bytes=limit)
    else:
        got = store.read_input(item.source, max_bytes=limit,
                               allow_hardlinks=batch.allow_hardlinks)
        data, seen.mtime_ns = got.data, got.mtime_ns
    seen.size = len(data)
    return pipeline.process_bytes(data, config)


def _write(batch: Batch, relpath: str, data: bytes | bytearray, *, tag: str,
           mode: int) -> tuple[str, str] | None:
    """Durable now (the worker's own write), or left for the settle stage: (temp, final)."""
    if locations.is_remote(batch.outbox):
        locations.write(batch.outbox, relpath, data, tag=tag, mode=mode)
        return None
    dest = inside(Path(batch.outbox), relpath)
    if batch.defer_commit:
        return str(store.write_unsynced(dest, data, tag=tag, mode=mode)), str(dest)
    store.write_durable(dest, data, tag=tag, mode=mode)
    return None


def inside(root: Path, relpath: str) -> Path:
    """Join and prove the result stays inside `root` (layout values are already sanitised),
    symbolic links included. A folder once proven is remembered: a series' files share one,
    and resolving costs a stat per path component."""
    dest = root / relpath
    parent = str(dest.parent)
    if parent in _proven:
        return dest
    if root.resolve() not in dest.resolve().parents:
        raise OutputError("the output path would leave the outbox")
    if len(_proven) >= _PROVEN_MAX:
        _proven.clear()
    _proven.add(parent)
    return dest


#: Output folders `inside` has proven (per worker process).
_proven: set[str] = set()
_PROVEN_MAX = 4096


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)



def process_file(path: str, claim_id: str, config: Config, *, outbox: str | None = None,
                 allow_hardlinks: bool = False, defer_commit: bool = False) -> Outcome:
    """One local file into the outbox, outside any executor: the per-file call as a worker runs
    it, for tools and tests."""
    batch = Batch((WorkItem(path, claim_id),), outbox or str(config.paths.outbox),
                  defer_commit=defer_commit, allow_hardlinks=allow_hardlinks)
    return run_one(batch.items[0], batch, config)
