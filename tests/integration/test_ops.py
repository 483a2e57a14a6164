"""Operating the daemon: disk-low back-pressure, retention, journal maintenance, requeue, status,
metrics and the rotating log file, each against a real `dcmwatch run` subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from dcmwatch.testing import MARKERS, ct_series_bytes, find_markers
from tests.conftest import DaemonProcess, outputs, write_config

pytestmark = pytest.mark.integration

SMALL = {"rows": 64, "columns": 64}


def phi_name(i: int) -> str:
    return f"{MARKERS.patient_name.split('^')[0]}_{MARKERS.patient_id}_{i:03d}.dcm"


def config_with(root: Path, **sections: str) -> Path:
    """The test config with keys added to its sections (or new sections appended)."""
    cfg = write_config(root)
    set_keys(cfg, **sections)
    return cfg


def set_keys(cfg: Path, **sections: str) -> None:
    text = cfg.read_text()
    for section, keys in sections.items():
        header = f"[{section}]\n"
        if header in text:
            text = text.replace(header, f"{header}{keys}\n", 1)
        else:
            text += f"\n{header}{keys}\n"
    cfg.write_text(text)


def replace(cfg: Path, old: str, new: str) -> None:
    text = cfg.read_text()
    assert old in text
    cfg.write_text(text.replace(old, new))


def drop(inbox: Path, n: int, *, seed: int = 0, start: int = 0) -> list[Path]:
    """Complete files under PHI-laden names, each renamed in as a careful sender would."""
    paths = []
    for i, blob in enumerate(ct_series_bytes(n, seed=seed, **SMALL)):
        tmp = inbox / f".{i}.part"
        tmp.write_bytes(blob)
        final = inbox / phi_name(start + i)
        tmp.rename(final)
        paths.append(final)
    return paths


def drop_bad(inbox: Path, i: int) -> Path:
    """Not DICOM, and its bytes and name full of PHI markers."""
    p = inbox / phi_name(900 + i)
    p.write_bytes((MARKERS.patient_name + MARKERS.patient_id + MARKERS.accession).encode() * 20)
    return p


def inbox_files(d: DaemonProcess) -> list[Path]:
    return sorted(p for p in d.inbox.iterdir() if p.is_file() and not p.name.startswith("."))


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCMWATCH")}
    return subprocess.run([sys.executable, "-m", "dcmwatch", *args, "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, check=False, env=env)


def assert_phi_free(text: str, where: str) -> None:
    assert find_markers(text) == [], f"PHI marker in {where}"
    assert MARKERS.patient_id not in text, where


class TestBackPressure:
    def test_disk_low_pauses_intake_and_sighup_resumes_it(self, tmp_path: Path) -> None:
        """Free space below `min_free_mb`: files stay in the inbox and intake.paused says why
        (folder role, free MiB); a reload with a lower threshold resumes it by itself."""
        cfg = config_with(tmp_path, limits="min_free_mb = 900000000")  # ~860 TiB: surely short
        d = DaemonProcess(cfg, tmp_path)
        try:
            d.start()
            paused = d.wait_event("intake.paused")[0]
            assert paused["reason"] == "disk_low" and paused["role"] in ("outbox", "state")
            assert paused["free_mb"] < paused["min_free_mb"]
            drop(d.inbox, 2)
            # seen, settled, not claimed (a rescan that saw them, not the start-up one)
            d.wait_event("inbox.rescan", where=lambda e: e["files"] >= 2, timeout=15)
            seen = d.mark()
            time.sleep(1.5)
            assert len(inbox_files(d)) == 2 and outputs(d.outbox) == []
            assert [e for e in d.events() if e.get("event") == "file.received"] == []
            # A heartbeat after that rescan: an earlier paused one may predate the drop.
            beat = d.wait_event("heartbeat", where=lambda e: e["intake_paused"], after=seen)[0]
            assert beat["queue_depth"] >= 2 and beat["outbox_free_mb"] > 0

            replace(cfg, "min_free_mb = 900000000", "min_free_mb = 0")
            assert d.proc is not None
            d.proc.send_signal(signal.SIGHUP)
            d.wait_event("config.reloaded")
            resumed = d.wait_event("intake.resumed")[0]
            assert resumed["role"] == paused["role"]
            d.wait_outputs(2)
            assert d.stop() == 0
        finally:
            d.kill()
        assert inbox_files(d) == []
        assert_phi_free(d.log_text(), "log")


class TestRetentionAndJournal:
    def test_old_archive_and_quarantine_entries_are_purged(self, tmp_path: Path) -> None:
        """retention_days: archived inputs and quarantine entries (file and sidecar) older than
        the cutoff go, with a retention.purged event; journal maintenance prunes old rows and
        checkpoints the WAL; a job never stops the daemon."""
        cfg = config_with(
            tmp_path,
            output='on_success = "archive"',
            # Retention counts from the claim: 8.6 s leaves a loaded machine time to process
            # and archive both files before the count below (0.6 s under a CPU hog; 4.3 s was
            # a thin margin: the first could go before the second was archived). Journal rows
            # may go sooner.
            schedule="retention_days = 0.0001\nretention_seconds = 1\n"  # 8.6 s
                     "journal_keep_days = 0.00005\nmaintenance_seconds = 1",
        )
        d = DaemonProcess(cfg, tmp_path)
        try:
            d.start()
            drop(d.inbox, 2)
            drop_bad(d.inbox, 0)
            # an output is durable before its input is archived; file.processed says both are
            d.wait_event("file.processed", count=2)
            d.wait_event("file.quarantined")
            assert len(list((d.state / "archive").rglob("*.dcm"))) == 2
            assert len(list(d.quarantine.glob("*.dcm"))) == 1
            wait_sum(d, "retention.purged", "archived", 2, timeout=60)
            wait_sum(d, "retention.purged", "quarantined", 1, timeout=60)
            wait_sum(d, "journal.maintained", "pruned_files", 3)
            beats = wait_sum(d, "journal.maintained", "pruned_heartbeats", 1)
            assert all(e["checkpoint_busy"] == 0 for e in beats)
            assert list((d.state / "archive").rglob("*.dcm")) == []
            assert list(d.quarantine.iterdir()) == []
            # still running, still working after the jobs
            drop(d.inbox, 1, seed=5, start=10)
            d.wait_outputs(3)
            assert d.stop() == 0
        finally:
            d.kill()
        assert [e for e in d.events() if e.get("event") == "job.failed"] == []
        assert_phi_free(d.log_text(), "log")
        _jq_recipes_answer(d, tmp_path)


class TestRequeueAndStatus:
    def test_requeue_after_a_config_fix(self, tmp_path: Path) -> None:
        """Quarantined for a limit, limit raised (SIGHUP), `requeue --reason` puts them back while
        the daemon runs: named by quarantine id, sidecars gone, processed; `status` tells the
        story; no output of either command carries PHI."""
        cfg = config_with(tmp_path, limits="max_file_bytes = 2048")
        d = DaemonProcess(cfg, tmp_path)
        try:
            d.start()
            drop(d.inbox, 2)
            drop_bad(d.inbox, 0)
            d.wait_event("file.quarantined", count=3)
            ids = sorted(p.stem for p in d.quarantine.glob("*.dcm"))
            assert len(ids) == 3

            dry = cli(cfg, "requeue", "--reason", "too_large", "--dry-run")
            assert dry.returncode == 0, dry.stderr
            summary = _events(dry.stdout, "requeue.finished")[0]
            assert summary["requeued"] == 2 and summary["by_reason"] == {"too_large": 2}
            assert len(list(d.quarantine.glob("*.dcm"))) == 3

            replace(cfg, "max_file_bytes = 2048", "max_file_bytes = 2147483648")
            assert d.proc is not None
            d.proc.send_signal(signal.SIGHUP)
            d.wait_event("config.reloaded")

            res = cli(cfg, "requeue", "--reason", "too_large")
            assert res.returncode == 0, res.stderr
            requeued = _events(res.stdout, "file.requeued")
            assert len(requeued) == 2 and {e["reason"] for e in requeued} == {"too_large"}
            assert {e["claim_id"] for e in requeued} < set(ids)
            d.wait_outputs(2)
            d.wait_event("file.processed", count=2)
            # the not-DICOM one was left alone: other reason
            left = list(d.quarantine.glob("*"))
            assert sorted(p.suffix for p in left) == [".dcm", ".json"]
            assert left[0].stem not in {e["claim_id"] for e in requeued}
            # Two beats: a beat is logged before its journal row is written, the next one
            # only after (one thread), so `status` then surely reads a beat that counts them.
            d.wait_event("heartbeat", where=lambda e: e["processed"] >= 2, count=2)

            st = cli(cfg, "status", "--json")
            assert st.returncode == 0, st.stderr
            data = json.loads(st.stdout)
            table = cli(cfg, "status")
            assert table.returncode == 0, table.stderr
            assert d.stop() == 0
        finally:
            d.kill()
        day = data["outcomes"]["last_day"]
        # The history: three were quarantined, two of them requeued (and processed); one waits.
        assert day["processed"] == 2 and day["requeued"] == 2 and day["quarantined"] == 3
        assert data["quarantine_reasons"]["last_day"] == {"too_large": 2, "not_dicom": 1}
        assert data["queue"] == {"inbox": 0, "claimed": 0, "quarantine": 1}
        beat = data["heartbeat"]
        assert beat["processed"] >= 2 and beat["age_s"] < 30 and "oldest_queued_s" in beat
        assert "Quarantine reasons" in table.stdout and "not_dicom" in table.stdout
        for name, text in (("requeue", res.stdout + res.stderr), ("dry", dry.stdout + dry.stderr),
                           ("status", st.stdout + st.stderr),
                           ("table", table.stdout + table.stderr), ("log", d.log_text())):
            assert_phi_free(text, name)
            assert "ZZPHINAME" not in text

    def test_status_without_a_database_says_so(self, tmp_path: Path) -> None:
        """No daemon ever ran: a clear message and exit 3, and no database created."""
        cfg = write_config(tmp_path)
        res = cli(cfg, "status")
        assert res.returncode == 3
        assert "no state database" in res.stderr and "journal.sqlite3" in res.stderr
        assert not (tmp_path / "state" / "journal.sqlite3").exists()


class TestMetrics:
    def test_scrape_a_running_daemon(self, tmp_path: Path) -> None:
        """Counters by outcome and reason, the latency histogram, queue depth, utilisation and
        last-success age, from the daemon's own endpoint on a free port."""
        cfg = config_with(tmp_path, metrics="enabled = true\nport = 0")
        d = DaemonProcess(cfg, tmp_path)
        try:
            d.start()
            started = d.wait_event("metrics.started")[0]
            assert started["address"] == "127.0.0.1" and started["port"] > 0
            drop(d.inbox, 3)
            drop_bad(d.inbox, 0)
            d.wait_outputs(3)
            d.wait_event("file.processed", count=3)
            d.wait_event("file.quarantined")
            url = f"http://127.0.0.1:{started['port']}/metrics"
            with urllib.request.urlopen(url, timeout=10) as resp:
                text = resp.read().decode()
            assert d.stop() == 0
        finally:
            d.kill()
        m = _samples(text)
        assert m["dcmwatch_files_processed_total"] == 3
        assert m['dcmwatch_files_quarantined_total{reason="not_dicom"}'] == 1
        assert m["dcmwatch_latency_seconds_count"] == 3
        assert m["dcmwatch_latency_seconds_sum"] > 0
        assert m["dcmwatch_queue_depth"] == 0
        assert 0 <= m["dcmwatch_worker_utilisation"] <= 1
        assert 0 <= m["dcmwatch_last_success_age_seconds"] < 60
        assert_phi_free(text, "metrics")


