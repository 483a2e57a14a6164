"""The state database's own guarantees: who may read it, what a deleted row leaves behind."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import config as config_mod
from dcmwatch import journal
from dcmwatch.testing import MARKERS
from tests.conftest import write_config


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestMode:
    def test_the_reid_map_makes_it_owner_only(self, tmp_path: Path) -> None:
        """file_mode 0640 lets the outbox group read outputs, not the originals of the map."""
        path = tmp_path / journal.FILENAME
        journal.Journal(path, mode=0o640, reid_map=True).close()
        assert _mode(path) == 0o600

    def test_without_the_map_never_wider_than_file_mode(self, tmp_path: Path) -> None:
        os.umask(0o022)
        path = tmp_path / journal.FILENAME
        journal.Journal(path, mode=0o644, reid_map=False).close()
        assert _mode(path) == 0o640
        other = tmp_path / "other.sqlite3"
        journal.Journal(other, mode=0o600, reid_map=False).close()
        assert _mode(other) == 0o600

    def test_an_existing_wider_file_is_narrowed_on_open(self, tmp_path: Path) -> None:
        """A journal written before the map was switched on (or by an older version) loses
        its group bits, its -wal and -shm too."""
        path = tmp_path / journal.FILENAME
        j = journal.Journal(path, mode=0o640)
        j.finished("a", outcome="processed")  # keeps the -wal and -shm while open
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        for p in (path, wal, shm):
            p.chmod(0o664)
        journal.Journal(path, mode=0o640, reid_map=True).close()
        assert [_mode(p) for p in (path, wal, shm)] == [0o600] * 3
        j.close()

    def test_narrowing_never_widens(self, tmp_path: Path) -> None:
        """A map switched off again leaves its rows: the file stays as narrow as it was."""
        path = tmp_path / journal.FILENAME
        journal.Journal(path, mode=0o640, reid_map=True).close()
        journal.Journal(path, mode=0o640, reid_map=False).close()
        assert _mode(path) == 0o600

    def test_open_state_follows_the_config(self, tmp_path: Path) -> None:
        cfg = config_mod.load(write_config(tmp_path, "reid_map = true"))
        cfg.paths.state.mkdir(parents=True)
        journal.open_state(cfg).close()
        assert _mode(cfg.paths.state / journal.FILENAME) == 0o600

    def test_a_reload_that_switches_the_map_on_narrows_the_open_file(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / journal.FILENAME
        j = journal.Journal(path, mode=0o640)
        assert _mode(path) == 0o640
        j.restrict(mode=0o640, reid_map=True)
        assert _mode(path) == 0o600
        j.close()


def test_deleted_reid_rows_leave_no_bytes_behind(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """secure_delete: a removed pair is zeroed in the file, even on an SQLite build whose
    default leaves deleted cells in free space (simulated: the connection starts with it off)."""
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = real_connect(*args, **kwargs)
        db.execute("PRAGMA secure_delete=OFF")
        return db

    monkeypatch.setattr(journal.sqlite3, "connect", connect)
    path = tmp_path / journal.FILENAME
    j = journal.Journal(path, reid_map=True)
    j.record_reid([("PatientID", "ANONX", MARKERS.patient_id),
                   ("PatientName", "ANONY", "KEEP^ME")])
    j.maintain(0)  # into the main file
    assert MARKERS.patient_id.encode() in path.read_bytes()
    j._db.execute("DELETE FROM reid WHERE pseudonym = 'ANONX'")
    assert j.maintain(0)["checkpoint_busy"] == 0
    j.close()
    data = path.read_bytes()
    assert b"KEEP^ME" in data
    assert MARKERS.patient_id.encode() not in data


class TestCheckpoint:
    def test_a_reader_makes_it_give_up_soon_and_say_so(self, tmp_path: Path) -> None:
        """An open read transaction (`status`, a sqlite3 shell) keeps TRUNCATE waiting while it
        holds the write lock: about a second, not the 10 s the main thread's writes would wait
        behind it; reported as checkpoint_busy, and the journal's writes work after."""
        path = tmp_path / journal.FILENAME
        j = journal.Journal(path)
        j.finished("a", outcome="processed")
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM files").fetchall()
        j.finished("b", outcome="processed")  # a frame the reader's snapshot does not have
        t0 = time.monotonic()
        done = j.maintain(0)
        waited = time.monotonic() - t0
        assert done["checkpoint_busy"] == 1
        assert waited < 5.0, waited
        assert j._db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
        reader.execute("COMMIT")
        reader.close()
        assert j.maintain(0)["checkpoint_busy"] == 0
        j.close()

    def test_a_locked_database_is_reported_not_raised(self, tmp_path: Path) -> None:
        class Locked:
            def __init__(self, db: sqlite3.Connection) -> None:
                self.db = db

            def execute(self, sql: str, *args: Any) -> Any:
                if "wal_checkpoint" in sql:
                    exc = sqlite3.OperationalError("database is locked")
                    exc.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
                    raise exc
                return self.db.execute(sql, *args)

        j = journal.Journal(tmp_path / journal.FILENAME)
        real = j._db
        j._db = Locked(real)  # type: ignore[assignment]
        done = j.maintain(0)
        assert (done["checkpoint_busy"], done["wal_pages"]) == (1, -1)
        j._db = real
        j.close()


class TestRecord:
    """The daemon journals a turn of its loop in one transaction (`Journal.record`)."""

    def test_claims_and_outcomes_land_together(self, tmp_path: Path) -> None:
        j = journal.Journal(tmp_path / journal.FILENAME)
        try:
            j.claimed("a", 10)  # claimed in an earlier turn
            j.record([("b", 20), ("c", 30)],
                     [("a", "x/a.dcm", "aa" * 32, 10, 1.5), ("b", "x/b.dcm", "bb" * 32, 20, 2.5)])
            rows = {r[0]: r[1:] for r in j._db.execute(
                "SELECT claim_id, outcome, output, sha256, size, duration_ms, finished_at "
                "IS NOT NULL FROM files")}
        finally:
            j.close()
        assert rows == {
            "a": ("processed", "x/a.dcm", "aa" * 32, 10, 1.5, 1),
            "b": ("processed", "x/b.dcm", "bb" * 32, 20, 2.5, 1),
            "c": ("claimed", None, None, 30, None, 0),
        }

    def test_a_failed_turn_leaves_no_part_of_it(self, tmp_path: Path) -> None:
        """All or nothing: a failure rolls the turn back, and the daemon stops on the error."""
        j = journal.Journal(tmp_path / journal.FILENAME)
        try:
            j._db.execute("CREATE TRIGGER no_c BEFORE INSERT ON files WHEN NEW.claim_id = 'c' "
                          "BEGIN SELECT RAISE(ABORT, 'no'); END")
            with pytest.raises(journal.JournalError):
                j.record([("a", 1), ("c", 2)], [])
            count = j._db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        finally:
            j.close()
        assert count == 0


def test_a_file_claimed_again_after_its_return_records_its_new_size(tmp_path: Path) -> None:
    """A deferred file comes back longer (its writer went on): its row says the new size."""
    path = tmp_path / "journal.sqlite3"
    j = journal.Journal(path, mode=0o640)
    j.claimed("c1", 10)
    j.finished("c1", outcome="returned", reason="truncated")
    j.claimed("c1", 20)
    j.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT outcome, size FROM files WHERE claim_id='c1'").fetchall() == [
        ("claimed", 20)]
    db.close()
