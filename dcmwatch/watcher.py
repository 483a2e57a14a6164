"""watchdog behind one small adapter: filesystem events in, `Intake.offer` calls out.

Two traps shape it (see pitfalls.md): an exception escaping a handler silently kills watchdog's
dispatch thread, so the handler catches everything; and the polling observer stops when its
folder raises `OSError`, so `alive()` is checked by the daemon, which restarts the observer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

Offer = Callable[[str, bool], None]
OnError = Callable[[BaseException], None]


class _Handler(FileSystemEventHandler):
    def __init__(self, offer: Offer, on_error: OnError, on_new_dir: Callable[[str], None]) -> None:
        self._offer = offer
        self._on_error = on_error
        self._on_new_dir = on_new_dir

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._dispatch(event)
        except BaseException as exc:
            self._on_error(exc)

    def _dispatch(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileClosedEvent):  # close after write (inotify only)
            self._offer(_s(event.src_path), True)
        elif isinstance(event, FileMovedEvent):  # renamed into (or within) the inbox
            if event.dest_path:  # empty: renamed out of the inbox (full inotify events)
                self._offer(_s(event.dest_path), True)
        elif isinstance(event, (FileCreatedEvent, FileModifiedEvent)):
            # No close event may follow (hard link, NFS, a writer that keeps it open): settle.
            self._offer(_s(event.src_path), False)
        elif isinstance(event, (DirCreatedEvent, DirMovedEvent)):
            # A folder moved in whole carries files no event will ever announce.
            path = event.dest_path if isinstance(event, DirMovedEvent) else event.src_path
            if path:
                self._on_new_dir(_s(path))


#: The events `_Handler` acts on. Filtered in watchdog's emitter thread, so the rest (a
#: directory-modified event beside every file event, deletions) never reach the dispatch
#: thread: half the thread hand-offs per file. The inotify mask follows from it.
EVENTS: tuple[type[FileSystemEvent], ...] = (
    FileClosedEvent, FileMovedEvent, FileCreatedEvent, FileModifiedEvent, DirCreatedEvent,
    DirMovedEvent,
)


def _s(path: Any) -> str:
    return os.fsdecode(path)


#: How long watchdog holds an IN_MOVED_FROM to pair it with its IN_MOVED_TO. Both arrive in the
#: same read from the kernel, so pairing needs microseconds; watchdog's 0.5 s default blocks its
#: FIFO, and every claim (a rename out of the inbox) delayed the next arrival by up to 0.5 s.
MOVE_PAIRING_SECONDS = 0.005


def _native() -> Any:
    """inotify with *full* events where available: a file renamed into the inbox from a folder
    outside it (an MTA's or storescp's temporary folder) then arrives as a move, complete at
    once; plain watchdog reports it as a creation, which would make it wait `settle_seconds`."""
    try:
        from watchdog.observers.inotify import InotifyObserver  # noqa: PLC0415 - Linux only
    except (ImportError, OSError, AttributeError):
        return Observer()
    _shorten_move_pairing()
    return InotifyObserver(generate_full_events=True)


def _shorten_move_pairing() -> None:
    """watchdog has no parameter for the pairing delay, only a class attribute read when a watch
    is created; this process's only watchdog user is this module."""
    try:
        from watchdog.observers import (  # noqa: PLC0415
            inotify_move_event_grouper as grouper,
        )
    except ImportError:  # an older watchdog: its default stays
        return
    grouper.InotifyMoveEventGrouper.delay = MOVE_PAIRING_SECONDS
#: watchdog rebuilds its watches after an inotify queue overflow but tells no handler; its
#: warning on this logger is the only sign that events (files) were lost.
_INOTIFY_LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")


class _OverflowSpotter(logging.Handler):
    def __init__(self, on_overflow: Callable[[], None]) -> None:
        super().__init__(logging.WARNING)
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Inotify queue overflowed"):
            self._on_overflow()


class Watcher:
    def __init__(self, inbox: Path, mode: str, poll_seconds: float, offer: Offer,
                 on_error: OnError, on_new_dir: Callable[[str], None],
                 on_overflow: Callable[[], None] | None = None) -> None:
        self.inbox = inbox
        self._spotter = _OverflowSpotter(on_overflow) if on_overflow is not None else None
        self.mode = mode
        self.poll_seconds = poll_seconds
        self._handler = _Handler(offer, on_error, on_new_dir)
        self._observer: Any = None
        self.kind = ""

    def start(self) -> None:
        if self.mode == "polling":
            observer: Any = PollingObserver(timeout=self.poll_seconds)
            self.kind = "polling"
        else:
            observer = _native()
            self.kind = type(observer).__name__.replace("Observer", "").lower() or "native"
        observer.daemon = True
        if self._spotter is not None:
            for name in _INOTIFY_LOGGERS:
                logging.getLogger(name).addHandler(self._spotter)
        observer.schedule(self._handler, str(self.inbox), recursive=True,
                          event_filter=list(EVENTS))
        observer.start()
        self._observer = observer

    def alive(self) -> bool:
        return self._observer is not None and bool(self._observer.is_alive())

    def stop(self, timeout: float = 5.0) -> None:
        obs, self._observer = self._observer, None
        if self._spotter is not None:
            for name in _INOTIFY_LOGGERS:
                logging.getLogger(name).removeHandler(self._spotter)
        if obs is None:
            return
        obs.stop()
        obs.join(timeout)
