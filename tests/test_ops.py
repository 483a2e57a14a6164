"""Operator edges without a daemon: requeue's moves, retention by claim time, the free-space
check, the rotating log file, journal maintenance and the status read-out."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog

from dcmwatch import config as config_mod
from dcmwatch import housekeeping, journal, log, requeue, status, store
from dcmwatch.daemon import Daemon
from dcmwatch.engine.inbox import new_claim_id
from dcmwatch.schedule import Schedule
from dcmwatch.testing import MARKERS, find_markers
from tests.conftest import write_config


class Recorder:
    """A structlog-shaped logger that keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def emit(event: str, **fields: Any) -> None:
            self.events.append((level, event, fields))
        return emit

    def names(self) -> list[str]:
        return [e for _, e, _ in self.events]


def _cfg(tmp_path: Path) -> config_mod.Config:
    return config_mod.load(write_config(tmp_path))


def _quarantine(cfg: config_mod.Config, reason: str, *, age_s: float = 0.0) -> str:
    cid = f"{int((time.time() - age_s) * 1e9):x}-{os.urandom(4).hex()}"
    q = cfg.paths.quarantine
    q.mkdir(parents=True, exist_ok=True)
    (q / f"{cid}.json").write_text(json.dumps({"claim_id": cid, "reason": reason}))
    (q / f"{cid}.dcm").write_bytes(MARKERS.patient_id.encode() * 10)
    return cid


