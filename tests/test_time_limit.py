"""The per-file time limit: a pathological file cannot wedge a worker."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dcmwatch import config as config_mod
from dcmwatch.config import Config
from dcmwatch.engine import limits, work
from dcmwatch.engine.outcome import Outcome
from dcmwatch.testing import ct_series_bytes
from tests.conftest import KEY_HEX, write_config


def _config(tmp_path: Path, seconds: float) -> Config:
    cfg = config_mod.load(write_config(tmp_path, f"[limits]\nfile_seconds = {seconds}\n"))
    return cfg.with_secret(bytes.fromhex(KEY_HEX))


def _run(tmp_path: Path, config: Config) -> Outcome:
    path = tmp_path / "in.dcm"
    path.write_bytes(ct_series_bytes(1, rows=16, columns=16)[0])
    return work.process_file(str(path), "claim-slow", config)


def test_slow_python_is_stopped_and_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that runs on (here: sleeps) past the limit ends as `time_limit`, on time."""
    config = _config(tmp_path, 0.3)

    def slow(data: bytes, cfg: Config) -> None:
        time.sleep(30)

    monkeypatch.setattr(work.pipeline, "process_bytes", slow)
    t0 = time.monotonic()
    outcome = _run(tmp_path, config)
    assert time.monotonic() - t0 < 5
    assert (outcome.status, outcome.reason) == ("quarantined", "time_limit")


def test_a_library_that_wraps_the_alarm_still_reports_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Libraries catch Exception and raise their own (the de-identifier: TransformError)."""
    from dcmwatch.errors import TransformError

    config = _config(tmp_path, 0.2)

    def wrapping(data: bytes, cfg: Config) -> None:
        try:
            time.sleep(30)
        except Exception as exc:
            raise TransformError("cannot de-identify") from exc

    monkeypatch.setattr(work.pipeline, "process_bytes", wrapping)
    outcome = _run(tmp_path, config)
    assert outcome.reason == "time_limit"


def test_the_limit_is_disarmed_after_each_file(tmp_path: Path) -> None:
    config = _config(tmp_path, 0.5)
    for _ in range(3):
        assert _run(tmp_path, config).status == "processed"
    time.sleep(0.8)  # no stray alarm fires after a file finished


def test_a_worker_stuck_in_c_code_is_ended_by_the_backstop(tmp_path: Path) -> None:
    """SIGALRM blocked stands in for a decoder that never returns to the interpreter: the
    backstop thread ends the process after the grace period, with BACKSTOP_EXIT."""
    cfg = write_config(tmp_path, "[limits]\nfile_seconds = 0.2\n")
    data = tmp_path / "in.dcm"
    data.write_bytes(ct_series_bytes(1, rows=16, columns=16)[0])
    script = textwrap.dedent(f"""
        import signal, time
        from dcmwatch import config as c
        from dcmwatch.engine import work
        cfg = c.load({str(cfg)!r}).with_secret(bytes.fromhex({KEY_HEX!r}))
        def stuck(data, config):
            signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGALRM}})
            time.sleep(30)
        work.pipeline.process_bytes = stuck
        work.process_file({str(data)!r}, "claim", cfg)
    """)
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert res.returncode == limits.BACKSTOP_EXIT
    assert time.monotonic() - t0 < 20
