"""The state database: one row per input, in SQLite (WAL), owned by the daemon's main thread.

The folders are the truth about what still has to be done (inbox, work area); the journal is the
record of what was done: content hash, outcome, output path, timings. It is what idempotency
checks, `dcmwatch status` and audits read. It never holds an input's file name or a tag value.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

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


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def close(self) -> None:
        self._db.close()

    def claimed(self, claim_id: str, size: int) -> None:
        self._db.execute(
            "INSERT INTO files(claim_id, claimed_at, size, outcome) VALUES(?, ?, ?, 'claimed') "
            "ON CONFLICT(claim_id) DO NOTHING",
            (claim_id, time.time(), size),
        )

    def attempt(self, claim_id: str) -> int:
        """Count one more attempt (a worker picked it up); returns the new count."""
        cur = self._db.execute(
            "INSERT INTO files(claim_id, claimed_at, outcome, attempts) VALUES(?, ?, 'claimed', 1) "
            "ON CONFLICT(claim_id) DO UPDATE SET attempts = attempts + 1 RETURNING attempts",
            (claim_id, time.time()),
        )
        row = cur.fetchone()
        return int(row[0]) if row else 1

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

    def unfinished(self) -> list[str]:
        """Claims with no outcome yet: work in progress when the daemon last stopped."""
        rows = self._db.execute("SELECT claim_id FROM files WHERE outcome = 'claimed'")
        return [str(r[0]) for r in rows]

    def heartbeat(self, queue_depth: int, processed: int, quarantined: int) -> None:
        self._db.execute(
            "INSERT INTO heartbeats(at, queue_depth, processed, quarantined) VALUES(?,?,?,?)",
            (time.time(), queue_depth, processed, quarantined),
        )