class TestRequeue:
    def test_moves_by_reason_named_by_id_and_drops_sidecars(self, tmp_path: Path) -> None:
        """Only the chosen reason; the inbox name is the quarantine id; sidecar removed last."""
        cfg = _cfg(tmp_path)
        cfg.paths.inbox.mkdir()
        a = _quarantine(cfg, "too_large")
        b = _quarantine(cfg, "not_dicom")
        rec = Recorder()
        summary = requeue.requeue(cfg, rec, reason="too_large")
        assert summary.requeued == 1 and summary.by_reason == {"too_large": 1}
        assert [p.name for p in cfg.paths.inbox.iterdir()] == [f"{a}.dcm"]
        assert sorted(p.name for p in cfg.paths.quarantine.iterdir()) == [f"{b}.dcm", f"{b}.json"]
        assert rec.names() == ["file.requeued"]

    def test_never_replaces_a_file_in_the_inbox(self, tmp_path: Path) -> None:
        """A name already taken in the inbox: skipped, both files untouched."""
        cfg = _cfg(tmp_path)
        cfg.paths.inbox.mkdir()
        cid = _quarantine(cfg, "too_large")
        (cfg.paths.inbox / f"{cid}.dcm").write_bytes(b"someone else's")
        rec = Recorder()
        summary = requeue.requeue(cfg, rec)
        assert (summary.requeued, summary.skipped) == (0, 1)
        assert (cfg.paths.inbox / f"{cid}.dcm").read_bytes() == b"someone else's"
        assert (cfg.paths.quarantine / f"{cid}.json").exists()
        assert (cfg.paths.quarantine / f"{cid}.dcm").exists()

    def test_finishes_a_move_a_crash_interrupted(self, tmp_path: Path) -> None:
        """Killed after staging: the file sits in the hidden staging folder, its sidecar still in
        the quarantine; the next run completes the move."""
        cfg = _cfg(tmp_path)
        cid = _quarantine(cfg, "too_large")
        staging = cfg.paths.inbox / requeue.STAGING_DIR_NAME
        staging.mkdir(parents=True)
        os.rename(cfg.paths.quarantine / f"{cid}.dcm", staging / f"{cid}.dcm")
        summary = requeue.requeue(cfg, Recorder())
        assert summary.requeued == 1
        assert (cfg.paths.inbox / f"{cid}.dcm").exists()
        assert not staging.exists()
        assert list(cfg.paths.quarantine.iterdir()) == []

    @pytest.mark.parametrize("claimed", [False, True])
    def test_removes_the_sidecar_a_crash_after_the_move_left(self, tmp_path: Path,
                                                              claimed: bool) -> None:
        """Killed after the rename into the inbox, before the sidecar went: the next run
        removes the orphan sidecar (an event says so), whether the file still waits in the
        inbox or the daemon claimed it already; status no longer counts it."""
        cfg = _cfg(tmp_path)
        cfg.paths.inbox.mkdir()
        cid = _quarantine(cfg, "too_large")
        other = _quarantine(cfg, "too_large")
        os.rename(cfg.paths.quarantine / f"{cid}.dcm", cfg.paths.inbox / f"{cid}.dcm")
        if claimed:
            (cfg.paths.inbox / f"{cid}.dcm").unlink()
        rec = Recorder()
        summary = requeue.requeue(cfg, rec)
        assert (summary.requeued, summary.orphans, summary.skipped) == (1, 1, 0)
        assert sorted(p.name for p in cfg.paths.inbox.iterdir()) == sorted(
            [f"{other}.dcm"] + ([] if claimed else [f"{cid}.dcm"]))
        assert list(cfg.paths.quarantine.iterdir()) == []
        orphan = [f for _, e, f in rec.events if e == "file.requeue_orphan"]
        assert orphan == [{"claim_id": cid, "reason": "too_large", "in_inbox": not claimed}]
        assert requeue.requeue(cfg, Recorder()).as_fields()["orphans"] == 0

    def test_dry_run_moves_nothing_and_journal_records(self, tmp_path: Path) -> None:
        """--dry-run counts; a real run records the requeue beside the quarantine."""
        cfg = _cfg(tmp_path)
        cfg.paths.inbox.mkdir()
        cfg.paths.state.mkdir()
        cid = _quarantine(cfg, "too_large")
        j = journal.Journal(cfg.paths.state / "journal.sqlite3")
        j.finished(cid, outcome="quarantined", reason="too_large")
        j.close()
        assert requeue.requeue(cfg, Recorder(), dry_run=True).requeued == 1
        assert list(cfg.paths.inbox.iterdir()) == []
        requeue.requeue(cfg, Recorder())
        db = sqlite3.connect(cfg.paths.state / "journal.sqlite3")
        rows = db.execute("SELECT outcome, reason, requeued_at IS NOT NULL FROM files").fetchall()
        assert rows == [("quarantined", "too_large", 1)]
        db.close()
        outcomes = status.collect(cfg)["outcomes"]["last_day"]
        assert outcomes == {"quarantined": 1, "requeued": 1}  # the history, not a net count

    def test_status_counts_requeues_of_older_journals(self, tmp_path: Path) -> None:
        """A row an older version turned into `requeued`, a requeue without a row, and a
        journal without the requeued_at column (read-only status cannot migrate it)."""
        cfg = _cfg(tmp_path)
        cfg.paths.state.mkdir()
        j = journal.Journal(cfg.paths.state / "journal.sqlite3")
        j.finished("old", outcome="requeued")
        j.requeued("unknown")
        j.finished("q", outcome="quarantined", reason="not_dicom")
        j.close()
        assert status.collect(cfg)["outcomes"]["last_day"] == {"quarantined": 1, "requeued": 2}
        db = sqlite3.connect(cfg.paths.state / "journal.sqlite3")
        db.execute("ALTER TABLE files DROP COLUMN requeued_at")
        db.commit()
        db.close()
        assert status.collect(cfg)["outcomes"]["last_day"] == {"quarantined": 1, "requeued": 2}

    def test_rename_noreplace_refuses_an_existing_name(self, tmp_path: Path) -> None:
        src, dest = tmp_path / "a", tmp_path / "b"
        src.write_bytes(b"a")
        dest.write_bytes(b"b")
        with pytest.raises(FileExistsError):
            store.rename_noreplace(src, dest)
        assert dest.read_bytes() == b"b"
        dest.unlink()
        store.rename_noreplace(src, dest)
        assert dest.read_bytes() == b"a" and not src.exists()
        assert dest.stat().st_nlink == 1

    @pytest.mark.parametrize("link_refused", [False, True], ids=["link", "protected-hardlinks"])
    def test_without_renameat2_a_name_is_never_replaced(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link_refused: bool
    ) -> None:
        """Where the filesystem has no renameat2 (NFS, CIFS): a hard link and an unlink, or,
        when the kernel refuses to link another user's file (fs.protected_hardlinks, which root
        cannot meet here), a look and a rename. Either way an existing name is refused and the
        file ends under one name."""
        from dcmwatch import libc

        real = libc.function
        monkeypatch.setattr(libc, "function",
                            lambda name: None if name == "renameat2" else real(name))
        if link_refused:
            def refuse(*_args: object, **_kwargs: object) -> None:
                raise PermissionError(1, "Operation not permitted")
            monkeypatch.setattr(os, "link", refuse)
        src, dest = tmp_path / "a", tmp_path / "b"
        src.write_bytes(b"a")
        dest.write_bytes(b"b")
        with pytest.raises(FileExistsError):
            store.rename_noreplace(src, dest)
        assert dest.read_bytes() == b"b" and src.exists()
        dest.unlink()
        store.rename_noreplace(src, dest)
        assert dest.read_bytes() == b"a" and not src.exists()
        assert dest.stat().st_nlink == 1


