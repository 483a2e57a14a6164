"""One file in a worker process: read, run the core, write (durably, or left for the daemon to
commit with `Task.defer_sync`), report an `Outcome`.

This is the error boundary. Expected failures (`InputError`: quarantine; `TransientError`: retry
later) become outcomes; anything else is a bug and becomes a quarantine outcome too, carrying the
exception's class and never its message. Only a `Task` and an `Outcome` cross the process
boundary, never a Dataset. Workers do not log: the parent logs each outcome, so stdout has one
writer and journald gets whole lines.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal

from dcmwatch import dicomfile, libc, pipeline, store
from dcmwatch.config import Config, backstop_seconds
from dcmwatch.errors import (
    FATAL,
    DcmwatchError,
    InputError,
    InternalError,
    OutputError,
    TimeLimitExceeded,
    TransientError,
)
from dcmwatch.ocr import Finding
from dcmwatch.ocr.engines import engine_for
from dcmwatch.pixels.streams import StreamReport

Status = Literal["processed", "quarantine", "transient"]


@dataclass(frozen=True, slots=True)
class Task:
    #: The file to read: a work-area file (daemon) or an original (batch, never modified).
    path: str
    #: Our own id for this input; names its journal row, temp files and quarantine entry.
    claim_id: str
    #: Batch mode: the operator named this file, so hard links are fine.
    batch: bool = False
    #: Daemon mode: leave the output unsynced in its temporary file (`Outcome.pending`); the
    #: daemon's I/O threads commit it, so the worker's core never waits on the disk.
    defer_sync: bool = False


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
    mtime_ns: int = 0
    duration_ms: float = 0.0
    worker: int = 0
    rules: tuple[str, ...] = field(default_factory=tuple)
    #: Re-identification pairs (kind, pseudonym, original), only with `[deid] reid_map`. PHI:
    #: never logged, never in the repr; the parent stores them in the journal's reid table.
    reid: tuple[tuple[str, str, str], ...] = field(default=(), repr=False)
    #: The burned-in text guard's findings (boxes and classes, never text), for the parent to log.
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    #: What was removed from encapsulated Pixel Data (counts and sizes), for the parent to log.
    stream: StreamReport | None = None
    #: With `Task.defer_sync`: (temporary file, final path) still to be committed.
    pending: tuple[str, str] | None = None


_config: Config | None = None


def init_worker(config: Config) -> None:
    """Pool initializer: runs once in each worker process."""
    global _config  # noqa: PLW0603 - the per-process state of a worker, set once
    _config = config
    _die_with_parent()
    libc.keep_buffers_in_heap()
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Library warnings and log records may quote element values: silence them here.
    dicomfile.silence_library_messages()
    logging.captureWarnings(True)
    root = logging.getLogger()
    root.handlers[:] = [logging.NullHandler()]
    root.setLevel(logging.CRITICAL)
    with contextlib.suppress(DcmwatchError):
        pipeline.build_steps(config)  # warm the cache; a failure surfaces per file
    if config.ocr.enabled:
        with contextlib.suppress(Exception):  # load the OCR models now, not on the first file
            engine_for(config.ocr)


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG: after `kill -9` of the daemon, an orphan must not write on."""
    prctl = libc.function("prctl")
    if prctl is None:
        return
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def run(task: Task) -> Outcome:
    """Entry point in a worker: uses the configuration the initializer stored."""
    if _config is None:
        raise RuntimeError("worker used before init_worker")
    return process(task, _config)


def process(task: Task, config: Config) -> Outcome:
    start = time.perf_counter()
    pid = os.getpid()
    mtime_ns = 0
    size = 0
    try:
        with time_limit(config.limits.file_seconds):
            got = store.read_input(task.path, max_bytes=config.limits.max_file_bytes,
                                  allow_hardlinks=task.batch)
            mtime_ns, size = got.mtime_ns, got.size
            result = pipeline.process_bytes(got.data, config)
        dest = _inside(config.paths.outbox, result.relpath)
        pending = None
        if task.defer_sync:
            tmp = store.write_unsynced(dest, result.data, tag=task.claim_id,
                                       mode=config.output.file_mode)
            pending = (str(tmp), str(dest))
        else:
            store.write_durable(dest, result.data, tag=task.claim_id,
                                mode=config.output.file_mode)
    except BaseException as exc:  # every per-file failure is an outcome, said by `explain`
        err = explain(exc)
        status: Status = "transient" if isinstance(err, TransientError) else "quarantine"
        return _failed(task, status, err, start, pid, mtime_ns, size)
    return Outcome(
        claim_id=task.claim_id, status="processed", output=result.relpath,
        bytes_in=size, bytes_out=len(result.data),
        sha256_in=result.sha256_in, mtime_ns=mtime_ns,
        duration_ms=_ms(start), worker=pid, rules=result.rules, reid=result.reid,
        findings=result.findings, stream=result.stream, pending=pending,
    )


