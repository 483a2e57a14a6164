"""The benchmark harness runs end to end on a few small files, so its code cannot rot.

No target is enforced here (CI machines vary); the assertions check that every phase ran, every
file came out, and the numbers the README table is built from are present and sane.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import run

pytestmark = pytest.mark.integration


def test_quick_benchmark_runs_every_phase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    report = run.main(["--quick", "--workers", "2", "--root", str(tmp_path / "work"),
                       "--json", str(out)])
    names = [r.name for r in report.results]
    for expected in ("floor", "floor durable", "dcmwatch process", "daemon e2e", "daemon steady 50%",
                     "floor j2k", "daemon e2e j2k", "floor rle", "daemon e2e rle",
                     "daemon burst"):
        assert expected in names
    assert sorted(r.workers for r in report.results if r.name == "daemon e2e") == [1, 2]
    for r in report.results:
        assert r.files > 0 and r.seconds > 0 and r.peak_rss > 0
    e2e = report.get("daemon e2e", 2)
    assert len(e2e.latencies_ms) == e2e.files  # one latency_ms per file.processed
    assert all(0 <= ms < 60_000 for ms in e2e.latencies_ms)
    assert report.get("daemon burst").extra["ready_s"] > 0
    assert len(report.targets) == 7
    assert [name for name, _, _ in report.targets][1:3] == [
        "process >= daemon e2e files/s (start-up included)", "process CPU/file <= 1.1 x daemon's"]
    assert [name for name, _ in report.references] == [
        "floor durable / floor files/s", "daemon e2e / floor durable files/s"]
    data = json.loads(out.read_text())
    assert data["machine"]["nproc"] and len(data["results"]) == len(report.results)
    printed = capsys.readouterr().out
    assert "| daemon e2e | 2 |" in printed and "| target | result | measured |" in printed
    assert "| reference (no target) | measured |" in printed
    assert not (tmp_path / "work").exists()  # cleaned up without --keep
