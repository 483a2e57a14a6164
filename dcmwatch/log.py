"""Logging setup: the one piece of global state dcmwatch has.

Events, not prose: every line is one JSON object with a stable dotted `event` name and numbers as
fields, so journald keeps it whole and monitoring can query it. Two rules keep PHI out:

* callers log identifiers we made (claim ids, pseudonymous output paths, counts), never tag
  values or input file names;
* exceptions are rendered as their class and the code locations only. Library exception
  messages (pydicom's embed element values) and frame locals (datasets!) are never rendered.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def safe_exception(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace `exc_info` with the exception's class and frames: no message, no locals."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if exc_info and exc_info[0] is not None:
        event_dict["exc_type"] = exc_info[0].__name__
        frames = traceback.extract_tb(exc_info[2]) if exc_info[2] else []
        event_dict["exc_frames"] = [f"{f.filename}:{f.lineno}:{f.name}" for f in frames[-8:]]
    return event_dict


#: Fields every line of this process carries (`run`, `component`): set by `configure`.
_fields: dict[str, str] = {}
#: The log file `configure` opened last: closed when logging is configured again.
_open_file: ReopeningFile | None = None


def new_run_id() -> str:
    """Random, so it says nothing about who ran what on which files."""
    return secrets.token_hex(6)


def fields() -> dict[str, str]:
    return dict(_fields)


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None, *,
              file: Path | None = None, stdout: bool = True,
              stamp: Mapping[str, str] | None = None,
              human: Callable[[str], None] | None = None) -> None:
    """Configure structlog once per process (the daemon, the CLI).

    With a `file`, every line is JSON (a file is for machines) and goes to the file, and to
    stdout too unless `stdout` is false. Raises OSError when the file cannot be opened.
    `stamp`: fields added to every line (which run of which command wrote it). `human`: warnings
    and errors also go there as one readable line each (a progress display prints them above
    its bar); JSON then goes to stdout only when it is not a terminal, where it would be glued
    into the bar.
    """
    global _open_file  # noqa: PLW0603 - logging is the one global (see the module docstring)
    out = stream if stream is not None else sys.stdout
    quiet = human is not None and out.isatty()
    console = (human is None and file is None
               and (fmt == "console" or (fmt == "auto" and out.isatty())))
    renderer: Any = (
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    _fields.clear()
    _fields.update(stamp or {})
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        safe_exception,
    ]
    if _fields:
        processors.append(_Stamp(dict(_fields)))
    if human is not None:
        processors.append(HumanLines(human))
    processors.append(renderer)
    if _open_file is not None:
        _open_file.close()
        _open_file = None
    sink: Any = _Discard() if quiet else out
    if file is not None:
        _open_file = ReopeningFile(file)
        sink = _Lines(_open_file, out if stdout and not quiet else None)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=(structlog.PrintLoggerFactory(sink) if file is None
                        else structlog.WriteLoggerFactory(cast(TextIO, sink))),
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging; their records may quote element values, so only
    # warnings and above pass, and as a fixed event without their message.
    root = logging.getLogger()
    root.handlers[:] = [_StdlibBridge()]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)


class _Stamp:
    def __init__(self, stamp: dict[str, str]) -> None:
        self.stamp = stamp

    def __call__(self, _logger: Any, _method: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.update(self.stamp)
        return event_dict


#: Left out of the readable line: long (OCR boxes, frames) or the same on every line.
_NOT_FOR_HUMANS = frozenset({"event", "level", "timestamp", "findings", "exc_frames", "run",
                             "component"})


class HumanLines:
    """Warnings and errors, also as one readable line each for a person at a terminal
    (`HH:MM:SS level event key=value ...`); the event goes on unchanged to the JSON renderer."""

    def __init__(self, write: Callable[[str], None], level: str = "warning") -> None:
        self.write = write
        self.level = _LEVELS[level]

    def __call__(self, _logger: Any, method: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if _LEVELS.get(str(event_dict.get("level", method)), logging.ERROR) >= self.level:
            self.write(human_line(event_dict))
        return event_dict


def human_line(event_dict: Mapping[str, Any]) -> str:
    when = str(event_dict.get("timestamp", ""))[11:19]
    rest = " ".join(f"{k}={v}" for k, v in event_dict.items()
                    if k not in _NOT_FOR_HUMANS and v is not None)
    return f"{when} {event_dict.get('level', ''):<7} {event_dict.get('event')}  {rest}".rstrip()


class _Discard:
    def write(self, line: str) -> int:
        return len(line)

    def flush(self) -> None:
        return None


class ReopeningFile:
    """An append-only log file that follows logrotate.

    Before each line, the path is compared (device, inode) with the open file, as
    logging.handlers.WatchedFileHandler does: once logrotate renamed or removed it, the next line
    goes to a new file at the configured path. No signal and no `copytruncate` needed. Lines are
    written with one `write` on an O_APPEND descriptor, so they are never interleaved.
    """

    def __init__(self, path: Path, mode: int = 0o640) -> None:
        self.path = path
        self.mode = mode
        self._lock = threading.Lock()
        self._fd = -1
        self._id = (0, 0)
        #: True from a failed write until one succeeds again: one stderr line per stretch.
        self._failing = False
        self._open()

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.path, flags, self.mode)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise IsADirectoryError(f"not a regular file: {self.path}")
        if stat.S_IMODE(st.st_mode) != self.mode and st.st_uid == os.geteuid():
            os.fchmod(fd, self.mode)  # umask may have narrowed it, or an old file is wider
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._id = fd, (st.st_dev, st.st_ino)

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._id

    def write_line(self, line: str) -> None:
        """Never raises: a log call sits in the daemon's main loop and its error handlers, so a
        full or unwritable log disk must cost log lines (said once on stderr), not the daemon."""
        data = line.encode("utf-8", "replace")
        with self._lock:
            reopened = True
            try:
                if self._rotated():
                    self._open()
            except OSError as exc:  # keep writing to the file still open, if any
                self._failed(exc)
                reopened = False
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view):]
            except OSError as exc:
                self._failed(exc)
                return
            if reopened:
                self._failing = False

    def _failed(self, exc: OSError) -> None:
        if self._failing:
            return
        self._failing = True
        name = errno.errorcode.get(exc.errno or 0, "unknown")
        with contextlib.suppress(Exception):
            sys.stderr.write(f"dcmwatch: log file {self.path}: cannot write ({name}); "
                             "lines are lost until it works again\n")

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class _Lines:
    """What structlog's WriteLogger writes to: each line to the file, and to stdout."""

    def __init__(self, file: ReopeningFile, stdout: TextIO | None) -> None:
        self.file = file
        self.stdout = stdout

    def write(self, line: str) -> int:
        self.file.write_line(line)
        if self.stdout is not None:
            self.stdout.write(line)
        return len(line)

    def flush(self) -> None:
        if self.stdout is not None:
            self.stdout.flush()


class _StdlibBridge(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        structlog.get_logger().warning(
            "library.warning", library=record.name.split(".")[0], level_no=record.levelno
        )


def get(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound)
