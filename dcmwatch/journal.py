"""The state database: one row per input, in SQLite (WAL), owned by the daemon's main thread.

The folders are the truth about what still has to be done (inbox, work area); the journal is the
record of what was done: content hash, outcome, output path, timings. It is what idempotency
checks, `dcmwatch status` and audits read. It never holds an input's file name or a tag value.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from dcmwatch.errors import DcmwatchError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    claim_id     TEXT PRIMARY KEY,
    claimed_at   REAL NOT NULL,
    finished_at  REAL,
    size         INTEGER,
    sha256       TEXT,
    outcome      TEXT NOT NULL,          -- claimed | processed | quarantined | returned
    reason       TEXT,
    output       TEXT,
    duration_ms  REAL,
    attempts     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
CREATE INDEX IF NOT EXISTS files_finished ON files (finished_at);
CREATE TABLE IF NOT EXISTS heartbeats (at REAL NOT NULL, queue_depth INTEGER, processed INTEGER,
                                       quarantined INTEGER);
"""


class JournalError(DcmwatchError):
    """The state database cannot be used (another process holds it): the daemon refuses to
    start rather than run without a record."""

    reason = "journal"


def open_journal(path: Path) -> tuple[Journal, str | None]:
    """Open the journal; a corrupt one is moved aside and a new one started.

    The folders are the truth about what is left to do, the journal only the record of what was
    done: losing the record is better than refusing to process files, and the old file is kept
    for an audit. Returns the journal and the name the corrupt file was moved to (or None).
    A database locked by another process is refused (`JournalError`): two daemons on one state
    folder would claim the same files.
    """
    try:
        return Journal(path), None
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise JournalError(f"{path}: the state database is locked by another process") from None
        raise JournalError(f"{path}: the state database cannot be opened") from None
    except sqlite3.DatabaseError:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            src = path.with_name(path.name + suffix)
            if src.exists():
                os.replace(src, aside.with_name(aside.name + suffix))
        return Journal(path), aside.name


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _guarded(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """A database still locked after SQLite's busy timeout (10 s) or failing underneath us is a
    `JournalError`, which stops the daemon with `daemon.failed` (exit 3) instead of a traceback;
    the folders keep every file, and a restart resumes exactly once."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            raise JournalError(f"the state database failed ({type(exc).__name__})") from None

    return wrapper


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        try:
            self._init()
        except BaseException:
            self._db.close()
            raise

    def _init(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def close(self) -> None:
        self._db.close()

    @_guarded
    def claimed(self, claim_id: str, size: int) -> None:
        self._db.execute(
            "INSERT INTO files(claim_id, claimed_at, size, outcome) VALUES(?, ?, ?, 'claimed') "
            "ON CONFLICT(claim_id) DO NOTHING",
            (claim_id, time.time(), size),
        )

    @_guarded
    def attempt(self, claim_id: str) -> int:
        """Count one more attempt (a worker picked it up); returns the new count."""
        cur = self._db.execute(
            "INSERT INTO files(claim_id, claimed_at, outcome, attempts) VALUES(?, ?, 'claimed', 1) "
            "ON CONFLICT(claim_id) DO UPDATE SET attempts = attempts + 1 RETURNING attempts",
            (claim_id, time.time()),
        )
        row = cur.fetchone()
        return int(row[0]) if row else 1

    @_guarded
    def finished(self, claim_id: str, *, outcome: str, reason: str | None = None,
                 output: str | None = None, sha256: str | None = None,
                 size: int | None = None, duration_ms: float | None = None) -> None:
        self._db.execute(
            "INSERT INTO files(claim_id, claimed_at, outcome) VALUES(?, ?, ?) "
            "ON CONFLICT(claim_id) DO UPDATE SET outcome=excluded.outcome",
            (claim_id, time.time(), outcome),
        )
        self._db.execute(
            "UPDATE files SET finished_at=?, outcome=?, reason=?, output=?, sha256=?, "
            "size=COALESCE(?, size), duration_ms=? WHERE claim_id=?",
            (time.time(), outcome, reason, output, sha256, size, duration_ms, claim_id),
        )

    @_guarded
    def unfinished(self) -> list[str]:
        """Claims with no outcome yet: work in progress when the daemon last stopped."""
        rows = self._db.execute("SELECT claim_id FROM files WHERE outcome = 'claimed'")
        return [str(r[0]) for r in rows]

    @_guarded
    def heartbeat(self, queue_depth: int, processed: int, quarantined: int) -> None:
        self._db.execute(
            "INSERT INTO heartbeats(at, queue_depth, processed, quarantined) VALUES(?,?,?,?)",
            (time.time(), queue_depth, processed, quarantined),
        )
