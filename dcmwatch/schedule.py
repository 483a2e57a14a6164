"""The daemon's periodic jobs on APScheduler: inbox rescans, heartbeats, retention and journal
maintenance.

Jobs run in the scheduler's thread and touch nothing the main thread owns: a rescan offers paths
to the thread-safe intake queue, retention deletes old files, maintenance opens its own SQLite
connection, and a heartbeat only raises a flag for the main thread. A job's failure is an event,
never the end of the daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from dcmwatch import housekeeping
from dcmwatch.config import Config
from dcmwatch.intake import Intake
from dcmwatch.journal import open_state

#: The interval jobs and the `[schedule]` key of each: a reload reschedules them.
INTERVAL_JOBS = (("rescan", "rescan_seconds"), ("heartbeat", "heartbeat_seconds"),
                 ("retention", "retention_seconds"),
                 ("journal_maintenance", "maintenance_seconds"))


class Schedule:
    def __init__(self, config: Config, queue: Intake, log: Any,
                 heartbeat: Callable[[], None]) -> None:
        self.config = config
        self.queue = queue
        self.log = log
        #: Set when a rescan was asked for and has not started yet.
        self.rescan_pending = False
        self._kicked = 0.0
        self._scheduler = BackgroundScheduler(daemon=True)
        jobs: dict[str, Callable[[], None]] = {
            "rescan": self._rescan, "heartbeat": heartbeat,
            "retention": self._guarded("retention", self._retention),
            "journal_maintenance": self._guarded("journal_maintenance", self._maintenance),
        }
        for job_id, key in INTERVAL_JOBS:
            first = {"next_run_time": datetime.now()} if job_id == "rescan" else {}
            self._scheduler.add_job(jobs[job_id], "interval",
                                    seconds=getattr(config.schedule, key), id=job_id,
                                    max_instances=1, coalesce=True, **first)

    def start(self) -> None:
        # The start-up scan runs here and feeds the queue as it walks: READY does not wait
        # for it, however many files are waiting.
        self._scheduler.start()

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=False)

    def kick_rescan(self, now: float) -> None:
        """Run a rescan now. Kicked again (once a second) until one *starts* after the request:
        a request while a scan runs would otherwise be skipped (max_instances=1), and files
        that arrived meanwhile would wait for the next periodic rescan."""
        if self.rescan_pending and now - self._kicked >= 1.0:
            self._kicked = now
            self._scheduler.modify_job("rescan", next_run_time=datetime.now())

    def reconfigure(self, new: Config) -> None:
        """New intervals apply now (the next run one new interval from now); the day counts
        are read by the jobs at every run."""
        old, self.config = self.config, new
        for job_id, key in INTERVAL_JOBS:
            seconds = getattr(new.schedule, key)
            if seconds != getattr(old.schedule, key):
                self._scheduler.reschedule_job(job_id, trigger="interval", seconds=seconds)
                self.log.info("schedule.changed", job=job_id, seconds=seconds)

    def _guarded(self, name: str, job: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception as exc:
                self.log.error("job.failed", job=name, exc_info=exc)
        return run

    def _rescan(self) -> None:
        self.rescan_pending = False
        try:
            t0 = time.monotonic()
            seen = self.queue.rescan()
            self.log.info("inbox.rescan", files=seen, queue_depth=self.queue.depth(),
                          duration_ms=round((time.monotonic() - t0) * 1000, 1))
        except Exception as exc:
            self.log.error("job.failed", job="rescan", exc_info=exc)
        self.queue.wake()

    def _retention(self) -> None:
        days = self.config.schedule.retention_days
        if days <= 0:
            return
        t0 = time.monotonic()
        purged = housekeeping.purge(self.config.paths.archive, self.config.paths.quarantine,
                                    days)
        self.log.info("retention.purged", archived=purged.archived,
                      quarantined=purged.quarantined, bytes=purged.bytes, older_than_days=days,
                      duration_ms=round((time.monotonic() - t0) * 1000, 1))

    def _maintenance(self) -> None:
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
