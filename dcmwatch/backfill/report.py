"""What an operator sees during a backfill: on a terminal what rich and tqdm tools show (a
progress bar, warnings as readable lines above it, a summary table at the end), JSON events
otherwise.

Either way the run ends with one `process.finished` event carrying counts per outcome and the
run's throughput. Events carry identities we made (keyed digests, pseudonymous output keys) and
numbers, never an input's path.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from dcmwatch.engine.counts import Counts


class Reporter:
    """Progress for humans (rich) or `backfill.progress` events every `every` seconds."""

    def __init__(self, log: Any, *, bar: bool, count: Callable[[], Iterator[str]] | None = None,
                 every: float = 10.0) -> None:
        self._log = log
        self._every = every
        self._started = time.monotonic()
        self._last = self._started
        self._bar: Any = None
        self._console: Any = None
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

        self._console = Console(stderr=True)
        self._bar = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[quarantined]}"),
            TimeRemainingColumn(), console=self._console, redirect_stdout=False,
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

    def update(self, tally: Counts) -> None:
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

    def numbers(self, tally: Counts) -> dict[str, Any]:
        seconds = time.monotonic() - self._started
        data = asdict(tally)
        data["quarantine_reasons"] = dict(sorted(tally.quarantine_reasons.items()))
        return {
            "files": tally.files, **data,
            "duration_ms": round(seconds * 1000, 1),
            "files_per_s": round(tally.files / seconds, 1) if seconds > 0 else None,
            "mb_per_s": round(tally.bytes_in / seconds / 1e6, 2) if seconds > 0 else None,
        }

    def show(self, line: str) -> None:
        """A log line for the person at the terminal, printed above the bar (or, once the bar
        is gone, below the summary: a run that aborts after it must still say why)."""
        console = self._bar.console if self._bar is not None else self._console
        if console is not None:
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    def close(self, tally: Counts | None = None) -> None:
        """Stop the bar; with the final `tally`, leave a summary table where it was."""
        if self._bar is None:
            return
        bar, self._bar = self._bar, None
        bar.stop()
        if tally is not None:
            bar.console.print(summary_table(self.numbers(tally)))


def summary_table(numbers: dict[str, Any]) -> Any:
    from rich.table import Table  # noqa: PLC0415 - only on a terminal

    table = Table(title="dcmwatch process", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("processed", str(numbers["processed"]))
    table.add_row("quarantined", str(numbers["quarantined"]))
    for reason, n in sorted(numbers["quarantine_reasons"].items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"  {reason}", str(n))
    table.add_row("failed", str(numbers["failed"]))
    if numbers["skipped"]:
        table.add_row("skipped (done before)", str(numbers["skipped"]))
    rate = numbers["files_per_s"]
    table.add_row("files/s", f"{rate:.1f}" if rate is not None else "-")
    table.add_row("seconds", f"{numbers['duration_ms'] / 1000:.1f}")
    return table


def want_bar() -> bool:
    return sys.stderr.isatty()