class TestLogFile:
    def test_log_file_follows_logrotate(self, tmp_path: Path) -> None:
        """JSON lines in the file (mode 0640) as well as stdout; once the file is renamed away,
        new events land in a new file at the configured path."""
        (tmp_path / "logs").mkdir()
        cfg = config_with(tmp_path, log='file = "logs/dcmwatch.log"')
        log = tmp_path / "logs" / "dcmwatch.log"
        d = DaemonProcess(cfg, tmp_path)
        try:
            d.start()
            drop(d.inbox, 1)
            first = d.wait_event("file.processed")[0]["claim_id"]
            assert stat.S_IMODE(log.stat().st_mode) == 0o640
            log.rename(tmp_path / "logs" / "dcmwatch.log.1")
            drop(d.inbox, 1, seed=2, start=5)
            second = d.wait_event("file.processed", count=2)[1]["claim_id"]
            assert d.stop() == 0
        finally:
            d.kill()
        old = _file_events(tmp_path / "logs" / "dcmwatch.log.1")
        new = _file_events(log)
        assert "daemon.started" in [e["event"] for e in old]
        assert first in {e.get("claim_id") for e in old}
        assert second in {e.get("claim_id") for e in new}
        assert second not in {e.get("claim_id") for e in old}
        assert new[-1]["event"] == "daemon.stopped"
        assert stat.S_IMODE(log.stat().st_mode) == 0o640
        assert_phi_free(log.read_text() + (tmp_path / "logs" / "dcmwatch.log.1").read_text(),
                        "log file")


