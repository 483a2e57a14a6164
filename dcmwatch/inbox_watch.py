"""The inbox's observer as the daemon runs it: started with a fallback to polling, restarted
when it dies, and a rescan asked for whenever events may have been lost.

Callbacks run in the observer's thread and only record and wake; `check` runs in the daemon's
main thread once a turn and acts on what they recorded.
"""

from __future__ import annotations

import time
from typing import Any

from dcmwatch import store
from dcmwatch.config import Config
from dcmwatch.intake import Intake
from dcmwatch.schedule import Schedule
from dcmwatch.watcher import Watcher


class InboxWatch:
    def __init__(self, config: Config, queue: Intake, log: Any) -> None:
        self.config = config
        self.queue = queue
        self.log = log
        self._rescan_requested = False
        self._overflow_seen = False
        self.watcher = self._start()

    @property
    def kind(self) -> str:
        return self.watcher.kind

    def alive(self) -> bool:
        return self.watcher.alive()

    def stop(self) -> None:
        self.watcher.stop()

    def _start(self) -> Watcher:
        mode = self.config.watch.observer
        try:
            return self._watcher(mode)
        except OSError as exc:
            if mode != "auto":
                raise
            self.log.warning("watch.fallback", observer="polling", errno=exc.errno)
            return self._watcher("polling")

    def _watcher(self, mode: str) -> Watcher:
        watcher = Watcher(self.config.paths.inbox, mode, self.config.watch.poll_seconds,
                          self._offer, self._handler_error, self._new_dir, self._overflowed)
        watcher.start()
        return watcher

    # -- in the observer's thread: record and wake ---------------------------------------------
    def _offer(self, path: str, complete: bool) -> None:
        self.queue.offer(path, complete=complete)

    def _new_dir(self, _path: str) -> None:
        self._rescan_requested = True
        self.queue.wake()

    def _overflowed(self) -> None:
        """The kernel dropped events: files may be waiting that no event announced."""
        self._overflow_seen = self._rescan_requested = True
        self.queue.wake()

    def _handler_error(self, exc: BaseException) -> None:
        self.log.error("watch.handler_failed", exc_info=exc)

    # -- in the main thread ----------------------------------------------------------------------
    def check(self, schedule: Schedule, now: float) -> None:
        """Rescan when events were lost or a folder appeared; restart a dead observer."""
        if self._overflow_seen:
            self._overflow_seen = False
            self.log.warning("watch.overflow", action="rescan")
        if self._rescan_requested or (
            self.queue.overflowed and self.queue.depth() < self.config.queue.max_pending // 2
        ):
            self._rescan_requested = False
            self.queue.overflowed = False
            schedule.rescan_pending = True
        schedule.kick_rescan(now)
        if not self.watcher.alive():
            self._restart()

    def _restart(self) -> None:
        inbox = self.config.paths.inbox
        self.log.warning("watch.restarted", inbox_exists=inbox.is_dir())
        self.watcher.stop(timeout=1.0)
        try:
            store.ensure_dir(inbox)
            self.watcher = self._start()
        except OSError as exc:
            self.log.error("watch.start_failed", errno=exc.errno)
            time.sleep(1.0)
            return
        self._rescan_requested = True
