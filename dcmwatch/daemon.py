"""The daemon: owns the observer, the intake queue, the pool, the journal and the schedule.

One main thread makes every decision (claim, submit, finish, quarantine, journal); the observer
and the scheduler only offer paths, and worker processes only compute. So the journal has one
writer, ordering is easy to reason about, and a signal handler only sets a flag.

Exactly-once across `kill -9`: a file is claimed by renaming it into the work area; the worker
writes its output to a hidden temporary file, an I/O thread makes it durable (fsync, rename,
fsync folder) and only then removes the work file. A restart processes whatever is
left in the work area first. Outputs are deterministic (keyed pseudonyms, no clock), so a file
processed twice writes the same bytes to the same path.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import os
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler

from dcmwatch import __version__, housekeeping, keys, store
from dcmwatch import config as config_mod
from dcmwatch.config import Config
from dcmwatch.errors import FATAL, DcmwatchError
from dcmwatch.intake import Intake, NameFilter
from dcmwatch.job import Outcome, Task
from dcmwatch.journal import FILENAME as JOURNAL_FILE
from dcmwatch.journal import open_journal, open_state
from dcmwatch.log import get as get_logger
from dcmwatch.ocr.findings import redaction_record
from dcmwatch.store import WORK_DIR_NAME
from dcmwatch.supervision import Snapshot, Supervision
from dcmwatch.watcher import Watcher
from dcmwatch.workers import BrokenProcessPool, Pool

if TYPE_CHECKING:
    from dcmwatch.metrics import Metrics

_TICK = 0.05
_SETTLE_TICK = 0.1
_SPACE_TICK = 1.0  # free-space checks for back-pressure: a statvfs per folder per second
#: Threads that commit outputs (fsync, rename, fsync folder) and remove inputs: they only wait
#: on the disk, with the GIL released, while the workers go on computing.
_IO_THREADS = 4
#: Outputs waiting for their commit before the daemon stops claiming more: a slow disk slows
#: intake instead of filling memory with dirty pages.
_MAX_COMMITTING = 64
#: The scheduler's interval jobs and the `[schedule]` key of each: a reload reschedules them.
_INTERVAL_JOBS = (("rescan", "rescan_seconds"), ("heartbeat", "heartbeat_seconds"),
                  ("retention", "retention_seconds"),
                  ("journal_maintenance", "maintenance_seconds"))


@dataclass(slots=True)
class _InFlight:
    task: Task
    #: The inbox path it was claimed from (None for work left over from a previous run). Kept in
    #: memory only: file names may carry PHI and are never logged or journaled.
    origin: str | None
    claimed_wall: float
    size: int
    mtime_ns: int
    #: In flight when a worker died: runs alone until done, so a crash can be attributed.
    suspect: bool = False
    #: First sight in the inbox (monotonic): `latency_ms` runs from here to `file.processed`.
    seen: float | None = None


#: The main thread's handler for what an I/O thread finished: (file, outcome, its failure).
_IoHandler = Callable[[_InFlight, Outcome, BaseException | None], None]


@dataclass(slots=True)
class _Counters:
    processed: int = 0
    quarantined: int = 0
    deferred: int = 0
    retried: int = 0
    #: Futures the workers finished, whatever the outcome: the liveness check's progress.
    completed: int = 0
    since_beat_processed: int = 0
    since_beat_quarantined: int = 0
    last_beat: float = field(default_factory=time.monotonic)


def new_claim_id() -> str:
    """Sortable by time, unique, and carrying nothing of the input."""
    return f"{time.time_ns():x}-{secrets.token_hex(4)}"


class Daemon:
    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self.config = config
        self.env = env
        self.log = get_logger()
        self._stop = False
        self._force = False
        self._reload = False
        self._heartbeat_due = False
        self._rescan_requested = False
        self._overflow_seen = False
        self._rescan_pending = False
        self._rescan_kicked = 0.0
        self._done: deque[Future[Outcome]] = deque()
        self._inflight: dict[Future[Outcome], _InFlight] = {}
        self._ready: deque[_InFlight] = deque()  # claimed, waiting for a pool slot
        self._retry: list[tuple[float, int, _InFlight]] = []  # (due, seq, item) heap
        self._seq = 0
        #: Inbox path -> claim id of files given back to the inbox (deferred), oldest first.
        self._given_back: dict[str, tuple[str, int]] = {}  # inbox name -> claim id, inode
        #: Files in the I/O threads: an output being committed, or a processed input removed.
        self._committing = 0
        #: What the I/O threads finished (a commit, an input's release) and the main thread's
        #: handler for it, in the order finished.
        self._io_done: deque[tuple[_IoHandler, _InFlight, Outcome, BaseException | None]] = (
            deque())
        self._io = ThreadPoolExecutor(_IO_THREADS, thread_name_prefix="dcmwatch-durable")
        #: This turn's claims (claim id, size) and processed files: journaled together at the
        #: end of the turn (`_flush`), and only then are the processed files' inputs removed.
        self._claims: list[tuple[str, int]] = []
        self._settled: list[tuple[_InFlight, Outcome]] = []
        self._io_open = True
        self.counters = _Counters()
        #: Set while intake is paused for lack of disk space: the folder role that is short.
        self._paused: str | None = None
        self._space_checked = 0.0
        self.metrics: Metrics | None = None  # when [metrics] enabled
        p = config.paths
        self.inbox, self.outbox, self.qdir, self.state = p.inbox, p.outbox, p.quarantine, p.state
        self.work = self.state / "work"
        self.intake = Intake(
            self.inbox, settle_seconds=config.watch.settle_seconds,
            max_pending=config.queue.max_pending, names=NameFilter(config.watch.ignore),
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        os.umask(0o027)
        self.supervision = Supervision(self.env, self.log)
        self._prepare_folders()
        self.journal, corrupt = open_journal(self.state / JOURNAL_FILE,
                                             mode=self.config.output.file_mode,
                                             reid_map=self.config.deid.reid_map)
        if corrupt is not None:
            self.log.error("journal.corrupt", action="moved aside, new journal", moved_to=corrupt)
        self.pool = Pool(self.config)  # workers start now, not on the first file
        recovered = self._recover()
        previous = self._install_signals()
        threading.excepthook = self._thread_died
        self.watcher = self._start_watcher()
        self.scheduler = self._start_scheduler()
        self._start_metrics()
        self.log.info(
            "daemon.started", version=__version__, pid=os.getpid(), workers=self.pool.size,
            observer=self.watcher.kind, recovered=recovered,
            startup_ms=round((time.monotonic() - started) * 1000, 1),
        )
        # The start-up scan runs in the scheduler's thread and feeds the queue as it walks: READY
        # does not wait for it, however many files are waiting.
        self.supervision.ready(self._snapshot())
        try:
            self._check_space()  # before the first claim, not a second later
            self._loop()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _prepare_folders(self) -> None:
        mode = 0o750
        for folder in (self.inbox, self.outbox, self.qdir, self.state):
            store.ensure_dir(folder, mode)
        if not store.same_filesystem(self.inbox, self.state):
            # The claim is an atomic rename: the work area must share the inbox's filesystem.
            self.work = self.inbox / WORK_DIR_NAME
            self.log.info("work.location", where="inbox", reason="state on another filesystem")
        store.ensure_dir(self.work, mode)

    def _recover(self) -> int:
        """Work left by a crash is processed again first (its output path is deterministic)."""
        n = 0
        for entry in sorted(os.scandir(self.work), key=lambda e: e.name):
            if entry.name.endswith(".dcm") and not entry.name.startswith("."):
                st = entry.stat(follow_symlinks=False)
                item = _InFlight(Task(entry.path, entry.name[:-4], defer_sync=True), None,
                                 time.time(),
                                 st.st_size, st.st_mtime_ns)
                self._ready.append(item)
                n += 1
            else:
                store.remove(Path(entry.path))
        # A kill between quarantining a file and journaling it leaves a "claimed" row whose
        # work file is gone and whose quarantine entry exists: record what happened.
        left = {i.task.claim_id for i in self._ready}
        for claim_id in self.journal.unfinished():
            if claim_id not in left and (self.qdir / f"{claim_id}.dcm").exists():
                self.journal.finished(claim_id, outcome="quarantined", reason="recovered")
        return n

    def _start_watcher(self) -> Watcher:
        mode = self.config.watch.observer
        watcher = Watcher(self.inbox, mode, self.config.watch.poll_seconds, self._offer,
                          self._handler_error, self._new_dir, self._overflowed)
        try:
            watcher.start()
        except OSError as exc:
            if mode != "auto":
                raise
            self.log.warning("watch.fallback", observer="polling", errno=exc.errno)
            watcher = Watcher(self.inbox, "polling", self.config.watch.poll_seconds,
                              self._offer, self._handler_error, self._new_dir, self._overflowed)
            watcher.start()
        return watcher

    def _start_scheduler(self) -> BackgroundScheduler:
        sched = BackgroundScheduler(daemon=True)
        s = self.config.schedule
        sched.add_job(self._job_rescan, "interval", seconds=s.rescan_seconds, id="rescan",
                      next_run_time=datetime.now(), max_instances=1, coalesce=True)
        sched.add_job(self._job_heartbeat, "interval", seconds=s.heartbeat_seconds,
                      id="heartbeat", max_instances=1, coalesce=True)
        sched.add_job(self._guarded("retention", self._job_retention), "interval",
                      seconds=s.retention_seconds, id="retention", max_instances=1,
                      coalesce=True)
        sched.add_job(self._guarded("journal_maintenance", self._job_maintenance), "interval",
                      seconds=s.maintenance_seconds, id="journal_maintenance", max_instances=1,
                      coalesce=True)
        sched.start()
        return sched

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        for sig, handler in ((signal.SIGTERM, self._on_term), (signal.SIGINT, self._on_term),
                             (signal.SIGHUP, self._on_hup)):
            previous[sig] = signal.signal(sig, handler)
        return previous

    def _on_term(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop and signum == signal.SIGINT:
            self._force = True
        self._stop = True
        self.intake.wake()

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload = True
        self.intake.wake()

    # -- callbacks from other threads: they only record and wake ------------------------------
    def _offer(self, path: str, complete: bool) -> None:
        self.intake.offer(path, complete=complete)

    def _new_dir(self, path: str) -> None:
        self._rescan_requested = True
        self.intake.wake()

    def _overflowed(self) -> None:
        """The kernel dropped events: files may be waiting that no event announced."""
        self._overflow_seen = True
        self._rescan_requested = True
        self.intake.wake()

    def _handler_error(self, exc: BaseException) -> None:
        self.log.error("watch.handler_failed", exc_info=exc)

    def _thread_died(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread else "?"
        self.log.error("thread.crashed", thread=name, exc_type=args.exc_type.__name__)

    def _job_rescan(self) -> None:
        self._rescan_pending = False
        try:
            t0 = time.monotonic()
            seen = self.intake.rescan()
            self.log.info("inbox.rescan", files=seen, queue_depth=self.intake.depth(),
                          duration_ms=round((time.monotonic() - t0) * 1000, 1))
        except Exception as exc:  # a job failure is an event, never the end of the daemon
            self.log.error("job.failed", job="rescan", exc_info=exc)
        self.intake.wake()

    def _guarded(self, name: str, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception as exc:  # a job failure is an event, never the end of the daemon
                self.log.error("job.failed", job=name, exc_info=exc)
        return run

    def _job_retention(self) -> None:
        """Runs in the scheduler's thread: deletions only, nothing the main thread owns."""
        days = self.config.schedule.retention_days
        if days <= 0:
            return
        t0 = time.monotonic()
        purged = housekeeping.purge(self.config.paths.archive, self.qdir, days)
        self.log.info("retention.purged", archived=purged.archived,
                      quarantined=purged.quarantined, bytes=purged.bytes, older_than_days=days,
                      duration_ms=round((time.monotonic() - t0) * 1000, 1))

    def _job_maintenance(self) -> None:
        """Its own connection (SQLite connections stay in their thread); WAL lets the main
        thread keep writing; the checkpoint waits for readers about a second at most
        (`journal.CHECKPOINT_BUSY_MS`) and reports `checkpoint_busy` when they outlast it."""
        t0 = time.monotonic()
        journal = open_state(self.config)
        try:
            done = journal.maintain(self.config.schedule.journal_keep_days)
        finally:
            journal.close()
        self.log.info("journal.maintained", **done,
                      keep_days=self.config.schedule.journal_keep_days,
                      duration_ms=round((time.monotonic() - t0) * 1000, 1))

    def _start_metrics(self) -> None:
        settings = self.config.metrics
        if not settings.enabled:
            return
        from dcmwatch.metrics import Metrics  # noqa: PLC0415 - prometheus only when enabled

        def utilisation() -> float:
            return min(len(self._inflight), self.pool.size) / max(self.pool.size, 1)

        self.metrics = Metrics(queue_depth=self._queue_depth, utilisation=utilisation)
        try:
            port = self.metrics.serve(settings)
        except OSError as exc:  # port taken: run without metrics rather than not at all
            self.log.error("metrics.failed", address=settings.address, port=settings.port,
                           errno=exc.errno)
            self.metrics = None
            return
        self.log.info("metrics.started", address=settings.address, port=port)

    def _queue_depth(self) -> int:
        return self.intake.depth() + len(self._ready) + len(self._retry)

    def _check_space(self) -> None:
        """Back-pressure: claim nothing while the outbox or state disk is nearly full. Files
        wait in the inbox (the safest place for them); intake resumes by itself."""
        folders = {"outbox": self.outbox, "state": self.state}
        low = housekeeping.low_space(folders, self.config.limits.min_free_mb)
        if low is not None and self._paused is None:
            role, free = low
            self._paused = role
            self.log.warning("intake.paused", reason="disk_low", role=role,
                             folder=str(folders[role]),
                             free_mb=round(free, 1), min_free_mb=self.config.limits.min_free_mb)
        elif low is None and self._paused is not None:
            role, self._paused = self._paused, None
            self.log.info("intake.resumed", role=role,
                          free_mb=round(housekeeping.free_mb(folders[role]), 1))
            self.intake.wake()

    def _job_heartbeat(self) -> None:
        self._heartbeat_due = True
        self.intake.wake()

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        last_tick = 0.0
        while not self._stop:
            self._drain_done()
            self._drain_io()
            self._due_retries()
            self._fill()
            self._flush()
            now = time.monotonic()
            if now - last_tick >= _SETTLE_TICK:  # a stat per settling file: not on every wake
                last_tick = now
                self.intake.tick()
            if self._reload:
                self._reload = False
                self.supervision.reloading()
                try:
                    self._do_reload()
                except Exception as exc:  # a key file gone unreadable, say: keep the old config
                    self.log.error("config.reload_failed", message="the reload failed",
                                   exc_info=exc)
                self.supervision.reloaded()
            if self._heartbeat_due:
                self._heartbeat_due = False
                try:
                    self._heartbeat()
                except Exception as exc:  # the journal write, say: an event, not the end
                    self.log.error("job.failed", job="heartbeat", exc_info=exc)
            if now - self._space_checked >= _SPACE_TICK:
                self._space_checked = now
                try:
                    self._check_space()
                except Exception as exc:
                    self.log.error("job.failed", job="space_check", exc_info=exc)
            if self._overflow_seen:
                self._overflow_seen = False
                self.log.warning("watch.overflow", action="rescan")
            if self._rescan_requested or (
                self.intake.overflowed
                and self.intake.depth() < self.config.queue.max_pending // 2
            ):
                self._rescan_requested = False
                self.intake.overflowed = False
                self._rescan_pending = True
            if self._rescan_pending and now - self._rescan_kicked >= 1.0:
                # Kicked again until a scan *starts* after the request (the job clears the
                # flag): a request while a scan runs would otherwise be skipped by the
                # scheduler (max_instances=1), and files that arrived meanwhile would wait for
                # the next periodic rescan.
                self._rescan_kicked = now
                self.scheduler.modify_job("rescan", next_run_time=datetime.now())
            if not self.watcher.alive():
                self._restart_watcher()
            self.supervision.tick(self._snapshot, self.config.workers.stall_seconds)
            self.intake.wait(_TICK)

    def _snapshot(self) -> Snapshot:
        c = self.counters
        return Snapshot(
            queue=self._queue_depth(),
            # Outputs waiting on the disk are work in flight too: a hung outbox (an NFS fsync
            # that never returns) must read as wedged, not idle.
            inflight=len(self._inflight) + self._committing, completed=c.completed,
            processed=c.processed,
            quarantined=c.quarantined,
            # While draining, the observer is stopped on purpose.
            observer_alive=self._stop or self.watcher.alive(),
        )

    def _capacity(self) -> int:
        suspects = any(i.suspect for i in self._ready) or any(
            i.suspect for i in self._inflight.values()
        )
        return 1 if suspects else self.pool.size * self.config.workers.prefetch

    def _fill(self) -> None:
        if self._paused is not None:
            return
        while (len(self._inflight) < self._capacity() and not self._stop
               and self._committing < _MAX_COMMITTING):
            if self._ready:
                self._submit(self._ready.popleft())
                continue
            taken = self.intake.take_seen()
            if taken is None:
                return
            item = self._claim(taken[0])
            if item is not None:
                item.seen = taken[1]
                self._submit(item)

    def _claim(self, path: str) -> _InFlight | None:
        claim_id = self._reclaimed_id(path) or new_claim_id()
        work = self.work / f"{claim_id}.dcm"
        try:
            st = store.claim(Path(path), work)
        except FileNotFoundError:
            return None  # gone already (renamed away, claimed earlier, deleted)
        except OSError as exc:
            self.log.warning("file.claim_failed", errno=exc.errno)
            self.intake.watch(path, delay=self.config.watch.settle_seconds)
            return None
        self._claims.append((claim_id, st.st_size))
        self.log.info("file.received", claim_id=claim_id, bytes=st.st_size)
        return _InFlight(Task(str(work), claim_id, defer_sync=True), path, time.time(),
                         st.st_size, st.st_mtime_ns)

    def _submit(self, item: _InFlight) -> None:
        try:
            fut = self.pool.submit(item.task)
        except BrokenProcessPool:
            self._pool_broken()
            fut = self.pool.submit(item.task)
        self._inflight[fut] = item
        fut.add_done_callback(self._on_done)

    def _on_done(self, fut: Future[Outcome]) -> None:
        self._done.append(fut)
        self.intake.wake()

    def _drain_done(self) -> None:
        crashed: list[_InFlight] = []
        while self._done:
            fut = self._done.popleft()
            item = self._inflight.pop(fut, None)
            if item is None:
                continue
            self.counters.completed += 1
            try:
                outcome = fut.result()
            except (BrokenProcessPool, CancelledError):
                crashed.append(item)
                continue
            except BaseException as exc:  # pickling or pool failure: treat like a crash
                if isinstance(exc, FATAL):
                    raise
                self.log.error("worker.failed", claim_id=item.task.claim_id, exc_info=exc)
                crashed.append(item)
                continue
            self._finish_safely(item, outcome)
        if crashed:
            self._pool_broken()
            self._crashed(crashed)

    def _pool_broken(self) -> None:
        self.log.error("worker.pool_broken", restarts=self.pool.restarts + 1)
        self.pool.replace()

    def _crashed(self, items: list[_InFlight]) -> None:
        """A worker died. With several files in flight the culprit is unknown: each is retried
        alone (`suspect`). A file that kills its worker while alone counts an attempt, and is
        quarantined after `max_attempts`, so a poison file cannot loop and its neighbours are
        never blamed for it."""
        if len(items) > 1 or not items[0].suspect:
            for item in items:
                item.suspect = True
                self.log.warning("file.retry", claim_id=item.task.claim_id,
                                 reason="worker_crashed", attempt=0)
            self._ready.extendleft(reversed(items))
            return
        item = items[0]
        attempts = self.journal.attempt(item.task.claim_id)
        if attempts >= self.config.workers.max_attempts:
            outcome = Outcome(claim_id=item.task.claim_id, status="quarantine",
                              reason="worker_crashed",
                              message=f"the worker died {attempts} times on this file")
            self._quarantine(item, outcome)
        else:
            self.log.warning("file.retry", claim_id=item.task.claim_id, reason="worker_crashed",
                             attempt=attempts)
            self._ready.appendleft(item)

    # -- outcomes ------------------------------------------------------------------------------
    def _finish(self, item: _InFlight, outcome: Outcome) -> None:
        if outcome.findings:  # the burned-in text guard's boxes: the worker cannot log
            self.log.warning("ocr.finding", claim_id=item.task.claim_id,
                             policy=self.config.ocr.policy, count=len(outcome.findings),
                             findings=[f.as_dict() for f in outcome.findings])
            redacted = redaction_record(outcome.findings)
            if redacted is not None and outcome.status == "processed":
                self.log.info("ocr.redacted", claim_id=item.task.claim_id, **redacted)
        if outcome.stream is not None and outcome.stream.changed:
            self.log.info("pixels.stream_cleaned", claim_id=item.task.claim_id,
                          **outcome.stream.as_dict())
        if outcome.status == "processed":
            if outcome.reid:
                # Before the input can go (once its output is durable and journaled): a crash
                # after that would lose the pairs with the input. Idempotent if redone.
                self.journal.record_reid(outcome.reid)
            # Logged and kept: the second pass, after the commit, must not repeat them.
            outcome = replace(outcome, findings=(), reid=(), stream=None)
        if outcome.status == "processed" and outcome.pending is not None:
            self._committing += 1
            fut = self._io.submit(self._commit, item, outcome)
            fut.add_done_callback(functools.partial(self._on_io, self._committed, item,
                                                    outcome))
        elif outcome.status == "processed":
            self._processed(item, outcome)
        elif outcome.status == "transient":
            self._transient(item, outcome)
        elif outcome.reason in ("truncated", "empty") and self._still_being_written(item):
            self._give_back(item, outcome)
        else:
            self._quarantine(item, outcome)

    def _commit(self, item: _InFlight, outcome: Outcome) -> None:
        """In an I/O thread: make the output durable (fsync, rename, fsync folder). The input
        stays until the main thread has journaled the outcome (`_processed`): a kill in between
        then redoes the file, which writes the same bytes to the same name."""
        assert outcome.pending is not None
        tmp, dest = outcome.pending
        store.commit(Path(tmp), Path(dest))

    def _on_io(self, handler: _IoHandler, item: _InFlight, outcome: Outcome,
               fut: Future[None]) -> None:
        """In an I/O thread: hand the result to the main thread."""
        self._io_done.append((handler, item, outcome, fut.exception()))
        self.intake.wake()

    def _drain_io(self) -> None:
        while self._io_done:
            handler, item, outcome, exc = self._io_done.popleft()
            self._committing -= 1
            self.counters.completed += 1  # progress for the liveness check
            handler(item, outcome, exc)

    def _committed(self, item: _InFlight, outcome: Outcome, exc: BaseException | None) -> None:
        if exc is None:
            self._finish_safely(item, replace(outcome, pending=None))
            return
        reason = exc.reason if isinstance(exc, DcmwatchError) else "output"
        message = str(exc) if isinstance(exc, DcmwatchError) else "commit failed"
        self._transient(item, Outcome(claim_id=item.task.claim_id, status="transient",
                                      reason=reason, message=message))

    def _finish_safely(self, item: _InFlight, outcome: Outcome) -> None:
        try:
            self._finish(item, outcome)
        except Exception as exc:  # disk trouble while settling: never the end of the daemon
            self._settle_failed(item, exc)

    def _settle_failed(self, item: _InFlight, exc: BaseException) -> None:
        """Settling a file failed (its quarantine, its input's removal): the input stays and
        the file is done again later."""
        self.log.error("file.finish_failed", claim_id=item.task.claim_id, exc_info=exc)
        self._transient(item, Outcome(claim_id=item.task.claim_id, status="transient",
                                      reason="finish_failed",
                                      message="settling the outcome failed"))

    def _processed(self, item: _InFlight, outcome: Outcome) -> None:
        """Its output is durable: journaled at the end of this turn, then its input goes."""
        self._settled.append((item, outcome))

    def _flush(self) -> None:
        """Journal this turn's claims and processed files in one transaction, then remove the
        processed files' inputs (in the I/O threads: an unlink waits on the filesystem's
        journal, behind the outputs' fsyncs).

        Journal first: a kill between the two leaves the work file, which is processed again
        (same bytes, same path) and journaled again; the other order could leave a row that
        says "claimed" for a file that is done. A claim's row may come after its rename: a kill
        in between leaves a work file with no row, which recovery processes like any other.
        """
        if not self._claims and not self._settled:
            return
        claims, self._claims = self._claims, []
        settled, self._settled = self._settled, []
        self.journal.record(claims, [
            (item.task.claim_id, o.output, o.sha256_in, o.bytes_in, o.duration_ms)
            for item, o in settled])
        for item, outcome in settled:
            if self._io_open:
                self._committing += 1
                fut = self._io.submit(self._release_input, item)
                fut.add_done_callback(functools.partial(self._on_io, self._released, item,
                                                        outcome))
                continue
            try:  # stopping: the I/O threads are gone
                self._release_input(item)
            except Exception as exc:
                self._released(item, outcome, exc)
            else:
                self._released(item, outcome, None)

    def _release_input(self, item: _InFlight) -> None:
        """In an I/O thread: the input of a processed file goes (or to the archive)."""
        work = Path(item.task.path)
        if self.config.output.on_success == "archive":
            self._archive(work, item.task.claim_id)
        else:
            store.remove(work)

    def _released(self, item: _InFlight, outcome: Outcome, exc: BaseException | None) -> None:
        if exc is not None:
            self._settle_failed(item, exc)
            return
        self.counters.processed += 1
        self.counters.since_beat_processed += 1
        latency = (time.monotonic() - item.seen) * 1000 if item.seen is not None else None
        if self.metrics is not None:
            self.metrics.processed(latency / 1000 if latency is not None else None)
        self.log.info(
            "file.processed", claim_id=item.task.claim_id, output=outcome.output,
            bytes=outcome.bytes_in, bytes_out=outcome.bytes_out,
            duration_ms=outcome.duration_ms,
            latency_ms=round(latency, 1) if latency is not None else None,
            worker=outcome.worker, rules=list(outcome.rules),
        )

    def _archive(self, work: Path, claim_id: str) -> None:
        archive = self.config.paths.archive or (self.state / "archive")
        folder = archive / time.strftime("%Y%m%d", time.gmtime())
        store.ensure_dir(folder)
        store.move_durable(work, folder / f"{claim_id}.dcm", tag=claim_id,
                           mode=self.config.output.file_mode)

    def _still_being_written(self, item: _InFlight) -> bool:
        """Truncated, but written to within the settle window: its writer may come back."""
        if item.origin is None:
            return False
        age = item.claimed_wall - item.mtime_ns / 1e9
        return age < self.config.watch.settle_seconds

    def _reclaimed_id(self, path: str) -> str | None:
        """A file given back (still being written) keeps its claim id: one id for its whole
        life. Only the same file, though: another one dropped under its name gets its own."""
        given = self._given_back.pop(path, None)
        if given is None:
            return None
        claim_id, inode = given
        try:
            return claim_id if os.lstat(path).st_ino == inode else None
        except OSError:
            return None

    def _give_back(self, item: _InFlight, outcome: Outcome) -> None:
        assert item.origin is not None
        inode = None
        with contextlib.suppress(OSError):  # the same inode will be back under its inbox name
            st = os.lstat(item.task.path)
            inode = st.st_ino
            self.intake.hold(item.origin, st, delay=self.config.watch.settle_seconds)
        if store.unclaim(Path(item.task.path), Path(item.origin)):
            self.journal.finished(item.task.claim_id, outcome="returned", reason=outcome.reason)
            if inode is not None:
                self._remember_given_back(item.origin, item.task.claim_id, inode)
            self.counters.deferred += 1
            self.log.info("file.deferred", claim_id=item.task.claim_id, reason=outcome.reason,
                          retry_in_s=self.config.watch.settle_seconds)
        else:  # its name was taken by a new file meanwhile: this part can only be quarantined
            self._quarantine(item, outcome)

    def _remember_given_back(self, origin: str, claim_id: str, inode: int) -> None:
        """Bounded: a file given back and then removed by its writer must not be kept forever."""
        self._given_back[origin] = (claim_id, inode)
        while len(self._given_back) > self.config.queue.max_pending:
            del self._given_back[next(iter(self._given_back))]

    def _transient(self, item: _InFlight, outcome: Outcome) -> None:
        self._seq += 1
        self.counters.retried += 1
        attempt = self.journal.attempt(item.task.claim_id)
        delay = min(2.0 ** attempt, 300.0)
        heapq.heappush(self._retry, (time.monotonic() + delay, self._seq, item))
        self.log.warning("file.retry", claim_id=item.task.claim_id, reason=outcome.reason,
                         message=outcome.message, attempt=attempt, retry_in_s=delay)

    def _due_retries(self) -> None:
        now = time.monotonic()
        while self._retry and self._retry[0][0] <= now:
            _, _, item = heapq.heappop(self._retry)
            self._ready.append(item)

    def _quarantine(self, item: _InFlight, outcome: Outcome) -> None:
        sidecar = {
            "event": "file.quarantined",
            "claim_id": item.task.claim_id,
            "reason": outcome.reason,
            "message": outcome.message,
            "bytes": item.size,
            "quarantined_at": datetime.now().astimezone().isoformat(timespec="seconds"),
            "dcmwatch_version": __version__,
        }
        if outcome.findings:
            sidecar["ocr_findings"] = [f.as_dict() for f in outcome.findings]
        try:
            store.quarantine(Path(item.task.path), self.qdir, item.task.claim_id, sidecar,
                             mode=self.config.output.file_mode)
        except (DcmwatchError, OSError) as exc:
            # Cannot even quarantine (disk full?): keep the work file and try again later.
            reason = exc.reason if isinstance(exc, DcmwatchError) else "quarantine_failed"
            self._transient(item, Outcome(claim_id=item.task.claim_id, status="transient",
                                          reason=reason, message="cannot quarantine the file"))
            return
        self.journal.finished(item.task.claim_id, outcome="quarantined", reason=outcome.reason,
                              size=item.size, duration_ms=outcome.duration_ms)
        self.counters.quarantined += 1
        self.counters.since_beat_quarantined += 1
        if self.metrics is not None:
            self.metrics.quarantined(outcome.reason)
        self.log.warning("file.quarantined", claim_id=item.task.claim_id, reason=outcome.reason,
                         message=outcome.message, bytes=item.size)

    # -- housekeeping ----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        c = self.counters
        now = time.monotonic()
        minutes = max((now - c.last_beat) / 60.0, 1e-9)
        depth = self._queue_depth()
        fields: dict[str, Any] = dict(
            queue_depth=depth, inflight=len(self._inflight) + self._committing,
            processed=c.processed, quarantined=c.quarantined, failed=c.quarantined,
            deferred=c.deferred,
            retried=c.retried,
            processed_per_min=round(c.since_beat_processed / minutes, 1),
            quarantined_per_min=round(c.since_beat_quarantined / minutes, 1),
            dropped_events=self.intake.dropped, observer_alive=self.watcher.alive(),
            **self._heartbeat_extra(),
        )
        self.log.info("heartbeat", **fields)
        self.journal.heartbeat(depth, c.processed, c.quarantined, fields)
        c.since_beat_processed = c.since_beat_quarantined = 0
        c.last_beat = now

    def _heartbeat_extra(self) -> dict[str, Any]:
        """How far behind and how close to full: the oldest waiting file, free space."""
        oldest = self.intake.oldest_age()
        now = time.time()
        for item in (*self._ready, *(i for _, _, i in self._retry)):
            oldest = max(oldest, now - item.claimed_wall)
        out: dict[str, Any] = {"oldest_queued_s": round(oldest, 1),
                               "intake_paused": self._paused is not None}
        for role, folder in (("outbox", self.outbox), ("state", self.state)):
            try:
                out[f"{role}_free_mb"] = round(housekeeping.free_mb(folder), 1)
            except OSError:
                out[f"{role}_free_mb"] = None
        return out

    def _restart_watcher(self) -> None:
        self.log.warning("watch.restarted", inbox_exists=self.inbox.is_dir())
        self.watcher.stop(timeout=1.0)
        try:
            store.ensure_dir(self.inbox)
            self.watcher = self._start_watcher()
        except OSError as exc:
            self.log.error("watch.start_failed", errno=exc.errno)
            time.sleep(1.0)
            return
        self._rescan_requested = True

    def _do_reload(self) -> None:
        source = None if self.config.source.startswith("<") else self.config.source
        try:
            new = config_mod.load(source)
            key = keys.resolve(new.deid, self.env, create=True)
            new = new.with_secret(key.key)
        except DcmwatchError as exc:
            self.log.error("config.reload_failed", message=str(exc))
            return
        fixed = config_mod.diff_requires_restart(self.config, new)
        if fixed:
            self.log.error("config.reload_failed", message="these sections need a restart",
                           sections=fixed)
            return
        old, self.config = self.config, new
        self.journal.restrict(mode=new.output.file_mode, reid_map=new.deid.reid_map)
        self.pool.replace(new)
        self._reschedule(old, new)
        self._space_checked = 0.0  # a new min_free_mb applies now
        self.log.info("config.reloaded", source=new.source)

    def _reschedule(self, old: Config, new: Config) -> None:
        """New `[schedule]` intervals apply now (the next run one new interval from now); the
        day counts are read by the jobs themselves at every run."""
        for job_id, key in _INTERVAL_JOBS:
            seconds = getattr(new.schedule, key)
            if seconds != getattr(old.schedule, key):
                self.scheduler.reschedule_job(job_id, trigger="interval", seconds=seconds)
                self.log.info("schedule.changed", job=job_id, seconds=seconds)

    def _shutdown(self) -> None:
        self.supervision.stopping()
        self.log.info("daemon.stopping", inflight=len(self._inflight),
                      queue_depth=self.intake.depth())
        with contextlib.suppress(Exception):
            self.scheduler.shutdown(wait=False)
        if self.metrics is not None:
            with contextlib.suppress(Exception):
                self.metrics.close()
        self.watcher.stop()
        # Claimed but not started: give them back to the inbox, untouched.
        for fut, item in list(self._inflight.items()):
            if fut.cancel():
                self._inflight.pop(fut)
                self._return_unstarted(item)
        for item in self._ready:
            self._return_unstarted(item)
        self._ready.clear()
        deadline = time.monotonic() + 60.0
        while ((self._inflight or self._committing) and not self._force
               and time.monotonic() < deadline):
            self._drain_done()
            self.supervision.tick(self._snapshot, self.config.workers.stall_seconds)
            self._drain_io()
            self._flush()
            self.intake.wait(_TICK)
        self._drain_done()
        self._io.shutdown(wait=not self._force)
        self._io_open = False
        self._drain_io()
        self._flush()
        self.pool.shutdown(wait=not self._force)
        self.journal.close()
        self.supervision.close()
        self.log.info("daemon.stopped", processed=self.counters.processed,
                      quarantined=self.counters.quarantined, left_inflight=len(self._inflight))

    def _return_unstarted(self, item: _InFlight) -> None:
        if item.origin is None or not store.unclaim(Path(item.task.path), Path(item.origin)):
            return  # stays in the work area; the next start processes it first
        self.journal.finished(item.task.claim_id, outcome="returned", reason="shutdown")

