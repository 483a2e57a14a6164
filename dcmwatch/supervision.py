"""What the daemon tells its supervisor (systemd), and the liveness check behind `WATCHDOG=1`.

A watchdog ping proves something only if it comes from a check, not from a timer (a timer thread
keeps pinging while every worker is wedged). So the daemon's main thread calls `Supervision.tick`
on every turn of its loop with a snapshot of what it owns; the ping is sent only while

* the observer thread is alive (watchdog's dispatch thread can die silently), and
* the workers make progress: nothing is in flight, or a file finished within `stall_seconds`.

And since the ticks come from the main loop, a wedged main loop stops the pings too. When the
check fails the pings stop and `watchdog.unhealthy` is logged once, naming the failing check;
`watchdog.healthy` is logged when it passes again. systemd restarts the service after
`WatchdogSec=` without a ping.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dcmwatch.notify import Notifier, watchdog_interval

Clock = Callable[[], float]

#: How often STATUS= is refreshed (only sent when its text changed).
STATUS_SECONDS = 2.0
#: How often the liveness check runs (the main loop turns far more often when busy).
CHECK_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The daemon's state at one turn of its loop: numbers only."""

    queue: int
    inflight: int
    #: Futures the workers finished (any outcome, crashes included): the progress counter.
    completed: int
    processed: int
    quarantined: int
    observer_alive: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    #: The failing check ("observer", "workers"), empty when healthy.
    check: str = ""
    #: Seconds since the workers last finished a file while busy.
    stalled_s: float = 0.0


class Liveness:
    """Pure: snapshots and a clock in, a verdict out."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._completed = -1
        self._progress_at = clock()

    def check(self, snap: Snapshot, stall_seconds: float) -> Verdict:
        now = self._clock()
        if snap.inflight == 0 or snap.completed != self._completed:
            # Idle, or something finished since the last look: the workers are fine.
            self._progress_at = now
            self._completed = snap.completed
        stalled = now - self._progress_at
        if not snap.observer_alive:
            return Verdict(healthy=False, check="observer", stalled_s=stalled)
        if stalled > stall_seconds:
            return Verdict(healthy=False, check="workers", stalled_s=stalled)
        return Verdict(healthy=True, stalled_s=stalled)


def status_text(snap: Snapshot, verdict: Verdict) -> str:
    """For `systemctl status`: short, human, numbers only."""
    text = (f"queue {snap.queue}, in flight {snap.inflight}, processed {snap.processed}, "
            f"quarantined {snap.quarantined}")
    if not verdict.healthy:
        text = f"UNHEALTHY ({verdict.check}): {text}"
    return text


class Supervision:
    """The daemon's link to systemd: READY/RELOADING/STOPPING, STATUS, gated WATCHDOG pings."""

    def __init__(self, env: Mapping[str, str], log: Any, *, pid: int | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.log = log
        self.notifier = Notifier(env, on_error=self._notify_failed)
        self.interval = watchdog_interval(env, os.getpid() if pid is None else pid)
        self.liveness = Liveness(clock)
        self._check_every = (
            CHECK_SECONDS if self.interval is None else min(CHECK_SECONDS, self.interval / 2)
        )
        self._clock = clock
        self._last_ping = float("-inf")
        self._last_check = float("-inf")
        self._last_status_at = float("-inf")
        self._last_status = ""
        self.healthy = True
        self.pings = 0

    def _notify_failed(self, exc: OSError) -> None:
        self.log.warning("notify.failed", errno=exc.errno)

    def ready(self, snap: Snapshot) -> None:
        """The observer runs and the start-up scan is queued: systemd may start dependants."""
        text = status_text(snap, Verdict(healthy=True))
        self.notifier.ready(text)
        self._last_status, self._last_status_at = text, self._clock()
        if self.notifier.enabled:
            self.log.info("notify.ready", watchdog_s=self.interval)

    def reloading(self) -> None:
        self.notifier.reloading()

    def reloaded(self) -> None:
        self.notifier.ready()

    def stopping(self) -> None:
        self.notifier.stopping()

    def tick(self, snapshot: Callable[[], Snapshot], stall_seconds: float) -> None:
        """Called on every turn of the main loop; looks at most every `CHECK_SECONDS`."""
        now = self._clock()
        if now - self._last_check < self._check_every:
            return
        self._last_check = now
        snap = snapshot()
        verdict = self.liveness.check(snap, stall_seconds)
        if verdict.healthy != self.healthy:
            self.healthy = verdict.healthy
            if verdict.healthy:
                self.log.info("watchdog.healthy")
            else:
                self.log.error("watchdog.unhealthy", check=verdict.check,
                               stalled_s=round(verdict.stalled_s, 1), inflight=snap.inflight,
                               queue_depth=snap.queue)
        if now - self._last_status_at >= STATUS_SECONDS:
            self._last_status_at = now
            text = status_text(snap, verdict)
            if text != self._last_status and self.notifier.status(text):
                self._last_status = text
        if verdict.healthy and self.interval is not None and now - self._last_ping >= self.interval:
            self._last_ping = now
            if self.notifier.watchdog():
                self.pings += 1

    def close(self) -> None:
        self.notifier.close()
