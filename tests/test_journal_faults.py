"""The state database's failure modes, and the watcher's overflow signal, without a daemon."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from dcmwatch.journal import JournalError, open_journal
from dcmwatch.watcher import Watcher


def test_a_corrupt_journal_is_moved_aside_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"garbage, not SQLite" * 50)
    journal, aside = open_journal(path)
    try:
        assert aside is not None
        assert (tmp_path / aside).read_bytes().startswith(b"garbage")
        journal.claimed("c1", 10)
        assert journal.unfinished() == ["c1"]
    finally:
        journal.close()


def test_a_failing_database_is_a_journal_error_not_a_traceback(tmp_path: Path) -> None:
    journal, _ = open_journal(tmp_path / "journal.sqlite3")
    journal._db.close()  # stands in for a database gone bad underneath
    with pytest.raises(JournalError):
        journal.claimed("c1", 10)


def test_a_locked_journal_is_refused_at_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal.sqlite3"
    journal, _ = open_journal(path)
    journal.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect",
                        lambda *a, **k: real_connect(*a, **{**k, "timeout": 0.1}))
    try:
        with pytest.raises(JournalError, match="locked"):
            open_journal(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_watchdogs_overflow_warning_reaches_the_daemon(tmp_path: Path) -> None:
    seen: list[bool] = []
    w = Watcher(tmp_path, "native", 1.0, lambda p, c: None, lambda e: None, lambda p: None,
                lambda: seen.append(True))
    w.start()
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost")
        logging.getLogger("watchdog.observers.inotify_c").warning("something else")
    finally:
        w.stop()
    assert seen == [True]
    logging.getLogger("watchdog.observers.inotify_c").warning(
        "Inotify queue overflowed; filesystem events were lost")
    assert seen == [True]  # unhooked on stop