#: Exit status of a worker ended by the backstop (its file ran past the limit inside C code).
BACKSTOP_EXIT = 70


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Stop one file's work after `seconds` of wall-clock time.

    A pool cannot cancel a running task, so the worker limits itself: an ITIMER_REAL alarm raises
    `TimeLimitExceeded` (an InputError: the file is quarantined as `time_limit`) at the next
    Python bytecode. A decoder stuck in C code never reaches one; for that a backstop thread
    ends the whole worker (`os._exit`) after a grace period, and the daemon's crash handling
    retries the file alone and quarantines it after `workers.max_attempts`. Only the main thread
    can take signals, so elsewhere (a caller's thread) no limit applies.
    The write of the output is outside the limit: an alarm there would leave a temp file.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _alarm.fired = False
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _backstop().arm(time.monotonic() + backstop_seconds(seconds))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _backstop().disarm()
        signal.signal(signal.SIGALRM, previous)


_TIME_LIMIT_MESSAGE = "processing the file took longer than limits.file_seconds"


def explain(exc: BaseException) -> DcmwatchError:
    """What one file's failure was, for every per-file boundary (the daemon's workers and the
    backfill's batches). Transient errors stay transient; a time limit that ran out is said as
    such even when a library re-wrapped our exception; a bug (or a decoder's panic, which is a
    BaseException) becomes `InternalError` with its class only. FATAL ones are raised again."""
    if isinstance(exc, FATAL):
        raise exc
    # Said once: a later file's failure outside a limit (a read before it) is its own.
    fired, _alarm.fired = _alarm.fired, False
    if isinstance(exc, TransientError):
        return exc
    if fired:
        return TimeLimitExceeded(_TIME_LIMIT_MESSAGE)
    if isinstance(exc, (InputError, OutputError)):
        return exc
    return InternalError(f"internal error ({type(exc).__name__})")



class _Alarm(threading.local):
    #: Set when the alarm fired: libraries that catch Exception may re-wrap it (the
    #: de-identifier turns it into a TransformError), and the outcome must still say why.
    #: Per thread: `thread_limit` limits several threads of one process independently.
    fired = False


_alarm = _Alarm()


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    _alarm.fired = True
    raise TimeLimitExceeded(_TIME_LIMIT_MESSAGE)


class _Backstop:
    """One thread per process that ends it if an armed deadline passes.

    It looks every `POLL_S` rather than being woken: arming is per file, and notifying a
    waiting thread for each cost ~0.5 ms of lock and GIL hand-offs per file. A backstop that
    acts a quarter of a second late still acts."""

    POLL_S = 0.25

    def __init__(self) -> None:
        self._deadline: float | None = None
        threading.Thread(target=self._watch, name="dcmwatch-backstop", daemon=True).start()

    def arm(self, deadline: float) -> None:
        self._deadline = deadline

    def disarm(self) -> None:
        self._deadline = None

    def _watch(self) -> None:
        while True:
            time.sleep(self.POLL_S)
            deadline = self._deadline  # one read: arm and disarm replace it whole
            if deadline is not None and time.monotonic() >= deadline:
                os._exit(BACKSTOP_EXIT)


_backstop_instance: _Backstop | None = None


def _backstop() -> _Backstop:
    global _backstop_instance  # noqa: PLW0603 - one watcher thread per process, made on first use
    if _backstop_instance is None:
        _backstop_instance = _Backstop()
    return _backstop_instance


def _failed(task: Task, status: Status, exc: DcmwatchError, start: float, pid: int,
            mtime_ns: int, size: int) -> Outcome:
    return Outcome(
        claim_id=task.claim_id, status=status, reason=exc.reason, message=str(exc),
        mtime_ns=mtime_ns, bytes_in=size, duration_ms=_ms(start), worker=pid,
        findings=getattr(exc, "findings", ()),
    )


def _inside(root: Path, relpath: str) -> Path:
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


#: Output folders `_inside` has proven (per worker process).
_proven: set[str] = set()
_PROVEN_MAX = 4096


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)
