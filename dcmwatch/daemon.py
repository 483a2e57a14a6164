"""The daemon: a lifecycle around the file engine — signals, the inbox watcher, the schedule,
reloads, systemd notification, back-pressure and metrics.

A file's life is the engine's (`dcmwatch.engine`): the inbox intake claims it by renaming it
into the work area, a worker process computes its output into a hidden temporary file, and the
settle stage makes the output durable, journals it and only then removes the input. Outputs are
deterministic (keyed pseudonyms, no clock), so a file processed twice after a `kill -9` writes
the same bytes to the same path; a restart processes whatever is left in the work area first.

One main thread makes every decision; the observer, the scheduler, the workers and the I/O
threads only offer paths, compute or wait on the disk, and wake it. A signal handler only sets a
flag.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from dcmwatch import __version__, housekeeping, keys
from dcmwatch import config as config_mod
from dcmwatch.config import Config
from dcmwatch.engine import admission
from dcmwatch.engine.core import Engine
from dcmwatch.engine.counts import Counts
from dcmwatch.engine.executors import PoolExecutor
from dcmwatch.engine.inbox import InboxIntake
from dcmwatch.engine.isolation import Isolation
from dcmwatch.engine.ledger import StateLedger
from dcmwatch.engine.settle import Settle
from dcmwatch.errors import DcmwatchError
from dcmwatch.inbox_watch import InboxWatch
from dcmwatch.journal import FILENAME as JOURNAL_FILE
from dcmwatch.journal import open_journal
from dcmwatch.log import get as get_logger
from dcmwatch.schedule import Schedule
from dcmwatch.supervision import Snapshot, Supervision

if TYPE_CHECKING:
    from dcmwatch.metrics import Metrics

_TICK = 0.05
_SETTLE_TICK = 0.1
_SPACE_TICK = 1.0  # free-space checks for back-pressure: a statvfs per folder per second
#: How long a stopping daemon waits for files in flight before it leaves them to the next start.
_DRAIN_S = 60.0


class Daemon:
    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self.config = config
        self.env = env
        self.log = get_logger()
        self._stop = self._force = self._reload = self._heartbeat_due = False
        #: Set while intake is paused for lack of disk space: the folder role that is short.
        self._paused: str | None = None
        self._space_checked = 0.0
        self._beat = (time.monotonic(), 0, 0)  # (when, processed, quarantined) at the last one
        self.metrics: Metrics | None = None
        self.intake = InboxIntake(config, self.log)
        self.queue = self.intake.queue

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        os.umask(0o027)
        self.supervision = Supervision(self.env, self.log)
        self.intake.prepare_folders()
        journal, corrupt = open_journal(self.config.paths.state / JOURNAL_FILE,
                                        mode=self.config.output.file_mode,
                                        reid_map=self.config.deid.reid_map)
        if corrupt is not None:
            self.log.error("journal.corrupt", action="moved aside, new journal", moved_to=corrupt)
        self.journal = journal
        self.engine = self._engine(StateLedger(journal))
        recovered = self.intake.recover(journal)
        previous = self._install_signals()
        threading.excepthook = self._thread_died
        self.watcher = InboxWatch(self.config, self.queue, self.log)
        self.schedule = Schedule(self.config, self.queue, self.log, self._heartbeat_job)
        self.schedule.start()
        self._start_metrics()
        pool = self.executor.pool
        self.log.info(
            "daemon.started", version=__version__, pid=os.getpid(), workers=pool.size,
            observer=self.watcher.kind, recovered=recovered,
            memory_budget_mb=(self.engine.budget or 0) >> 20,
            startup_ms=round((time.monotonic() - started) * 1000, 1),
        )
        self.supervision.ready(self._snapshot())
        try:
            self._check_space()  # before the first claim, not a second later
            self._loop()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _engine(self, ledger: StateLedger) -> Engine:
        self.executor = PoolExecutor(self.config, self.queue.wake)  # workers start now
        self.intake.ledger_claimed = ledger.claimed
        self.counts = Counts()
        settle = Settle(self.config, self.intake, ledger, self.log, self.counts, self.queue.wake)
        isolation = Isolation(self.config.workers.max_attempts, ledger.attempt, self.log,
                              self.counts)
        return Engine(self.executor, self.intake, settle, isolation, self.log,
                      window=self._window(self.config),
                      budget=admission.budget_bytes(self.config))

    @staticmethod
    def _window(config: Config) -> int:
        return config.workers.count * config.workers.prefetch

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        for sig, handler in ((signal.SIGTERM, self._on_term), (signal.SIGINT, self._on_term),
                             (signal.SIGHUP, self._on_hup)):
            previous[sig] = signal.signal(sig, handler)
        return previous

    # -- callbacks from other threads and signals: they only record and wake -------------------
    def _on_term(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop and signum == signal.SIGINT:
            self._force = True
        self._stop = True
        self.queue.wake()

    def _on_hup(self, _signum: int, _frame: FrameType | None) -> None:
        self._reload = True
        self.queue.wake()

    def _thread_died(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread else "?"
        self.log.error("thread.crashed", thread=name, exc_type=args.exc_type.__name__)

    def _heartbeat_job(self) -> None:
        self._heartbeat_due = True
        self.queue.wake()

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        last_tick = 0.0
        while not self._stop:
            self.engine.paused = self._paused is not None
            self.engine.pump()
            now = time.monotonic()
            if now - last_tick >= _SETTLE_TICK:  # a stat per settling file: not on every wake
                last_tick = now
                self.queue.tick()
            if self._reload:
                self._reload = False
                self.supervision.reloading()
                self._guard("reload", self._do_reload)
                self.supervision.reloaded()
            if self._heartbeat_due:
                self._heartbeat_due = False
                self._guard("heartbeat", self._heartbeat)
            if now - self._space_checked >= _SPACE_TICK:
                self._space_checked = now
                self._guard("space_check", self._check_space)
            self.watcher.check(self.schedule, now)
            self.supervision.tick(self._snapshot, self.config.workers.stall_seconds)
            self.queue.wait(_TICK)

    def _guard(self, job: str, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:  # a journal write, a key file gone: an event, not the end
            event = "config.reload_failed" if job == "reload" else "job.failed"
            self.log.error(event, job=job, exc_info=exc)

    def _snapshot(self) -> Snapshot:
        c, e = self.counts, self.engine
        return Snapshot(
            queue=self._queue_depth(),
            # Outputs waiting on the disk are work in flight too: a hung outbox (an NFS fsync
            # that never returns) must read as wedged, not idle.
            inflight=e.running_files + e.settle.busy, completed=e.completed + e.settle.completed,
            processed=c.processed, quarantined=c.quarantined,
            # While draining, the observer is stopped on purpose.
            observer_alive=self._stop or self.watcher.alive(),
        )

    def _queue_depth(self) -> int:
        return self.intake.depth() + self.engine.waiting

    # -- back-pressure, heartbeat, metrics -----------------------------------------------------
    def _check_space(self) -> None:
        """Claim nothing while the outbox or state disk is nearly full. Files wait in the inbox
        (the safest place for them); intake resumes by itself."""
        folders = {"outbox": self.config.paths.outbox, "state": self.config.paths.state}
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
            self.queue.wake()

    def _heartbeat(self) -> None:
        c = self.counts
        now = time.monotonic()
        then, processed, quarantined = self._beat
        minutes = max((now - then) / 60.0, 1e-9)
        depth = self._queue_depth()
        oldest = self.queue.oldest_age()
        claimed = self.engine.oldest_claim()
        if claimed is not None:
            oldest = max(oldest, time.time() - claimed)
        fields: dict[str, Any] = {
            "queue_depth": depth, "inflight": self._snapshot().inflight,
            "processed": c.processed, "quarantined": c.quarantined, "failed": c.failed,
            "deferred": c.deferred, "retried": c.retried,
            "processed_per_min": round((c.processed - processed) / minutes, 1),
            "quarantined_per_min": round((c.quarantined - quarantined) / minutes, 1),
            "dropped_events": self.queue.dropped, "observer_alive": self.watcher.alive(),
            "oldest_queued_s": round(oldest, 1), "intake_paused": self._paused is not None,
        }
        for role, folder in (("outbox", self.config.paths.outbox),
                             ("state", self.config.paths.state)):
            try:
                fields[f"{role}_free_mb"] = round(housekeeping.free_mb(folder), 1)
            except OSError:
                fields[f"{role}_free_mb"] = None
        self.log.info("heartbeat", **fields)
        self.journal.heartbeat(depth, c.processed, c.quarantined, fields)
        self._beat = (now, c.processed, c.quarantined)

    def _start_metrics(self) -> None:
        settings = self.config.metrics
        if not settings.enabled:
            return
        from dcmwatch.metrics import Metrics  # noqa: PLC0415 - prometheus only when enabled

        pool = self.executor.pool

        def utilisation() -> float:
            return min(self.engine.running_files, pool.size) / max(pool.size, 1)

        metrics = Metrics(queue_depth=self._queue_depth, utilisation=utilisation)
        try:
            port = metrics.serve(settings)
        except OSError as exc:  # port taken: run without metrics rather than not at all
            self.log.error("metrics.failed", address=settings.address, port=settings.port,
                           errno=exc.errno)
            return
        self.metrics = self.engine.settle.metrics = metrics
        self.log.info("metrics.started", address=settings.address, port=port)

    # -- reload and shutdown ---------------------------------------------------------------------
    def _do_reload(self) -> None:
        source = None if self.config.source.startswith("<") else self.config.source
        try:
            new = config_mod.load(source)
            new = new.with_secret(keys.resolve(new.deid, self.env, create=True).key)
        except DcmwatchError as exc:
            self.log.error("config.reload_failed", message=str(exc))
            return
        fixed = config_mod.diff_requires_restart(self.config, new)
        if fixed:
            self.log.error("config.reload_failed", message="these sections need a restart",
                           sections=fixed)
            return
        self.config = new
        for part in (self.intake, self.engine.settle, self.watcher):
            part.config = new
        self.journal.restrict(mode=new.output.file_mode, reid_map=new.deid.reid_map)
        self.executor.reconfigure(new)
        self.engine.window = self._window(new)
        self.engine.budget = admission.budget_bytes(new)
        self.schedule.reconfigure(new)
        self._space_checked = 0.0  # a new min_free_mb applies now
        self.log.info("config.reloaded", source=new.source)

    def _shutdown(self) -> None:
        self.supervision.stopping()
        engine = self.engine
        self.log.info("daemon.stopping", inflight=engine.running_files,
                      queue_depth=self.queue.depth())
        with contextlib.suppress(Exception):
            self.schedule.shutdown()
        if self.metrics is not None:
            with contextlib.suppress(Exception):
                self.metrics.close()
        self.watcher.stop()
        # Claimed but not started: back to the inbox, untouched.
        for entry in engine.take_unstarted():
            if self.intake.return_unstarted(entry):
                self.journal.finished(entry.item.claim_id, outcome="returned", reason="shutdown")
        deadline = time.monotonic() + _DRAIN_S
        while ((engine.inflight or engine.settle.busy) and not self._force
               and time.monotonic() < deadline):
            engine.pump()
            self.supervision.tick(self._snapshot, self.config.workers.stall_seconds)
            self.queue.wait(_TICK)
        engine.settle.close(wait=not self._force)
        engine.pump()
        self.executor.close(wait=not self._force)
        self.journal.close()
        self.supervision.close()
        self.log.info("daemon.stopped", processed=self.counts.processed,
                      quarantined=self.counts.quarantined, left_inflight=engine.running_files)
