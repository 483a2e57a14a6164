"""The backfill journal: one SQLite row per input, written by the driver alone.

Workers never touch it (they may be on other machines); the settle stage records each turn's
results in one transaction. A crash loses at most the batches in flight, whose outputs
are recomputed on the next run: same bytes, same key. Rows are keyed by (input identity,
configuration digest), so a run with another configuration or destination starts afresh while
a rerun with the same one skips what is done. The identity is a keyed digest of the input's
path or URL: the journal holds no file name.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backfill (
    ident          TEXT NOT NULL,
    config_digest  TEXT NOT NULL,
    outcome        TEXT NOT NULL,     -- processed | quarantined | failed
    reason         TEXT,
    output         TEXT,              -- output key, relative to the outbox
    sha256_in      TEXT,
    sha256_out     TEXT,
    bytes_in       INTEGER,
    bytes_out      INTEGER,
    finished_at    REAL NOT NULL,
    PRIMARY KEY (ident, config_digest)
);
"""

#: Outcomes a rerun does not redo. A `failed` input (transient trouble) is tried again.
DONE = ("processed", "quarantined")


class Row(NamedTuple):
    ident: str
    outcome: str
    reason: str
    output: str
    sha256_in: str
    sha256_out: str
    bytes_in: int
    bytes_out: int


class BackfillJournal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def is_done(self, ident: str, digest: str) -> bool:
        row = self._db.execute(
            "SELECT outcome FROM backfill WHERE ident=? AND config_digest=?", (ident, digest)
        ).fetchone()
        return row is not None and row[0] in DONE

    def done_count(self, digest: str) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM backfill WHERE config_digest=? AND outcome IN (?, ?)",
            (digest, *DONE),
        ).fetchone()
        return int(row[0])

    def record(self, results: Iterable[Row], digest: str) -> None:
        """One transaction per turn of the engine."""
        now = time.time()
        rows = [(r.ident, digest, r.outcome, r.reason or None, r.output or None,
                 r.sha256_in or None, r.sha256_out or None, r.bytes_in, r.bytes_out, now)
                for r in results]
        if not rows:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO backfill(ident, config_digest, outcome, reason, output, sha256_in, "
                "sha256_out, bytes_in, bytes_out, finished_at) VALUES(?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(ident, config_digest) DO UPDATE SET outcome=excluded.outcome, "
                "reason=excluded.reason, output=excluded.output, sha256_in=excluded.sha256_in, "
                "sha256_out=excluded.sha256_out, bytes_in=excluded.bytes_in, "
                "bytes_out=excluded.bytes_out, finished_at=excluded.finished_at",
                rows,
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
