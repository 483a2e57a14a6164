"""`dcmwatch process` flags: usage errors exit 2, an unreachable cluster exits 3 with an event."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcmwatch import cli
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
