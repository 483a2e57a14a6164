"""The state database: one row per input, in SQLite (WAL), owned by the daemon's main thread.

The folders are the truth about what still has to be done (inbox, work area); the journal is the
record of what was done: content hash, outcome, output path, timings. It is what idempotency
checks, `dcmwatch status` and audits read. It never holds an input's file name or a tag value,
with one opt-in exception: the `reid` table of the re-identification map (`[deid] reid_map`),
written only when that is on. The file is never wider than `[output] file_mode` & 0660, and
owner-only (0600) whenever the map is on: an existing file is narrowed when it is opened.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from dcmwatch.errors import DcmwatchError

if TYPE_CHECKING:
    from dcmwatch.config import Config

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    claim_id     TEXT PRIMARY KEY,
    claimed_at   REAL NOT NULL,
    finished_at  REAL,
    size         INTEGER,
    sha256       TEXT,
    outcome      TEXT NOT NULL,          -- claimed | processed | quarantined | returned | requeued
    reason       TEXT,
    output       TEXT,
    duration_ms  REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    requeued_at  REAL                    -- set by `dcmwatch requeue`; the outcome stays
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
CREATE INDEX IF NOT EXISTS files_finished ON files (finished_at);
CREATE TABLE IF NOT EXISTS reid (
    pseudonym    TEXT NOT NULL,
    kind         TEXT NOT NULL,          -- PatientID | PatientName | StudyInstanceUID | ...
    original     TEXT NOT NULL,
    first_seen   REAL NOT NULL,
    PRIMARY KEY (pseudonym, kind, original)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heartbeats (at REAL NOT NULL, queue_depth INTEGER, processed INTEGER,
                                       quarantined INTEGER);
"""


#: Rows deleted per transaction by `Journal.maintain` (a few milliseconds of write lock).
PRUNE_BATCH = 2000

#: How long the maintenance checkpoint waits for readers (`status`, a sqlite3 shell) before it
#: gives up until next time. TRUNCATE holds the write lock while it waits: the main thread's
#: writes stall for as long, and fail after their own busy timeout (`BUSY_TIMEOUT_S`).
CHECKPOINT_BUSY_MS = 1000
BUSY_TIMEOUT_S = 10.0

#: The state database's file name inside `[paths] state`.
FILENAME = "journal.sqlite3"


def mode_for(file_mode: int, reid_map: bool) -> int:
    """The widest mode the state database may have: owner-only with the re-identification map
    (originals of every patient: not for the group that may read outputs), else the output
    mode without execute or world bits."""
    return 0o600 if reid_map else file_mode & 0o660


def _create(path: Path, mode: int) -> None:
    """Create the database file with `mode`, or narrow an existing one to it. SQLite gives the
    -wal and -shm files it creates the main file's permissions."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        os.close(fd)
    narrow(path, mode)


def narrow(path: Path, mode: int) -> None:
    """Take from the database file and its -wal/-shm every permission bit `mode` lacks: a
    journal made before the map was switched on, or by an older version, may be wider. Narrow
    only, never widen: a map switched off again leaves its rows behind.

    By path, never by opening the files: closing any descriptor of a database file drops every
    POSIX lock this process holds on it, the main thread's connection's included."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        current = stat.S_IMODE(st.st_mode)
        if stat.S_ISREG(st.st_mode) and current & ~mode and st.st_uid == os.geteuid():
            os.chmod(p, current & mode)  # a link is skipped above; the folder is the service's


class JournalError(DcmwatchError):
    """The state database cannot be used (another process holds it): the daemon refuses to
    start rather than run without a record."""

    reason = "journal"


def open_journal(path: Path, *, mode: int = 0o600,
                 reid_map: bool = False) -> tuple[Journal, str | None]:
    """Open the journal; a corrupt one is moved aside and a new one started.

    The folders are the truth about what is left to do, the journal only the record of what was
    done: losing the record is better than refusing to process files, and the old file is kept
    for an audit. Returns the journal and the name the corrupt file was moved to (or None).
    A database locked by another process is refused (`JournalError`): two daemons on one state
    folder would claim the same files.
    """
    try:
        return Journal(path, mode=mode, reid_map=reid_map), None
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
        return Journal(path, mode=mode, reid_map=reid_map), aside.name


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