class TestRetention:
    def test_purges_by_claim_time_not_mtime(self, tmp_path: Path) -> None:
        """Age comes from the claim id: an old mtime (kept from the scanner) does not matter."""
        cfg = _cfg(tmp_path)
        old = _quarantine(cfg, "not_dicom", age_s=3 * 86_400)
        new = _quarantine(cfg, "not_dicom")
        os.utime(cfg.paths.quarantine / f"{new}.json", (0, 0))  # ancient mtime, fresh claim
        archive = cfg.paths.state / "archive"
        day = archive / "20200101"
        day.mkdir(parents=True)
        (day / f"{old}.dcm").write_bytes(b"x" * 10)
        (archive / "20990101").mkdir()
        fresh = archive / "20990101" / f"{new}.dcm"
        fresh.write_bytes(b"y")
        late = _quarantine(cfg, "output", age_s=3 * 86_400)  # claimed long ago, quarantined now
        old_mtime = time.time() - 3 * 86_400
        os.utime(cfg.paths.quarantine / f"{old}.json", (old_mtime, old_mtime))
        purged = housekeeping.purge(archive, cfg.paths.quarantine, 2.0)
        assert (purged.archived, purged.quarantined) == (1, 1)
        assert purged.bytes == 10 + len(MARKERS.patient_id) * 10
        assert not day.exists() and fresh.exists()
        assert sorted(p.name for p in cfg.paths.quarantine.iterdir()) == sorted(
            [f"{new}.dcm", f"{new}.json", f"{late}.dcm", f"{late}.json"])

    def test_claim_time_round_trips(self) -> None:
        t = housekeeping.claimed_at(new_claim_id())
        assert t is not None and abs(t - time.time()) < 5
        assert housekeeping.claimed_at("ZZPHINAME_0001") is None

    def test_low_space(self, tmp_path: Path) -> None:
        """The first folder under the threshold is named by its role; 0 turns it off."""
        free = housekeeping.free_mb(tmp_path)
        folders = {"outbox": tmp_path, "state": tmp_path}
        assert housekeeping.low_space(folders, 0) is None
        assert housekeeping.low_space(folders, 1) is None
        low = housekeeping.low_space(folders, int(free) + 10_000)
        assert low is not None and low[0] == "outbox"


