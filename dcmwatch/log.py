"""Logging setup: the one piece of global state dcmwatch has.

Events, not prose: every line is one JSON object with a stable dotted `event` name and numbers as
fields, so journald keeps it whole and monitoring can query it. Two rules keep PHI out:

* callers log identifiers we made (claim ids, pseudonymous output paths, counts), never tag
  values or input file names;
* exceptions are rendered as their class and the code locations only. Library exception
  messages (pydicom's embed element values) and frame locals (datasets!) are never rendered.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO

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


def configure(fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog once per process (the daemon, the CLI, each worker)."""
    out = stream if stream is not None else sys.stdout
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if console
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            safe_exception,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries log through stdlib logging; their records may quote element values, so only
    # warnings and above pass, and as a fixed event without their message.
    root = logging.getLogger()
    root.handlers[:] = [_StdlibBridge()]
    root.setLevel(logging.WARNING)
    logging.captureWarnings(True)


class _StdlibBridge(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        structlog.get_logger().warning(
            "library.warning", library=record.name.split(".")[0], level_no=record.levelno
        )


def get(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound)
