"""The daemon end to end: `python -m dcmwatch run` on temporary folders, files dropped in."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from dcmwatch.testing import MARKERS, ct_series_bytes, find_markers, write_series
from tests.conftest import DaemonProcess, outputs, write_config
from tests.integration.test_notify import worker_pids

pytestmark = pytest.mark.integration

SMALL = {"rows": 64, "columns": 64}


def phi_name(i: int) -> str:
    """Input names carry PHI, as scanners' names often do."""
    return f"{MARKERS.patient_name.split('^')[0]}_{MARKERS.patient_id}_{i:03d}.dcm"


def assert_no_phi(daemon: DaemonProcess) -> None:
    """No marker value, and no input file name, anywhere in logs, sidecars or output paths."""
    texts = {"log": daemon.log_text()}
    for sidecar in daemon.quarantine.glob("*.json"):
        texts[f"sidecar {sidecar.name}"] = sidecar.read_text()
    ours = (daemon.outbox, daemon.quarantine, daemon.state)
    texts["paths"] = "\n".join(str(p) for folder in ours for p in folder.rglob("*"))
    for where, text in texts.items():
        assert find_markers(text) == [], f"PHI marker in {where}"
    for out in outputs(daemon.outbox):
        assert find_markers(out.read_bytes()) == [], f"PHI marker in output {out.name}"


