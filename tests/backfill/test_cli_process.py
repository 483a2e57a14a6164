"""`dcmwatch process` flags: usage errors exit 2, an unreachable cluster exits 3 with an event."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dcmwatch import cli
from dcmwatch.testing import write_series
from tests.conftest import write_config


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No input, a missing manifest, both cluster options, a zero batch size: exit 2."""
    cfg = str(write_config(tmp_path))
    assert cli.main(["process", "--config", cfg], env={}) == 2
    assert "SRC" in capsys.readouterr().err
    assert cli.main(["process", "--config", cfg, "--manifest", str(tmp_path / "no")],
                    env={}) == 2
    assert cli.main(["process", "--config", cfg, str(tmp_path), "--cluster", "tcp://x:1",
                     "--local-cluster", "2"], env={}) == 2
    assert cli.main(["process", "--config", cfg, str(tmp_path), "--batch-files", "0"],
                    env={}) == 2


def test_unreachable_cluster_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scheduler that does not answer: `backfill.engine_failed`, exit 3, nothing written."""
    dask = pytest.importorskip("dask")
    cfg = str(write_config(tmp_path))
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.dcm").write_bytes(b"x")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = cli.main(["process", "--config", cfg, str(src), "--cluster",
                         "tcp://127.0.0.1:9"], env={})
    assert code == 3
    assert "backfill.engine_failed" in capsys.readouterr().out
    assert not any((tmp_path / "outbox").rglob("*.dcm"))


def test_file_events_and_sidecars_name_the_claim_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The event table of docs/monitoring.md says `claim_id`: `process`'s file events and quarantine sidecars
    carry it (not another name for the same id), and it is the quarantined file's name."""
    cfg = str(write_config(tmp_path))
    src = tmp_path / "src"
    write_series(src, 1, rows=16, columns=16)
    (src / "junk.dcm").write_bytes(b"junk" * 100)
    assert cli.main(["process", "--config", cfg, str(src)], env={}) == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()
              if line.startswith("{")]
    files = [e for e in events if e["event"].startswith("file.")]
    assert {e["event"] for e in files} == {"file.processed", "file.quarantined"}
    assert all("claim_id" in e and "ident" not in e for e in files), files
    quarantined = next(e for e in files if e["event"] == "file.quarantined")
    sidecar = json.loads((tmp_path / "quarantine" / f"{quarantined['claim_id']}.json")
                         .read_text())
    assert sidecar["claim_id"] == quarantined["claim_id"] and "ident" not in sidecar


def test_each_run_stamps_its_lines_in_a_shared_log_file(tmp_path: Path) -> None:
    """Two `process` runs appending to the daemon's log file: every line carries its run's
    random id and `component = process`, the two runs' ids differ, and no id is a path."""
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("[log]\n", '[log]\nfile = "shared.log"\n'))
    src = tmp_path / "src"
    write_series(src, 2, rows=16, columns=16)
    for _ in range(2):
        assert cli.main(["process", "--config", str(cfg), str(src)], env={}) == 0
    events = [json.loads(line) for line in (tmp_path / "shared.log").read_text().splitlines()]
    assert events and all(e["component"] == "process" for e in events)
    finished = [i for i, e in enumerate(events) if e["event"] == "process.finished"]
    assert len(finished) == 2
    first, second = events[: finished[0] + 1], events[finished[0] + 1:]
    ids = [{e["run"] for e in part} for part in (first, second)]
    assert all(len(s) == 1 for s in ids) and ids[0] != ids[1]
    assert all(re.fullmatch(r"[0-9a-f]{12}", next(iter(s))) for s in ids)
