"""benchmarks/bench_streams.py runs (tiny), prints its table, and --check decides the exit code.

The speed itself is the benchmark's business, not a unit test's: this only keeps it from rotting.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_streams.py"
TINY = ["--files", "2", "--rounds", "1", "--size", "64"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH), *TINY, *args],
                          capture_output=True, text=True, timeout=300, check=False)


def test_prints_the_table() -> None:
    result = _run()
    assert result.returncode == 0, result.stderr
    for label in ("native", "JPEG baseline", "JPEG-LS", "JPEG 2000", "RLE", "target:"):
        assert label in result.stdout


@pytest.mark.parametrize(("target", "code"), [("1000", 0), ("-1", 1)])
def test_check_sets_the_exit_code(target: str, code: int) -> None:
    """--check fails when the measured cost exceeds the target (an impossible one here)."""
    result = _run("--check", "--target", target)
    assert result.returncode == code, result.stdout + result.stderr
