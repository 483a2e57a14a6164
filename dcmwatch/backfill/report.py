"""What an operator sees during a backfill: a progress bar on a terminal, JSON events otherwise.

Either way the run ends with one `process.finished` event carrying counts per outcome and the
run's throughput. Events carry identities we made (keyed digests, pseudonymous output keys) and
numbers, never an input's path.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Tally:
    processed: int = 0
    quarantined: int = 0
    failed: int = 0
    #: Inputs the journal already marked done (a rerun or `--resume`).
    skipped: int = 0
    bytes_in: int = 0
    batches: int = 0
    splits: int = 0

    @property
    def files(self) -> int:
        return self.processed + self.quarantined + self.failed


class Reporter:
    """Progress for humans (rich) or `backfill.progress` events every `every` seconds."""

    def __init__(self, log: Any, *, bar: bool, count: Callable[[], Iterator[str]] | None = None,
                 every: float = 10.0) -> None:
        self._log = log
        self._every = every
        self._started = time.monotonic()
        self._last = self._started
        self._bar: Any = None
        self._task: Any = None
        if bar:
            self._start_bar(count)

    def _start_bar(self, count: Callable[[], Iterator[str]] | None) -> None:
        from rich.console import Console  # noqa: PLC0415 - only on a terminal
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[quarantined]}"),
            TimeRemainingColumn(), console=Console(stderr=True), redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._bar.add_task("de-identifying", total=None, rate="",
                                        quarantined="")
        self._bar.start()
        if count is not None:  # the total, for the ETA: a second lazy listing, off-thread
            def run() -> None:
                total = sum(1 for _ in count())
                if self._bar is not None:
                    self._bar.update(self._task, total=total)

            threading.Thread(target=run, name="dcmwatch-count", daemon=True).start()

    def update(self, tally: Tally) -> None:
        now = time.monotonic()
        if self._bar is not None:
            seconds = max(now - self._started, 1e-9)
            self._bar.update(
                self._task, completed=tally.files + tally.skipped,
                rate=f"{tally.files / seconds:.0f} files/s "
                     f"{tally.bytes_in / seconds / 1e6:.1f} MB/s",
                quarantined=f"{tally.quarantined} quarantined" if tally.quarantined else "",
            )
        elif now - self._last >= self._every:
            self._last = now
            self._log.info("backfill.progress", **self.numbers(tally))

    def numbers(self, tally: Tally) -> dict[str, Any]:
        seconds = time.monotonic() - self._started
        return {
            "files": tally.files, **asdict(tally),
            "duration_ms": round(seconds * 1000, 1),
            "files_per_s": round(tally.files / seconds, 1) if seconds > 0 else None,
            "mb_per_s": round(tally.bytes_in / seconds / 1e6, 2) if seconds > 0 else None,
        }

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def want_bar() -> bool:
    return sys.stderr.isatty()
