"""Reading inputs safely and writing outputs durably."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dcmwatch import store
from dcmwatch.errors import EmptyFileError, NotRegularFileError, TooLargeError, TransientError


class TestReadInput:
    def test_reads_a_regular_file(self, tmp_path: Path) -> None:
        """A plain file is read whole."""
        f = tmp_path / "a.dcm"
        f.write_bytes(b"x" * 70_000)
        got = store.read_input(f, max_bytes=1 << 20)
        assert got.data == b"x" * 70_000 and got.size == 70_000

    def test_symlink_is_never_followed(self, tmp_path: Path) -> None:
        """A symlink (here to a secret outside the inbox) is refused, not read."""
        secret = tmp_path / "secret"
        secret.write_bytes(b"top secret")
        link = tmp_path / "link.dcm"
        link.symlink_to(secret)
        with pytest.raises(NotRegularFileError):
            store.read_input(link, max_bytes=1 << 20)

    def test_fifo_does_not_block(self, tmp_path: Path) -> None:
        """A FIFO is refused at once instead of blocking the worker forever."""
        fifo = tmp_path / "pipe.dcm"
        os.mkfifo(fifo)
        with pytest.raises(NotRegularFileError):
            store.read_input(fifo, max_bytes=1 << 20)

    def test_hardlink_refused_unless_allowed(self, tmp_path: Path) -> None:
        """A hard link to another file is refused in the inbox, allowed in batch mode."""
        orig = tmp_path / "orig"
        orig.write_bytes(b"data")
        link = tmp_path / "hard.dcm"
        os.link(orig, link)
        with pytest.raises(NotRegularFileError):
            store.read_input(link, max_bytes=1 << 20)
        assert store.read_input(link, max_bytes=1 << 20, allow_hardlinks=True).data == b"data"

    def test_empty_and_too_large(self, tmp_path: Path) -> None:
        """Empty and oversize files are refused with their own reasons."""
        empty = tmp_path / "e"
        empty.write_bytes(b"")
        with pytest.raises(EmptyFileError):
            store.read_input(empty, max_bytes=10)
        big = tmp_path / "b"
        big.write_bytes(b"x" * 11)
        with pytest.raises(TooLargeError):
            store.read_input(big, max_bytes=10)


class TestWriteDurable:
    def test_writes_creates_folders_and_replaces(self, tmp_path: Path) -> None:
        """The output appears whole at its final name; no temporary file is left."""
        dest = tmp_path / "a" / "b" / "c.dcm"
        store.write_durable(dest, b"one", tag="t1")
        store.write_durable(dest, b"two", tag="t1")
        assert dest.read_bytes() == b"two"
        assert sorted(p.name for p in dest.parent.iterdir()) == ["c.dcm"]
        assert (dest.stat().st_mode & 0o777) == 0o640

    def test_stale_temp_from_a_killed_worker_is_replaced(self, tmp_path: Path) -> None:
        """A partial temp file left by a killed worker does not block the retry."""
        dest = tmp_path / "c.dcm"
        (tmp_path / f".t1{store.TMP_SUFFIX}").write_bytes(b"partial")
        store.write_durable(dest, b"full", tag="t1")
        assert [p.name for p in tmp_path.iterdir()] == ["c.dcm"]

    def test_disk_full_is_transient(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """ENOSPC is a transient error (retry later), never a quarantine, and leaves no temp."""
        import errno

        def full(fd: int, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", full)
        with pytest.raises(TransientError, match="ENOSPC"):
            store.write_durable(tmp_path / "x.dcm", b"data", tag="t")
        assert list(tmp_path.iterdir()) == []


class TestQuarantine:
    def test_moves_original_and_writes_sidecar(self, tmp_path: Path) -> None:
        """The untouched original and a JSON sidecar land side by side."""
        work = tmp_path / "work.dcm"
        work.write_bytes(b"garbage")
        q = tmp_path / "q"
        store.quarantine(work, q, "id1", {"reason": "not_dicom"})
        assert (q / "id1.dcm").read_bytes() == b"garbage"
        assert '"reason": "not_dicom"' in (q / "id1.json").read_text()
        assert not work.exists()

    def test_keep_source_copies(self, tmp_path: Path) -> None:
        """Batch mode copies into quarantine and never touches its input."""
        src = tmp_path / "src.dcm"
        src.write_bytes(b"garbage")
        store.quarantine(src, tmp_path / "q", "id2", {}, keep_source=True)
        assert src.read_bytes() == b"garbage"
        assert (tmp_path / "q" / "id2.dcm").read_bytes() == b"garbage"


class TestClaim:
    def test_unclaim_never_clobbers_a_new_file(self, tmp_path: Path) -> None:
        """Giving a file back fails (and keeps both) when a new file took its name."""
        src, work = tmp_path / "in.dcm", tmp_path / "w.dcm"
        src.write_bytes(b"old")
        store.claim(src, work)
        src.write_bytes(b"new")
        assert store.unclaim(work, src) is False
        assert src.read_bytes() == b"new" and work.read_bytes() == b"old"
        src.unlink()
        assert store.unclaim(work, src) is True
        assert src.read_bytes() == b"old" and not work.exists()


class TestTwoHalves:
    def test_unsynced_output_is_invisible_until_committed(self, tmp_path: Path) -> None:
        """The daemon's workers write the hidden temp file only; `commit` makes it the output."""
        dest = tmp_path / "s" / "c.dcm"
        tmp = store.write_unsynced(dest, b"data", tag="t1")
        assert tmp.parent == dest.parent and tmp.name.startswith(".")
        assert not dest.exists()
        store.commit(tmp, dest)
        assert dest.read_bytes() == b"data"
        assert [p.name for p in dest.parent.iterdir()] == ["c.dcm"]

    def test_failed_commit_is_transient_and_leaves_no_temp(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import errno

        dest = tmp_path / "c.dcm"
        tmp = store.write_unsynced(dest, b"data", tag="t1")

        def broken(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(os, "fsync", broken)
        with pytest.raises(TransientError, match="EIO"):
            store.commit(tmp, dest)
        assert list(tmp_path.iterdir()) == []
