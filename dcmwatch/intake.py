"""Which inbox paths are ready to be claimed, in what order, each at most once at a time.

Events from the kernel are hints and the folder is the truth: a path may be offered any number of
times (events, rescans, retries) and is queued once. Completeness follows the hint: a
close-after-write or a rename into the inbox is complete now; anything else (a creation without
a close, a polling observer's change, a file a rescan found still warm) must first keep its size
and mtime for `settle_seconds`.

Thread-safe: the observer thread and the scheduler offer, the daemon's main thread takes.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class NameFilter:
    """Names (not paths) that are not taken until renamed: dot files, *.part, *.tmp …"""

    patterns: tuple[str, ...]

    def ignored(self, path: str) -> bool:
        name = os.path.basename(path)
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


@dataclass(slots=True)
class _Settling:
    size: int
    mtime_ns: int
    due: float
    #: When the path was first offered (monotonic): the start of its drop-to-output latency.
    seen: float
    #: Given back by the daemon (still being written): only settling releases it, not an event.
    held: bool = False


class Intake:
    def __init__(self, inbox: Path, *, settle_seconds: float, max_pending: int,
                 names: NameFilter, clock: Clock = time.monotonic) -> None:
        self.inbox = inbox
        self.settle = settle_seconds
        self.max_pending = max_pending
        self.names = names
        self.clock = clock
        self._lock = threading.Lock()
        #: path -> when it was first offered (monotonic), for the latency of each file.
        self._pending: OrderedDict[str, float] = OrderedDict()
        self._settling: dict[str, _Settling] = {}
        self._wakeup = threading.Event()
        #: Set when a path was dropped because the queue was full; the daemon rescans later.
        self.overflowed = False
        self.dropped = 0

    # -- offering (any thread) -------------------------------------------------------------
    def offer(self, path: str, *, complete: bool) -> None:
        if not self._acceptable(path):
            return
        if complete:
            with self._lock:
                settling = self._settling.get(path)
            if settling is not None and settling.held:
                return  # the rename back into the inbox was ours: its writer may not be done
            self._enqueue(path)
        else:
            self.watch(path, delay=self.settle)

    def hold(self, path: str, st: os.stat_result, *, delay: float) -> None:
        """The daemon gives `path` (whose inode `st` describes) back to the inbox: take it only
        once it has not changed for `delay` seconds, whatever events its return causes."""
        now = self.clock()
        with self._lock:
            old = self._settling.get(path)
            seen = old.seen if old is not None else now
            self._settling[path] = _Settling(st.st_size, st.st_mtime_ns, now + delay, seen,
                                             held=True)

    def watch(self, path: str, *, delay: float) -> None:
        """Take `path` once it has not changed for `delay` seconds (and has settled)."""
        if not self._acceptable(path):
            return
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        now = self.clock()
        with self._lock:
            if path in self._pending:
                return
            old = self._settling.get(path)
            seen = old.seen if old is not None else now
            held = old.held if old is not None else False
            self._settling[path] = _Settling(st.st_size, st.st_mtime_ns, now + delay, seen, held)

    def _acceptable(self, path: str) -> bool:
        if self.names.ignored(path):
            return False
        rel = os.path.relpath(path, self.inbox)
        if rel.startswith(".."):
            return False
        # A file inside a hidden folder (ours: .dcmwatch-work; rsync's .~tmp~) is not taken.
        return not any(part.startswith(".") for part in Path(rel).parts[:-1])

    def _enqueue(self, path: str) -> None:
        now = self.clock()
        with self._lock:
            settling = self._settling.pop(path, None)
            if path in self._pending:
                return
            if len(self._pending) >= self.max_pending:
                self.overflowed = True
                self.dropped += 1
                return
            self._pending[path] = settling.seen if settling is not None else now
        self._wakeup.set()

    # -- the daemon's side ----------------------------------------------------------------
    def take(self) -> str | None:
        taken = self.take_seen()
        return taken[0] if taken is not None else None

    def take_seen(self) -> tuple[str, float] | None:
        """The oldest queued path and when it was first offered (`clock` time)."""
        with self._lock:
            if not self._pending:
                return None
            return self._pending.popitem(last=False)

    def depth(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._settling)

    def oldest_age(self) -> float:
        """Seconds the longest-waiting queued path has waited (0 when none): falling behind."""
        with self._lock:
            if not self._pending:
                return 0.0
            first = next(iter(self._pending.values()))
        return max(self.clock() - first, 0.0)

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def tick(self) -> None:
        """Move settled files to the queue. Called by the daemon a few times a second."""
        now = self.clock()
        with self._lock:
            due = [(p, s) for p, s in self._settling.items() if s.due <= now]
        for path, seen in due:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                with self._lock:
                    self._settling.pop(path, None)
                continue
            if (st.st_size, st.st_mtime_ns) == (seen.size, seen.mtime_ns):
                self._enqueue(path)
            else:
                with self._lock:
                    self._settling[path] = _Settling(st.st_size, st.st_mtime_ns,
                                                     now + self.settle, seen.seen, seen.held)

    def wait(self, timeout: float) -> None:
        self._wakeup.wait(timeout)
        self._wakeup.clear()

    def wake(self) -> None:
        self._wakeup.set()

    # -- rescans ---------------------------------------------------------------------------
    def rescan(self, *, wall_clock: Callable[[], float] = time.time) -> int:
        """Offer the inbox's files; warm ones settle first. Returns how many were seen.

        Incremental: the walk stops once `max_pending` paths are queued or settling, and sets
        `overflowed`, so the daemon rescans when the queue has drained to half. Twenty thousand
        waiting files cost a bounded queue and a short walk, never a list of all of them.
        """
        seen = 0
        self.overflowed = False
        horizon_ns = int((wall_clock() - self.settle) * 1e9)
        for path, st in walk(str(self.inbox)):
            if self.depth() >= self.max_pending:
                self.overflowed = True
                break
            seen += 1
            if self.names.ignored(path):
                continue
            if st.st_mtime_ns <= horizon_ns or not stat.S_ISREG(st.st_mode):
                self._enqueue(path)
            else:
                self.watch(path, delay=self.settle)
        return seen


def walk(top: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every non-directory entry below `top`, hidden folders skipped, links never followed."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            it = os.scandir(folder)
        except OSError:
            continue
        with it:  # lazily: a stopped walk never lists the rest of a huge folder
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if not entry.name.startswith("."):
                        stack.append(entry.path)
                    continue
                yield entry.path, st