def _jq_recipes_answer(d: DaemonProcess, tmp_path: Path) -> None:
    """The `journalctl -o json | jq` queries of docs/monitoring.md run against this daemon's lines,
    wrapped as journald does (the JSON event as a string in MESSAGE)."""
    if shutil.which("jq") is None:
        pytest.skip("jq not installed")
    journal = tmp_path / "journal.json"
    with journal.open("w") as fh:
        for line in d.log_text().splitlines():
            fh.write(json.dumps({"MESSAGE": line, "_SYSTEMD_UNIT": "dcmwatch.service"}) + "\n")
    page = (Path(__file__).parents[2] / "docs" / "monitoring.md").read_text()
    section = page.split("## Watching it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    queries = [q for q in section.splitlines() if q.startswith("journalctl ")]
    assert len(queries) >= 5
    for q in queries:
        shell = re.sub(r"^journalctl [^|]*\|", f"cat {journal} |", q)
        res = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=30,
                             check=False)
        assert res.returncode == 0 and res.stdout.strip(), (q, res.stderr)


def wait_sum(d: DaemonProcess, name: str, field: str, total: int,
             timeout: float = 30.0) -> list[dict[str, Any]]:
    """Wait until `field` summed over every `name` event reaches `total` (jobs may split work
    over runs)."""
    deadline = time.monotonic() + timeout
    while True:
        got = [e for e in d.events() if e.get("event") == name]
        if sum(e[field] for e in got) >= total:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}.{field} < {total}:\n" + d.log_text()[-4000:])
        time.sleep(0.1)


def _events(text: str, name: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            continue
        if e.get("event") == name:
            out.append(e)
    return out


def _file_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = re.match(r"^(\S+)\s+(\S+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
    return out
