"""Intake: each path queued once, ignored names skipped, warm files settle first."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dcmwatch.intake import Intake, NameFilter

NAMES = NameFilter((".*", "*.part", "*.tmp"))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _intake(inbox: Path, clock: FakeClock | None = None, max_pending: int = 100) -> Intake:
    return Intake(inbox, settle_seconds=2.0, max_pending=max_pending, names=NAMES,
                  clock=clock or FakeClock())


class TestIntake:
    def test_path_is_queued_once(self, tmp_path: Path) -> None:
        """Repeated offers of one path queue it once."""
        i = _intake(tmp_path)
        for _ in range(3):
            i.offer(str(tmp_path / "a.dcm"), complete=True)
        assert i.take() == str(tmp_path / "a.dcm")
        assert i.take() is None

    def test_ignored_names_and_hidden_folders(self, tmp_path: Path) -> None:
        """Temporary names and files inside hidden folders are not taken."""
        i = _intake(tmp_path)
        for name in (".x.dcm", "a.part", "b.tmp", ".dcmwatch-work/c.dcm"):
            i.offer(str(tmp_path / name), complete=True)
        assert i.take() is None

    def test_incomplete_files_settle_first(self, tmp_path: Path) -> None:
        """Without a close event a file is taken only once unchanged for the settle window."""
        clock = FakeClock()
        i = _intake(tmp_path, clock)
        f = tmp_path / "slow.dcm"
        f.write_bytes(b"a")
        i.offer(str(f), complete=False)
        i.tick()
        assert i.take() is None
        clock.now += 2.5
        with f.open("ab") as fh:
            fh.write(b"more")  # changed meanwhile: waits another window
        i.tick()
        assert i.take() is None
        clock.now += 2.5
        i.tick()
        assert i.take() == str(f)

    def test_overflow_drops_and_flags(self, tmp_path: Path) -> None:
        """A full queue drops offers (files stay in the inbox) and asks for a rescan."""
        i = _intake(tmp_path, max_pending=2)
        for n in range(5):
            i.offer(str(tmp_path / f"{n}.dcm"), complete=True)
        assert i.pending() == 2 and i.overflowed and i.dropped == 3

    def test_rescan_queues_old_files_and_settles_warm_ones(self, tmp_path: Path) -> None:
        """A rescan takes long-finished files at once and lets fresh ones settle."""
        clock = FakeClock()
        i = _intake(tmp_path, clock)
        old = tmp_path / "sub" / "old.dcm"
        old.parent.mkdir()
        old.write_bytes(b"x")
        past = time.time() - 60
        os.utime(old, (past, past))
        (tmp_path / "fresh.dcm").write_bytes(b"y")
        (tmp_path / ".hidden").mkdir()
        (tmp_path / ".hidden" / "z.dcm").write_bytes(b"z")
        assert i.rescan() == 2
        assert i.take() == str(old)
        assert i.take() is None
        clock.now += 3
        i.tick()
        assert i.take() == str(tmp_path / "fresh.dcm")


class TestFirstSight:
    """`take_seen` reports when a path was first offered: the start of the latency logged in
    `file.processed`, so the time a file spent settling or queued counts against dcmwatch."""

    def test_complete_file_seen_when_offered(self, tmp_path: Path) -> None:
        clock = FakeClock()
        i = _intake(tmp_path, clock)
        i.offer(str(tmp_path / "a.dcm"), complete=True)
        clock.now += 7.0
        i.offer(str(tmp_path / "a.dcm"), complete=True)  # a repeated hint changes nothing
        assert i.take_seen() == (str(tmp_path / "a.dcm"), 1000.0)
        assert i.take_seen() is None

    def test_settling_keeps_the_first_sight(self, tmp_path: Path) -> None:
        clock = FakeClock()
        i = _intake(tmp_path, clock)
        f = tmp_path / "slow.dcm"
        f.write_bytes(b"a")
        i.offer(str(f), complete=False)
        clock.now += 2.5
        with f.open("ab") as fh:
            fh.write(b"more")
        i.tick()  # changed: settles again, still first seen at 1000
        clock.now += 2.5
        i.tick()
        assert i.take_seen() == (str(f), 1000.0)


class TestIncrementalRescan:
    def test_rescan_stops_at_a_full_queue_and_asks_for_more(self, tmp_path: Path) -> None:
        """With more files waiting than the queue holds, a rescan takes `max_pending`, stops,
        and flags `overflowed`; once drained, the next rescan takes the rest."""
        past = time.time() - 60
        for n in range(7):
            f = tmp_path / f"{n}.dcm"
            f.write_bytes(b"x")
            os.utime(f, (past, past))
        i = _intake(tmp_path, max_pending=3)
        assert i.rescan() == 3
        assert i.pending() == 3 and i.overflowed and i.dropped == 0
        taken = {i.take() for _ in range(3)}
        for path in taken:
            Path(str(path)).unlink()  # claimed
        assert i.rescan() == 3 and i.overflowed
        taken |= {i.take() for _ in range(3)}
        for path in taken:
            Path(str(path)).unlink(missing_ok=True)
        assert i.rescan() == 1 and not i.overflowed
        taken.add(i.take())
        assert len(taken) == 7

    def test_warm_files_count_against_the_bound(self, tmp_path: Path) -> None:
        for n in range(5):
            (tmp_path / f"{n}.dcm").write_bytes(b"x")  # fresh: they settle
        i = _intake(tmp_path, max_pending=2)
        i.rescan()
        assert i.depth() == 2 and i.overflowed


class TestHold:
    def test_a_held_path_ignores_its_rename_event_until_settled(self, tmp_path: Path) -> None:
        """A file the daemon gave back is taken only once unchanged for the delay, even when
        its rename into the inbox arrives as a 'complete' event."""
        clock = FakeClock()
        i = _intake(tmp_path, clock)
        path = tmp_path / "a.dcm"
        path.write_bytes(b"x" * 10)
        i.hold(str(path), os.lstat(path), delay=2.0)
        i.offer(str(path), complete=True)
        i.tick()
        assert i.take() is None
        clock.now += 2.5
        i.tick()
        assert i.take() == str(path)
