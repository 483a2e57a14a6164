"""Faults outside dcmwatch: a full or read-only outbox, a vanished inbox, a locked or corrupt
state database, a kernel that drops inotify events. No file may be lost, transient failures are
retried with back-off and never quarantined, and the log says what happened."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcmwatch.testing import write_series
from tests.conftest import DaemonProcess, outputs, write_config
from tests.integration.test_daemon import assert_no_phi

pytestmark = pytest.mark.integration

TINY = {"rows": 16, "columns": 16}


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path(f"/tmp/dcmwatch-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True, check=False).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=False)
        return ok
    finally:
        probe.rmdir()


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and tmpfs mounts")


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", str(where)],
                   check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


#: The tiny tmpfs outboxes have less free space than the default disk-low threshold.
NO_SPACE_PAUSE = "[limits]\nmin_free_mb = 0\n"


def _retries(d: DaemonProcess) -> list[dict[str, object]]:
    return [e for e in d.events() if e.get("event") == "file.retry"]


@needs_mount
def test_outbox_full_is_retried_with_backoff_until_space_returns(tmp_path: Path) -> None:
    """ENOSPC: the files wait (file.retry, growing delays), none is quarantined, and all come
    out once space is freed. The disk-low pause (`limits.min_free_mb`) would keep the files in
    the inbox before any write failed; it is off here so the write path itself is tested."""
    cfg = write_config(tmp_path, NO_SPACE_PAUSE)
    with tmpfs(tmp_path / "outbox", "256k") as outbox:
        filler = outbox / ".filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
        d = DaemonProcess(cfg, tmp_path)
        try:
            d.start()
            write_series(d.inbox, 5, **TINY)
            d.wait_event("file.retry", count=10, timeout=60,
                         where=lambda e: e.get("message", "").endswith("(ENOSPC)"))
            assert outputs(outbox) == []
            assert list(d.quarantine.glob("*")) == []
            by_claim: dict[str, list[float]] = {}
            for e in _retries(d):
                by_claim.setdefault(str(e["claim_id"]), []).append(float(e["retry_in_s"]))
            delays = max(by_claim.values(), key=len)
            assert delays == sorted(delays) and delays[-1] > delays[0], delays  # back-off
            filler.unlink()
            assert len(d.wait_outputs(5, timeout=60)) == 5
            assert d.stop() == 0
        finally:
            d.kill()
        assert list(d.quarantine.glob("*")) == []
        assert list(outbox.rglob(".*dcmwatch-tmp")) == []
        assert_no_phi(d)


@needs_mount
def test_outbox_read_only_is_retried_until_writable(tmp_path: Path) -> None:
    """EROFS: same promise as a full disk."""
    cfg = write_config(tmp_path, NO_SPACE_PAUSE)
    with tmpfs(tmp_path / "outbox", "8m") as outbox:
        subprocess.run(["mount", "-o", "remount,ro", str(outbox)], check=True)
        d = DaemonProcess(cfg, tmp_path)
        try:
            d.start()
            write_series(d.inbox, 3, **TINY)
            d.wait_event("file.retry", count=3, timeout=60,
                         where=lambda e: e.get("message", "").endswith("(EROFS)"))
            assert list(d.quarantine.glob("*")) == []
            subprocess.run(["mount", "-o", "remount,rw", str(outbox)], check=True)
            assert len(d.wait_outputs(3, timeout=60)) == 3
            assert d.stop() == 0
        finally:
            d.kill()
        assert list(d.quarantine.glob("*")) == []
        assert_no_phi(d)


def _check_config(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dcmwatch", "check-config", "--config", str(cfg)],
                          check=False, capture_output=True, text=True, timeout=60)


@needs_mount
def test_check_config_warns_of_a_read_only_outbox_that_run_would_retry(tmp_path: Path) -> None:
    """check-config agrees with run: a read-only outbox is a warning (run starts and retries
    each write, the test above), not a refusal; a folder that cannot be created is refused."""
    cfg = write_config(tmp_path)
    with tmpfs(tmp_path / "outbox", "1m") as outbox:
        subprocess.run(["mount", "-o", "remount,ro", str(outbox)], check=True)
        done = _check_config(cfg)
        assert done.returncode == 0, done.stderr
        assert "warning: " in done.stderr and "paths.outbox: the folder is not writable" in done.stderr
        assert "configuration is valid" in done.stderr
        cfg.write_text(cfg.read_text().replace('outbox = "outbox"', 'outbox = "outbox/deeper"'))
        done = _check_config(cfg)
        assert done.returncode == 3, done.stderr
        assert "paths.outbox: cannot be created" in done.stderr


def test_inbox_deleted_and_recreated(tmp_path: Path) -> None:
    """The inbox vanishes under the daemon and comes back: watching resumes, files flow."""
    cfg = write_config(tmp_path)
    d = DaemonProcess(cfg, tmp_path)
    try:
        d.start()
        write_series(d.inbox, 2, **TINY)
        d.wait_outputs(2)
        shutil.rmtree(d.inbox)
        time.sleep(1.0)
        d.inbox.mkdir(exist_ok=True)
        write_series(d.inbox, 3, seed=5, **TINY)
        assert len(d.wait_outputs(5, timeout=60)) == 5
        assert d.proc is not None and d.proc.poll() is None
        assert d.stop() == 0
    finally:
        d.kill()
    assert_no_phi(d)


def test_corrupt_state_database_is_moved_aside(tmp_path: Path) -> None:
    """A journal that is not a database: moved aside (kept for audit), a new one started, an
    event says so, and files are processed."""
    cfg = write_config(tmp_path)
    d = DaemonProcess(cfg, tmp_path)
    d.state.mkdir()
    (d.state / "journal.sqlite3").write_bytes(b"this is not a database" * 100)
    try:
        d.start()
        ev = d.wait_event("journal.corrupt")
        assert (d.state / ev[0]["moved_to"]).exists()
        write_series(d.inbox, 2, **TINY)
        d.wait_outputs(2)
        assert d.stop() == 0
    finally:
        d.kill()
    db = sqlite3.connect(d.state / "journal.sqlite3")
    assert db.execute("SELECT count(*) FROM files WHERE outcome='processed'").fetchone()[0] == 2
    db.close()
    assert_no_phi(d)


def test_state_database_locked(tmp_path: Path) -> None:
    """Locked at start-up: the daemon refuses clearly (daemon.failed, exit 3). Locked for a few
    seconds while running: it waits, loses nothing."""
    cfg = write_config(tmp_path)
    d = DaemonProcess(cfg, tmp_path)
    d.start()
    assert d.stop() == 0
    holder = sqlite3.connect(d.state / "journal.sqlite3", isolation_level=None,
                             check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        d2 = DaemonProcess(cfg, tmp_path)
        d2.start(wait_ready=False)
        assert d2.proc is not None
        assert d2.proc.wait(60) == 3
        failed = d2.wait_event("daemon.failed")
        assert failed[-1]["reason"] == "journal"
        d2.stop()
    finally:
        holder.execute("ROLLBACK")

    d3 = DaemonProcess(cfg, tmp_path)
    try:
        d3.start(wait_ready=False)  # one log file for all three: the second start counts
        d3.wait_event("daemon.started", count=2, timeout=30)
        holder.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(3.0, lambda: holder.execute("ROLLBACK"))
        release.start()
        write_series(d3.inbox, 4, **TINY)
        assert len(d3.wait_outputs(4, timeout=60)) == 4
        release.join()
        assert d3.stop() == 0
    finally:
        d3.kill()
        holder.close()
    assert list(d3.quarantine.glob("*")) == []
    assert_no_phi(d3)


QUEUED = Path("/proc/sys/fs/inotify/max_queued_events")


def _can_lower_inotify_queue() -> bool:
    return os.geteuid() == 0 and os.access(QUEUED, os.W_OK)


@pytest.mark.skipif(not _can_lower_inotify_queue(), reason="needs a writable max_queued_events")
def test_inotify_overflow_is_noticed_and_rescanned(tmp_path: Path) -> None:
    """A burst beyond the kernel's inotify queue: events are lost, watchdog says so in a log
    record only; the daemon notices (watch.overflow), rescans and takes every file, long before
    the periodic rescan (set to 10 minutes here) would have."""
    n = 1500
    cfg = write_config(tmp_path, "")
    text = cfg.read_text().replace("rescan_seconds = 5", "rescan_seconds = 600")
    cfg.write_text(text)
    staging = tmp_path / "staging"
    write_series(staging, n, **TINY)
    old_mtime = time.time() - 3600
    for p in staging.iterdir():
        os.utime(p, (old_mtime, old_mtime))
    d = DaemonProcess(cfg, tmp_path)
    original = QUEUED.read_text()
    try:
        # The limit is read when an inotify instance is created: lowered only while this
        # daemon starts, so other processes on the machine are not affected after.
        QUEUED.write_text("16\n")
        try:
            d.start()
        finally:
            QUEUED.write_text(original)
        d.inbox.mkdir(exist_ok=True)
        for p in sorted(staging.iterdir()):
            os.rename(p, d.inbox / p.name)
        d.wait_event("watch.overflow", timeout=30)
        assert len(d.wait_outputs(n, timeout=240)) == n
        assert d.stop() == 0
    finally:
        QUEUED.write_text(original)
        d.kill()
    assert_no_phi(d)


class UnprivilegedRootDaemon(DaemonProcess):
    """Root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH: file modes bite again, as they do
    for the service's own user, while the interpreter (under /root) stays readable."""

    def start(self, wait_ready: bool = True) -> DaemonProcess:
        import sys

        self._log_fh = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DCMWATCH")}
        self.proc = subprocess.Popen(
            ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m",
             "dcmwatch", "run", "--config", str(self.config)],
            stdout=self._log_fh, stderr=self._log_fh, cwd=self.root, env=env,
        )
        if wait_ready:
            self.wait_event("daemon.started", timeout=30)
            self.wait_event("inbox.rescan", timeout=30)
        return self


