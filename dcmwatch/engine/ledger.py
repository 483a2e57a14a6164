"""Where the settle stage records what happened: one interface over the daemon's state database
and a backfill's journal.

The settle stage writes a turn's claims and processed files in one transaction (`flush`), and
only then releases the processed files' inputs: a kill in between leaves the input, which is
processed again (same bytes, same path) and recorded again. Quarantines and give-backs are
recorded as they happen, after their files are durable. Attempts count crashes and retries per
file: in the state database for the daemon (they survive a restart, so a file that kills
workers cannot loop across restarts), in memory for a backfill (a rerun starts afresh).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from dcmwatch import config as config_mod
from dcmwatch import store
from dcmwatch.backfill.journal import BackfillJournal, Row
from dcmwatch.config import Config
from dcmwatch.engine.outcome import Outcome
from dcmwatch.journal import Journal, open_state

Pairs = Iterable[tuple[str, str, str]]


class Ledger(Protocol):
    def claimed(self, claim_id: str, size: int) -> None:
        """Recorded with the turn's flush."""
        ...

    def processed(self, outcome: Outcome) -> None:
        """Recorded with the turn's flush."""
        ...

    def flush(self) -> None: ...

    def finished(self, outcome: Outcome, state: str, *, size: int) -> None:
        """A file ended otherwise than processed: quarantined, returned, failed."""
        ...

    def attempt(self, claim_id: str) -> int:
        """Count one more attempt at this file; the new count."""
        ...

    def record_reid(self, pairs: Pairs) -> None: ...

    def close(self) -> None: ...


class StateLedger:
    """The daemon's state database (`journal.Journal`)."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._claims: list[tuple[str, int]] = []
        self._processed: list[tuple[str, str, str, int, float]] = []

    def claimed(self, claim_id: str, size: int) -> None:
        self._claims.append((claim_id, size))

    def processed(self, outcome: Outcome) -> None:
        self._processed.append((outcome.claim_id, outcome.output, outcome.sha256_in,
                                outcome.bytes_in, outcome.duration_ms))

    def flush(self) -> None:
        claims, self._claims = self._claims, []
        done, self._processed = self._processed, []
        self.journal.record(claims, done)

    def finished(self, outcome: Outcome, state: str, *, size: int) -> None:
        self.journal.finished(outcome.claim_id, outcome=state, reason=outcome.reason or None,
                              size=size or None, duration_ms=outcome.duration_ms or None)

    def attempt(self, claim_id: str) -> int:
        return self.journal.attempt(claim_id)

    def record_reid(self, pairs: Pairs) -> None:
        self.journal.record_reid(pairs)

    def close(self) -> None:
        self.journal.close()


class BackfillLedger:
    """A backfill's journal: rows keyed by (input identity, configuration digest)."""

    def __init__(self, path: Path, config: Config, digest: str) -> None:
        self.journal = BackfillJournal(path)
        self.digest = digest
        self._config = config
        self._rows: list[Row] = []
        self._attempts: Counter[str] = Counter()
        self._reid: Journal | None = None

    def claimed(self, claim_id: str, size: int) -> None:
        return None  # a backfill's inputs are not claimed: they stay where they are

    def processed(self, outcome: Outcome) -> None:
        self._rows.append(_row(outcome, "processed"))

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        self.journal.record(rows, self.digest)

    def finished(self, outcome: Outcome, state: str, *, size: int) -> None:
        self._rows.append(_row(outcome, state, size))

    def attempt(self, claim_id: str) -> int:
        self._attempts[claim_id] += 1
        return self._attempts[claim_id]

    def record_reid(self, pairs: Pairs) -> None:
        """The state database, opened only to keep the re-identification map when it is on."""
        if self._reid is None:
            store.ensure_dir(self._config.paths.state)
            self._reid = open_state(self._config)
        self._reid.record_reid(pairs)

    def close(self) -> None:
        self.journal.close()
        if self._reid is not None:
            self._reid.close()


def _row(o: Outcome, state: str, size: int = 0) -> Row:
    return Row(o.claim_id, state, o.reason, o.output, o.sha256_in, o.sha256_out,
               o.bytes_in or size, o.bytes_out)


def config_digest(config: Config, outbox: str, quarantine: str) -> str:
    """What decides an output's bytes and place: the effective config, the key, the outbox."""
    data = config_mod.effective(config)
    data.pop("source", None)
    text = json.dumps([data, outbox, quarantine], sort_keys=True, default=str)
    h = hashlib.blake2b(text.encode(), key=config.key()[:64], digest_size=16,
                        person=b"dcmw-bf-config")
    return h.hexdigest()