class TestLogFile:
    def test_reopens_after_rename_and_removal(self, tmp_path: Path) -> None:
        """logrotate renames (or deletes) the file: the next line creates a new one, 0640."""
        path = tmp_path / "d.log"
        out = io.StringIO()
        log.configure("json", "info", stream=out, file=path)
        structlog.get_logger().info("one")
        path.rename(tmp_path / "d.log.1")
        structlog.get_logger().info("two")
        path.unlink()
        structlog.get_logger().info("three")
        assert [json.loads(x)["event"] for x in (tmp_path / "d.log.1").read_text().splitlines()] \
            == ["one"]
        assert [json.loads(x)["event"] for x in path.read_text().splitlines()] == ["three"]
        assert [json.loads(x)["event"] for x in out.getvalue().splitlines()] == ["one", "two",
                                                                                 "three"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o640

    def test_a_log_file_that_cannot_be_written_never_raises(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A log call runs in the main loop (and in its error handlers): a rotated path that
        cannot be reopened, or a failing write, costs lines and one stderr note, not the daemon."""
        path = tmp_path / "d.log"
        out = io.StringIO()
        log.configure("json", "info", stream=out, file=path)
        structlog.get_logger().info("one")
        path.rename(tmp_path / "d.log.1")
        path.mkdir()  # the reopen fails (EISDIR): the open file keeps the lines
        structlog.get_logger().info("two")
        structlog.get_logger().info("three")
        assert [json.loads(x)["event"] for x in out.getvalue().splitlines()] == ["one", "two",
                                                                                 "three"]
        assert [json.loads(x)["event"] for x in (tmp_path / "d.log.1").read_text().splitlines()] \
            == ["one", "two", "three"]
        assert capsys.readouterr().err.count("cannot write") == 1

        f = log.ReopeningFile(tmp_path / "e.log")
        os.close(f._fd)  # every write fails now (EBADF)
        f.write_line("lost\n")
        f.write_line("lost too\n")
        assert capsys.readouterr().err.count("cannot write (EBADF)") == 1
        f._fd = -1

    def test_file_only(self, tmp_path: Path) -> None:
        path = tmp_path / "d.log"
        out = io.StringIO()
        log.configure("console", "info", stream=out, file=path, stdout=False)
        structlog.get_logger().info("x", n=1)
        assert out.getvalue() == ""
        assert json.loads(path.read_text())["n"] == 1  # a file always gets JSON


class TestJournal:
    def test_maintain_prunes_finished_rows_only(self, tmp_path: Path) -> None:
        j = journal.Journal(tmp_path / "j.sqlite3")
        j.finished("old", outcome="processed")
        j.claimed("inflight", 10)
        j.heartbeat(0, 1, 0, {"x": 1})
        later = time.time() + 2 * 86_400
        assert j.maintain(0)["pruned_files"] == 0
        done = j.maintain(1.0, now=later)
        assert (done["pruned_files"], done["pruned_heartbeats"]) == (1, 1)
        assert done["checkpoint_busy"] == 0
        rows = j._db.execute("SELECT claim_id FROM files").fetchall()
        assert rows == [("inflight",)]
        j.close()

    def test_maintain_never_prunes_the_reid_map(self, tmp_path: Path) -> None:
        """However old, a pseudonym must stay reversible while the map is kept."""
        j = journal.Journal(tmp_path / "j.sqlite3")
        j.record_reid([("PatientID", "ANONX", "ID1")])
        j.maintain(1.0, now=time.time() + 3650 * 86_400)
        j.close()
        assert journal.lookup_reid(tmp_path / "j.sqlite3", "ANONX") == [("PatientID", "ID1")]

    def test_maintain_prunes_in_short_transactions(self, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        """A first prune of years of rows must not hold the write lock for long: the main
        thread's journal writes give up after their busy timeout (and that ends the daemon)."""
        monkeypatch.setattr(journal, "PRUNE_BATCH", 3, raising=False)
        j = journal.Journal(tmp_path / "j.sqlite3")
        for i in range(10):
            j.finished(f"old{i}", outcome="processed")
            j.heartbeat(0, i, 0)
        j.claimed("inflight", 10)
        statements: list[str] = []
        j._db.set_trace_callback(statements.append)
        done = j.maintain(1.0, now=time.time() + 2 * 86_400)
        j._db.set_trace_callback(None)
        assert (done["pruned_files"], done["pruned_heartbeats"]) == (10, 10)
        deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE")]
        assert len(deletes) == 2 * 4  # 3 + 3 + 3 + 1 rows per table, each its own transaction
        assert j._db.execute("SELECT claim_id FROM files").fetchall() == [("inflight",)]
        j.close()

    def test_old_heartbeats_table_gains_its_column(self, tmp_path: Path) -> None:
        """A journal from before `data` existed is migrated in place."""
        db = sqlite3.connect(tmp_path / "j.sqlite3")
        db.execute("CREATE TABLE heartbeats (at REAL NOT NULL, queue_depth INTEGER, "
                   "processed INTEGER, quarantined INTEGER)")
        db.commit()
        db.close()
        j = journal.Journal(tmp_path / "j.sqlite3")
        j.heartbeat(1, 2, 3, {"oldest_queued_s": 4.0})
        j.close()
        db = sqlite3.connect(tmp_path / "j.sqlite3")
        assert db.execute("SELECT data FROM heartbeats").fetchall() == [('{"oldest_queued_s": 4.0}',)]


class TestStatus:
    def test_counts_reasons_queue_and_heartbeat(self, tmp_path: Path) -> None:
        """Outcomes per window, quarantine reasons, what waits where, the last heartbeat; no
        file name even though the inbox holds PHI-named files."""
        cfg = _cfg(tmp_path)
        for folder in (cfg.paths.inbox, cfg.paths.state / "work"):
            folder.mkdir(parents=True)
        (cfg.paths.inbox / f"{MARKERS.patient_id}.dcm").write_bytes(b"x")
        (cfg.paths.inbox / ".hidden.part").write_bytes(b"x")
        (cfg.paths.state / "work" / "abc-1.dcm").write_bytes(b"x")
        j = journal.Journal(cfg.paths.state / "journal.sqlite3")
        now = time.time()
        j.finished("a", outcome="processed")
        j.finished("b", outcome="quarantined", reason="not_dicom")
        j.finished("c", outcome="quarantined", reason="not_dicom")
        j._db.execute("UPDATE files SET finished_at=? WHERE claim_id='a'", (now - 7200,))
        j.heartbeat(3, 1, 2, {"queue_depth": 3, "outbox_free_mb": 12.5})
        j.close()
        data = status.collect(cfg, now=now + 1)
        assert data["outcomes"] == {"last_hour": {"quarantined": 2},
                                    "last_day": {"processed": 1, "quarantined": 2}}
        assert data["quarantine_reasons"]["last_day"] == {"not_dicom": 2}
        assert data["queue"] == {"inbox": 1, "claimed": 1, "quarantine": 0}
        beat = data["heartbeat"]
        assert beat["outbox_free_mb"] == 12.5 and beat["stale"] is False and beat["age_s"] >= 1
        out = io.StringIO()
        from rich.console import Console

        status.render(data, Console(file=out, width=100))
        text = out.getvalue() + status.render_json(data)
        assert "not_dicom" in text and find_markers(text) == []

    def test_an_unreadable_database_is_a_message_not_a_traceback(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from dcmwatch import cli

        cfg = write_config(tmp_path)
        (tmp_path / "state").mkdir()
        (tmp_path / "state" / "journal.sqlite3").write_bytes(b"not a database" * 100)
        assert cli.main(["status", "--config", str(cfg)], env={}) == cli.EXIT_FAILED
        assert "cannot read the state database (DatabaseError)" in capsys.readouterr().err

    def test_never_creates_the_database(self, tmp_path: Path) -> None:
        cfg = _cfg(tmp_path)
        with pytest.raises(journal.MissingJournalError, match="no state database"):
            status.collect(cfg)
        assert not (cfg.paths.state / "journal.sqlite3").exists()


class TestJobs:
    def test_a_failing_job_is_an_event(self, tmp_path: Path) -> None:
        """A job that raises logs job.failed with its name and returns: the scheduler and the
        daemon carry on."""
        cfg = _cfg(tmp_path)
        rec = Recorder()
        schedule = Schedule(cfg, Daemon(cfg, {}).queue, rec, lambda: None)

        def boom() -> None:
            raise OSError(5, "EIO")

        schedule._guarded("retention", boom)()
        level, event, fields = rec.events[0]
        assert (level, event, fields["job"]) == ("error", "job.failed", "retention")


class TestReload:
    def test_schedule_intervals_apply_on_sighup(self, tmp_path: Path) -> None:
        """[schedule] is not a restart section: a reload reschedules the jobs whose interval
        changed (an event each) and leaves the others alone."""
        from datetime import timedelta

        cfg_path = write_config(tmp_path)
        cfg = config_mod.load(cfg_path)
        cfg.paths.inbox.mkdir()
        cfg.paths.state.mkdir()
        d = Daemon(cfg, {})
        rec = Recorder()
        d.log = rec
        replaced: list[config_mod.Config] = []

        class Executor:
            def reconfigure(self, new: config_mod.Config) -> None:
                replaced.append(new)

        d.executor = Executor()  # type: ignore[assignment]
        d.engine = SimpleNamespace(  # type: ignore[assignment]
            window=0, settle=SimpleNamespace(config=cfg))
        d.watcher = SimpleNamespace(config=cfg)  # type: ignore[assignment]
        d.journal = journal.open_state(cfg)
        d.schedule = Schedule(cfg, d.queue, rec, lambda: None)
        d.schedule.start()
        try:
            cfg_path.write_text(cfg_path.read_text().replace(
                "heartbeat_seconds = 2", "heartbeat_seconds = 7\nmaintenance_seconds = 120"))
            d._do_reload()
            assert [e for _, e, _ in rec.events if e.startswith("config.")] == [
                "config.reloaded"]
            assert len(replaced) == 1
            interval = {job.id: job.trigger.interval
                        for job in d.schedule._scheduler.get_jobs()}
            assert interval["heartbeat"] == timedelta(seconds=7)
            assert interval["journal_maintenance"] == timedelta(seconds=120)
            assert interval["rescan"] == timedelta(seconds=5)
            changed = [f for _, e, f in rec.events if e == "schedule.changed"]
            assert changed == [{"job": "heartbeat", "seconds": 7.0},
                               {"job": "journal_maintenance", "seconds": 120.0}]
        finally:
            d.schedule.shutdown()
            d.journal.close()