def _can_drop_dac_override() -> bool:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    probe = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


needs_setpriv = pytest.mark.skipif(
    not _can_drop_dac_override(),
    reason="needs root and setpriv to drop CAP_DAC_OVERRIDE (chmod does not bite root)",
)


@pytest.mark.skipif(not _can_drop_dac_override(), reason="needs root and setpriv")
def test_check_config_reports_a_closed_state_folder_without_a_traceback(tmp_path: Path) -> None:
    """A folder above the state folder that this user may not enter (0700, another owner) is one
    problem named by its key, exit 3, exactly as run would stop: never a Python traceback."""
    cfg = write_config(tmp_path)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    os.chown(closed, 65534, 65534)
    cfg.write_text(cfg.read_text().replace('state = "state"', 'state = "closed/deeper/state"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCMWATCH")}
    done = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                           sys.executable, "-m", "dcmwatch", "check-config", "--config", str(cfg)],
                          check=False, capture_output=True, text=True, timeout=60, env=env,
                          cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 3, done.stderr
    problems = [line for line in done.stderr.splitlines() if ".toml: " in line]
    assert [p.split(".toml: ")[1] for p in problems] == [
        "paths.state: cannot look at the folder (Permission denied)"], done.stderr


@needs_setpriv
def test_eacces_on_outbox_and_input_is_retried_never_quarantined(tmp_path: Path) -> None:
    """EACCES writing the outbox, and an input the daemon may not read: both transient (an
    operator fixes a mode), retried with back-off, then processed; nothing quarantined."""
    cfg = write_config(tmp_path)
    d = UnprivilegedRootDaemon(cfg, tmp_path)
    d.outbox.mkdir(mode=0o500)
    try:
        d.start()
        write_series(d.inbox, 2, **TINY)
        d.wait_event("file.retry", count=2, timeout=60,
                     where=lambda e: e.get("message", "").endswith("(EACCES)"))
        assert outputs(d.outbox) == []
        d.outbox.chmod(0o750)
        d.wait_outputs(2, timeout=60)
        d.wait_event("file.processed", count=2)

        unreadable = tmp_path / "unreadable.dcm"
        write_series(tmp_path / "src", 1, seed=3, **TINY)
        next((tmp_path / "src").iterdir()).rename(unreadable)
        unreadable.chmod(0o000)
        before = d.mark()
        os.rename(unreadable, d.inbox / "unreadable.dcm")
        # Its own retry: the first two may have retried again before the chmod above, and a
        # count of all EACCES retries would then be reached before this file is even claimed
        # (the chmod below would find no work file, and it would never be readable).
        d.wait_event("file.retry", timeout=60, after=before,
                     where=lambda e: e.get("message", "").endswith("(EACCES)"))
        for work in (d.state / "work").iterdir():
            work.chmod(0o640)
        d.wait_outputs(3, timeout=60)
        assert d.stop() == 0
    finally:
        d.kill()
    assert list(d.quarantine.glob("*")) == []
    assert_no_phi(d)