#: A file given back to the inbox (`returned`) keeps its claim id: claimed again, it is in work.
_CLAIMED = ("INSERT INTO files(claim_id, claimed_at, size, outcome) VALUES(?, ?, ?, 'claimed') "
            "ON CONFLICT(claim_id) DO UPDATE SET outcome='claimed', finished_at=NULL, reason=NULL,"
            " size=excluded.size WHERE files.outcome = 'returned'")
#: An outcome: a new row (never claimed here: recovered, pruned) or the claimed row updated.
_FINISHED = (
    "INSERT INTO files(claim_id, claimed_at, finished_at, outcome, reason, output, sha256, size,"
    " duration_ms) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(claim_id) DO UPDATE SET finished_at=excluded.finished_at,"
    " outcome=excluded.outcome, reason=excluded.reason, output=excluded.output,"
    " sha256=excluded.sha256, size=COALESCE(excluded.size, files.size),"
    " duration_ms=excluded.duration_ms"
)


class Journal:
    def __init__(self, path: Path, *, mode: int = 0o600, reid_map: bool = False) -> None:
        """`mode`: `[output] file_mode`; `reid_map`: `[deid] reid_map` (0600 when on)."""
        self.path = path
        _create(path, mode_for(mode, reid_map))
        self._db = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        try:
            self._init()
        except BaseException:
            self._db.close()
            raise

    def _init(self) -> None:
        # Deleted rows (a reid pair an operator removes, pruned rows) are zeroed, not left in
        # free pages for anyone who copies the file; not every SQLite build defaults to it.
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(heartbeats)")}
        if "data" not in columns:  # journals from before heartbeats kept their fields
            self._db.execute("ALTER TABLE heartbeats ADD COLUMN data TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
        if "requeued_at" not in columns:  # journals from before requeues kept the outcome
            self._db.execute("ALTER TABLE files ADD COLUMN requeued_at REAL")

    def close(self) -> None:
        self._db.close()

    def restrict(self, *, mode: int, reid_map: bool) -> None:
        """After a reload: a map switched on makes the file owner-only at once."""
        narrow(self.path, mode_for(mode, reid_map))

    @_guarded
    def claimed(self, claim_id: str, size: int) -> None:
        self._db.execute(_CLAIMED, (claim_id, time.time(), size))

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
        now = time.time()
        self._db.execute(_FINISHED, (claim_id, now, now, outcome, reason, output, sha256, size,
                                     duration_ms))

    @_guarded
    def record(self, claims: Sequence[tuple[str, int]],
               processed: Sequence[tuple[str, str, str, int, float]]) -> None:
        """Claims (claim id, size) and processed files (claim id, output, sha256, size,
        duration_ms) in one transaction: the daemon's per-file rows of one turn of its loop.
        One commit per turn instead of three per file (each a WAL append and lock round)."""
        if not claims and not processed:
            return
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(_CLAIMED, [(claim_id, now, size) for claim_id, size in claims])
            self._db.executemany(_FINISHED, [
                (claim_id, now, now, "processed", None, output, sha256, size, duration_ms)
                for claim_id, output, sha256, size, duration_ms in processed])
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    @_guarded
    def unfinished(self) -> list[str]:
        """Claims with no outcome yet: work in progress when the daemon last stopped."""
        rows = self._db.execute("SELECT claim_id FROM files WHERE outcome = 'claimed'")
        return [str(r[0]) for r in rows]

    @_guarded
    def heartbeat(self, queue_depth: int, processed: int, quarantined: int,
                  data: Mapping[str, Any] | None = None) -> None:
        """`data`: the heartbeat event's numeric fields, for `dcmwatch status`."""
        self._db.execute(
            "INSERT INTO heartbeats(at, queue_depth, processed, quarantined, data) "
            "VALUES(?,?,?,?,?)",
            (time.time(), queue_depth, processed, quarantined,
             json.dumps(dict(data)) if data is not None else None),
        )

    @_guarded
    def requeued(self, claim_id: str) -> None:
        """A quarantined file went back to the inbox (it will be claimed under a new id).

        The row keeps its outcome, `quarantined`: that happened, and `status` counts it; the
        requeue is its own fact. A row pruned or never written is recorded as `requeued`."""
        now = time.time()
        self._db.execute(
            "INSERT INTO files(claim_id, claimed_at, finished_at, outcome, requeued_at) "
            "VALUES(?, ?, ?, 'requeued', ?) "
            "ON CONFLICT(claim_id) DO UPDATE SET requeued_at=excluded.requeued_at",
            (claim_id, now, now, now),
        )

    def maintain(self, keep_days: float, *, now: float | None = None) -> dict[str, int]:
        """Prune rows older than `keep_days` (0: keep all), then checkpoint the WAL into the
        database and truncate it. Rows of files still in progress are never pruned, nor is the
        `reid` table: it is the only way back from a pseudonym, however old the study."""
        now = time.time() if now is None else now
        files = beats = 0
        if keep_days > 0:
            cutoff = now - keep_days * 86_400
            files = self._prune("files", "outcome != 'claimed' AND finished_at < ?", cutoff)
            beats = self._prune("heartbeats", "at < ?", cutoff)
        busy, wal_pages, done = self._checkpoint()
        return {"pruned_files": files, "pruned_heartbeats": beats, "checkpoint_busy": busy,
                "wal_pages": wal_pages, "checkpointed_pages": done}

    def _checkpoint(self) -> tuple[int, int, int]:
        """(busy, WAL pages, pages checkpointed); busy is reported, never raised: the next run
        tries again, and the WAL is checkpointed passively meanwhile at every 1000 pages."""
        self._db.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
        try:
            busy, wal_pages, done = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) not in (sqlite3.SQLITE_BUSY,
                                                               sqlite3.SQLITE_LOCKED):
                raise
            return 1, -1, -1
        finally:
            self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        return int(busy), int(wal_pages), int(done)

    def _prune(self, table: str, condition: str, cutoff: float) -> int:
        """Delete in small transactions: one DELETE of a year of rows would hold the write lock
        past the main thread's busy timeout, and a journal write failing there ends the daemon."""
        total = 0
        sql = (f"DELETE FROM {table} WHERE rowid IN "  # noqa: S608 - our own constant clauses
               f"(SELECT rowid FROM {table} WHERE {condition} LIMIT ?)")
        while True:
            n = self._db.execute(sql, (cutoff, PRUNE_BATCH)).rowcount
            total += n
            if n < PRUNE_BATCH:
                return total

    @_guarded
    def record_reid(self, pairs: Iterable[tuple[str, str, str]]) -> int:
        """Store re-identification pairs (kind, pseudonym, original); returns how many were new.

        One transaction, synced to disk before it returns (synchronous=FULL): the daemon removes
        the input next, and these rows are the only way back. The journal's NORMAL lets a power
        cut roll back its last commits, which the audit rows can afford and the map cannot.
        """
        now = time.time()
        rows = [(pseudonym, kind, original, now) for kind, pseudonym, original in pairs]
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.executemany(
                    "INSERT OR IGNORE INTO reid(pseudonym, kind, original, first_seen) "
                    "VALUES(?, ?, ?, ?)", rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")
        return max(cur.rowcount, 0)


def open_state(config: Config) -> Journal:
    """The state database of `config`, with the mode its settings allow."""
    return Journal(config.paths.state / FILENAME, mode=config.output.file_mode,
                   reid_map=config.deid.reid_map)


class MissingJournalError(DcmwatchError):
    """No state database where the configuration says: the daemon has not run with it yet."""

    reason = "no_journal"


def open_readonly(path: Path) -> sqlite3.Connection:
    """For `status`: never creates the database, never writes to it, even by accident."""
    if not path.is_file():
        raise MissingJournalError(f"no state database at {path}: has `dcmwatch run` used "
                                  "this configuration yet?")
    uri = path.resolve().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=10.0)
    try:
        db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        # An operator in the daemon's group may read the files but not write the WAL index:
        # read the main file without locking. immutable=1 ignores the WAL, so the answer misses
        # what is not checkpointed yet, and a checkpoint meanwhile can make the read fail
        # (DatabaseError, which `status` reports); the service user gets the exact answer.
        db.close()
        db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True)
    db.execute("PRAGMA query_only=ON")
    return db


def lookup_reid(path: Path, pseudonym: str) -> list[tuple[str, str]] | None:
    """(kind, original) rows for `pseudonym`, read-only; None when there is no database yet."""
    if not path.exists():
        return None
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    try:
        has_table = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='reid'"
        ).fetchone()
        if has_table is None:
            return []
        rows = db.execute(
            "SELECT kind, original FROM reid WHERE pseudonym = ? ORDER BY kind, original",
            (pseudonym.strip(),),
        ).fetchall()
    finally:
        db.close()
    return [(str(kind), str(original)) for kind, original in rows]