class TestIntake:
    def test_copied_files_come_out_deidentified(self, daemon: DaemonProcess, tmp_path: Path) -> None:
        """Files copied into the inbox appear de-identified in the outbox and leave the inbox."""
        daemon.start()
        src = tmp_path / "scanner"
        files = write_series(src, 5, **SMALL)
        for f in files:
            # copyfile, as `cp` does: shutil.copy also chmods the copy after closing it, and the
            # daemon takes a closed file at once, so that chmod could find it gone.
            shutil.copyfile(f, daemon.inbox / f.name)
        outs = daemon.wait_outputs(5)
        daemon.wait_event("file.processed", count=5)
        assert len(outs) == 5
        for out in outs:
            ds = pydicom.dcmread(out)
            assert ds.PatientIdentityRemoved == "YES"
            assert ds.PatientName != MARKERS.patient_name
        assert _inbox_files(daemon) == []
        assert daemon.stop() == 0
        assert_no_phi(daemon)

    def test_temp_name_then_rename(self, daemon: DaemonProcess) -> None:
        """rsync/scp style: written under a hidden .part name, taken only after the rename."""
        daemon.start()
        data = ct_series_bytes(1, **SMALL)[0]
        part = daemon.inbox / f".{phi_name(0)}.part"
        with part.open("wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            time.sleep(0.5)  # a close here would not count: the name is ignored
            fh.write(data[len(data) // 2 :])
        time.sleep(0.3)
        assert outputs(daemon.outbox) == []
        part.rename(daemon.inbox / phi_name(0))
        daemon.wait_outputs(1)
        assert list(daemon.quarantine.glob("*.dcm")) == []
        assert daemon.stop() == 0
        assert_no_phi(daemon)

    def test_slow_writer_that_closes_and_reopens(self, daemon: DaemonProcess) -> None:
        """A writer that closes half-way and reopens (SMB clients do) is not quarantined."""
        daemon.start()
        data = ct_series_bytes(1, **SMALL)[0]
        target = daemon.inbox / phi_name(1)
        with target.open("wb") as fh:
            fh.write(data[: len(data) // 3])
        daemon.wait_event("file.deferred", timeout=10)
        with target.open("ab") as fh:
            fh.write(data[len(data) // 3 :])
        outs = daemon.wait_outputs(1)
        assert len(outs) == 1
        assert list(daemon.quarantine.glob("*")) == []
        assert daemon.stop() == 0

    def test_a_deferred_file_keeps_its_claim_id(self, daemon: DaemonProcess) -> None:
        """Given back while still being written, then claimed again: one claim id from its first
        `file.received` to `file.processed`, and one journal row that ends `processed`."""
        daemon.start()
        data = ct_series_bytes(1, **SMALL)[0]
        target = daemon.inbox / phi_name(2)
        with target.open("wb") as fh:
            fh.write(data[: len(data) // 3])
        deferred = daemon.wait_event("file.deferred", timeout=10)
        with target.open("ab") as fh:
            fh.write(data[len(data) // 3 :])
        processed = daemon.wait_event("file.processed")
        assert daemon.stop() == 0
        received = {e["claim_id"] for e in daemon.events() if e.get("event") == "file.received"}
        assert received == {deferred[0]["claim_id"]} == {processed[0]["claim_id"]}
        with sqlite3.connect(daemon.state / "journal.sqlite3") as db:
            rows = db.execute("SELECT claim_id, outcome FROM files").fetchall()
        assert rows == [(processed[0]["claim_id"], "processed")]

    def test_preexisting_files_processed_at_start(self, tmp_path: Path, config_file: Path) -> None:
        """Files already waiting in the inbox when the daemon starts are processed."""
        d = DaemonProcess(config_file, tmp_path)
        write_series(d.inbox, 4, **SMALL)
        sub = d.inbox / "nested" / "deeper"
        write_series(sub, 2, seed=7, **SMALL)
        try:
            d.start()
            assert len(d.wait_outputs(6)) == 6
            assert d.stop() == 0
        finally:
            d.kill()
        assert _inbox_files(d) == []


class TestBadInput:
    def test_bad_files_are_quarantined_with_reasons(self, daemon: DaemonProcess) -> None:
        """Empty, non-DICOM and truncated files go to quarantine with a JSON reason; the daemon
        keeps going and processes a good file after them."""
        daemon.start()
        data = ct_series_bytes(1, **SMALL)[0]
        (daemon.inbox / phi_name(10)).write_bytes(b"")
        (daemon.inbox / phi_name(11)).write_bytes(os.urandom(4000))
        old = time.time() - 3600
        truncated = daemon.inbox / phi_name(12)
        truncated.write_bytes(data[: len(data) - 777])
        os.utime(truncated, (old, old))  # long finished: truncated for good
        # a file written long ago is picked up by the rescan, not by an event
        daemon.wait_event("file.quarantined", count=2)
        d2 = daemon.inbox / phi_name(13)
        d2.write_bytes(data)
        daemon.wait_outputs(1)
        events = daemon.wait_event("file.quarantined", count=3, timeout=15)
        reasons = sorted(e["reason"] for e in events)
        assert reasons == ["empty", "not_dicom", "truncated"]
        sidecars = sorted(json.loads(p.read_text())["reason"] for p in daemon.quarantine.glob("*.json"))
        assert sidecars == reasons
        originals = sorted(p.stat().st_size for p in daemon.quarantine.glob("*.dcm"))
        assert originals == sorted([0, 4000, len(data) - 777])
        assert daemon.proc is not None and daemon.proc.poll() is None
        assert daemon.stop() == 0
        assert_no_phi(daemon)


class TestLifecycle:
    def test_sigterm_exits_zero_quickly(self, daemon: DaemonProcess) -> None:
        """SIGTERM stops the daemon with exit code 0 within seconds."""
        daemon.start()
        t0 = time.monotonic()
        assert daemon.stop(signal.SIGTERM, timeout=10) == 0
        assert time.monotonic() - t0 < 10
        names = [e["event"] for e in daemon.events()]
        assert "daemon.stopping" in names and names[-1] == "daemon.stopped"

    def test_kill9_then_restart_processes_each_file_once(self, daemon: DaemonProcess) -> None:
        """Work claimed before a kill -9 is finished after the restart, once.

        The kill must find claimed work unfinished: 40 small files take well under 0.1 s, so a
        kill timed from "3 processed" often came after the last one (the test then proved
        nothing). Here the first ten are done, then the workers are stopped, so the claims
        the daemon makes after that are still in its work area when it dies."""
        daemon.start()
        write_series(daemon.inbox, 10, **SMALL)
        daemon.wait_event("file.processed", count=10, timeout=30)  # none in flight: room
        assert daemon.proc is not None
        workers = worker_pids(daemon.proc.pid)
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)  # SIGKILL (PR_SET_PDEATHSIG) still ends them
        before = daemon.mark()
        write_series(daemon.inbox, 30, seed=3, **SMALL)
        daemon.wait_event("file.received", after=before, timeout=30)
        daemon.kill()
        daemon.start()
        assert daemon.wait_event("daemon.started", after=before)[0]["recovered"] >= 1
        outs = daemon.wait_outputs(40)
        time.sleep(0.5)
        assert len(outputs(daemon.outbox)) == 40
        assert daemon.stop() == 0
        assert _inbox_files(daemon) == []
        assert list((daemon.state / "work").iterdir()) == []
        tmp = [p for p in daemon.outbox.rglob("*") if p.is_file() and p not in outs]
        assert tmp == []

    def test_sighup_with_invalid_config_keeps_running(self, daemon: DaemonProcess) -> None:
        """A broken config on SIGHUP is reported and the old one kept."""
        daemon.start()
        good = daemon.config.read_text()
        daemon.config.write_text(good + "\n[bogus]\nx = 1\n")
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        ev = daemon.wait_event("config.reload_failed")
        assert "bogus" in ev[0]["message"]
        daemon.config.write_text(good)
        write_series(daemon.inbox, 1, **SMALL)
        daemon.wait_outputs(1)
        assert daemon.stop() == 0


class TestBatchEquivalence:
    def test_process_gives_the_same_outputs_as_the_daemon(self, tmp_path: Path) -> None:
        """`dcmwatch process` on a mixed folder writes byte-identical outputs to the daemon's,
        quarantines the same bad files, exits 1, and leaves its inputs untouched."""
        src = tmp_path / "src"
        write_series(src, 6, **SMALL)
        (src / "junk.dcm").write_bytes(b"not dicom at all" * 10)
        (src / "empty.dcm").write_bytes(b"")
        before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}

        batch_root = tmp_path / "batch"
        batch_root.mkdir()
        cfg = write_config(batch_root)
        res = subprocess.run(
            [sys.executable, "-m", "dcmwatch", "process", "--config", str(cfg), str(src)],
            capture_output=True, timeout=120, check=False,
        )
        assert res.returncode == 1, res.stderr.decode()[-2000:]
        assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before

        daemon_root = tmp_path / "daemon"
        daemon_root.mkdir()
        d = DaemonProcess(write_config(daemon_root), daemon_root)
        shutil.copytree(src, d.inbox)
        try:
            d.start()
            d.wait_outputs(6)
            d.wait_event("file.quarantined", count=2)
            assert d.stop() == 0
        finally:
            d.kill()

        def tree(root: Path) -> dict[str, bytes]:
            return {str(p.relative_to(root)): p.read_bytes() for p in outputs(root)}

        assert tree(batch_root / "outbox") == tree(d.outbox)
        assert len(tree(d.outbox)) == 6
        assert len(list((batch_root / "quarantine").glob("*.json"))) == 2
        assert find_markers(res.stdout + res.stderr) == []


def _inbox_files(d: DaemonProcess) -> list[Path]:
    return [p for p in d.inbox.rglob("*") if p.is_file() and ".dcmwatch-work" not in p.parts]


class TestMore:
    def test_polling_observer_takes_settled_files(self, tmp_path: Path) -> None:
        """With the polling observer (NFS/SMB), files are taken once size and mtime settle."""
        d = DaemonProcess(write_config(tmp_path), tmp_path)
        text = d.config.read_text().replace(
            "[watch]\nsettle_seconds = 1.0", '[watch]\nsettle_seconds = 1.0\nobserver = "polling"\npoll_seconds = 0.2'
        )
        d.config.write_text(text)
        try:
            d.start()
            assert d.wait_event("daemon.started")[0]["observer"] == "polling"
            write_series(d.inbox, 3, **SMALL)
            assert len(d.wait_outputs(3)) == 3
            assert d.stop() == 0
        finally:
            d.kill()

    def test_sigterm_leaves_unstarted_files_in_the_inbox(self, daemon: DaemonProcess) -> None:
        """On SIGTERM every file is either out or still in the inbox: none lost, none stuck."""
        n = 60
        write_series(daemon.inbox, n, **SMALL)
        daemon.start(wait_ready=False)
        daemon.wait_event("file.processed", count=2, timeout=30)
        assert daemon.stop() == 0
        out, left = len(outputs(daemon.outbox)), len(_inbox_files(daemon))
        assert out + left == n
        assert list((daemon.state / "work").iterdir()) == []

    def test_journal_and_heartbeat(self, daemon: DaemonProcess) -> None:
        """Each input has a journal row (hash, outcome, output, timing); heartbeats report."""
        import sqlite3

        daemon.start()
        write_series(daemon.inbox, 2, **SMALL)
        (daemon.inbox / "bad.dcm").write_bytes(b"x" * 300)
        daemon.wait_event("file.processed", count=2)
        daemon.wait_event("file.quarantined")
        # A beat after all three: the first with processed >= 2 may come before the bad file
        # is quarantined (or even claimed), and then rightly says quarantined 0, depth 1.
        done = daemon.mark()
        beat = daemon.wait_event("heartbeat", after=done, timeout=10)[0]
        assert beat["processed"] == 2 and beat["quarantined"] == 1 and beat["queue_depth"] == 0
        assert daemon.stop() == 0
        db = sqlite3.connect(daemon.state / "journal.sqlite3")
        rows = db.execute("SELECT outcome, sha256, output, duration_ms FROM files").fetchall()
        assert sorted(r[0] for r in rows) == ["processed", "processed", "quarantined"]
        for outcome, sha, output, ms in rows:
            if outcome == "processed":
                assert len(sha) == 64 and output.endswith(".dcm") and ms > 0

    def test_archive_keeps_the_original(self, tmp_path: Path) -> None:
        """on_success = "archive" keeps the untouched input under the state folder."""
        cfg = write_config(tmp_path)
        cfg.write_text(cfg.read_text() + '\n[output]\non_success = "archive"\n')
        d = DaemonProcess(cfg, tmp_path)
        files = write_series(tmp_path / "src", 2, **SMALL)
        try:
            d.start()
            for f in files:
                shutil.copyfile(f, d.inbox / f.name)  # no chmod after close (see above)
            d.wait_outputs(2)
            d.wait_event("file.processed", count=2)
            assert d.stop() == 0
        finally:
            d.kill()
        archived = sorted(p.read_bytes() for p in (d.state / "archive").rglob("*.dcm"))
        assert archived == sorted(f.read_bytes() for f in files)


class TestWorkerCrash:
    def test_killed_worker_loses_nothing_and_blames_no_one(self, daemon: DaemonProcess) -> None:
        """SIGKILL of the workers mid-stream: the pool is replaced, every file comes out once,
        nothing is quarantined for a crash it did not cause."""
        n = 600  # seconds of work: the workers are stopped long before the stream ends
        write_series(daemon.inbox, n, rows=256, columns=256)
        daemon.start(wait_ready=False)
        daemon.wait_event("file.processed", count=2, timeout=30)
        assert daemon.proc is not None
        kids = subprocess.run(["pgrep", "-P", str(daemon.proc.pid)], capture_output=True,
                              text=True, check=False).stdout.split()
        workers = [int(k) for k in kids
                   if "resource_tracker" not in Path(f"/proc/{k}/cmdline").read_text()]
        assert workers
        # Stopped, every worker keeps the files it was handed; then each is killed. One alone
        # could be a worker the pool was retiring, whose death costs nothing and breaks nothing.
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        assert len(outputs(daemon.outbox)) < n, "the stream ended before the kill: raise n"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        daemon.wait_event("worker.crashed", timeout=20)
        assert len(daemon.wait_outputs(n, timeout=120)) == n
        assert daemon.stop() == 0
        assert list(daemon.quarantine.glob("*")) == []
        assert _inbox_files(daemon) == []


class TestPixelRules:
    def test_daemon_applies_a_ct_rule(self, tmp_path: Path) -> None:
        """A configured CT rule (HU threshold + mask) is applied by the daemon and logged."""
        import numpy as np

        cfg = write_config(tmp_path)
        cfg.write_text(cfg.read_text() + """
[[rules]]
name = "ct-banner"
[rules.match]
Modality = "CT"
[[rules.actions]]
type = "hu_threshold"
below = -500
fill_hu = -1000
[[rules.actions]]
type = "mask"
rects = [[0, 0, 16, 8]]
fill_hu = -1000
""")
        d = DaemonProcess(cfg, tmp_path)
        try:
            d.start()
            write_series(d.inbox, 1, **SMALL)
            out = d.wait_outputs(1)[0]
            ev = d.wait_event("file.processed")[0]
            assert d.stop() == 0
        finally:
            d.kill()
        assert ev["rules"] == ["ct-banner"]
        ds = pydicom.dcmread(out)
        hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert (hu[:8, :16] == -1000).all()
        assert hu.min() >= -1000 and not ((hu > -1000) & (hu < -500)).any()
        assert np.count_nonzero(hu > -500) > 0


class TestReload:
    def test_sighup_applies_a_valid_config_to_new_files(self, daemon: DaemonProcess) -> None:
        """SIGHUP with a valid change (pseudonym prefix) reaches the workers for later files."""
        daemon.start()
        write_series(daemon.inbox, 1, **SMALL)
        first = daemon.wait_outputs(1)[0]
        daemon.config.write_text(
            daemon.config.read_text().replace('[deid]\n', '[deid]\npseudonym_prefix = "SITEB"\n')
        )
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_event("config.reloaded")
        write_series(daemon.inbox, 1, seed=3, **SMALL)
        outs = daemon.wait_outputs(2)
        assert daemon.stop() == 0
        second = next(p for p in outs if p != first)
        assert not str(pydicom.dcmread(first).PatientID).startswith("SITEB")
        assert str(pydicom.dcmread(second).PatientID).startswith("SITEB")
