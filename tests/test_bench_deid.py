"""benchmarks/bench_deid.py runs (tiny), so it cannot rot; its speed is judged by running it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_deid_runs_and_prints_its_table() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_deid.py"),
         "--files", "2", "--repeats", "1", "--size", "32"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert any(line.startswith("floor (decode + encode)") for line in lines)
    for name in ("basic profile", "modified dates + clean descriptors"):
        row = next(line for line in lines if line.startswith(name))
        assert row.split()[-1] in ("ok", "MISS")


def test_bench_deid_rejects_bad_arguments() -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_deid.py"), "--files", "0"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert res.returncode == 2
