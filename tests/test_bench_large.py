"""benchmarks/bench_large.py runs (tiny), prints its table, and run.py's `large` phase is opt-in.

The memory bound itself is tests/test_large_files.py's; the speed is the benchmark's business.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks import bench_large, run

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_large.py"


def test_prints_a_row_per_class(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--classes", "2,3", "--root", str(tmp_path), "--check"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| native 2 MiB |" in result.stdout and "| native 3 MiB |" in result.stdout
    assert not list(tmp_path.glob("*.dcm"))  # inputs and outputs removed as it goes


def test_a_class_with_a_target_fails_above_it() -> None:
    ours = bench_large.Run(seconds=1.0, peak_rss=400 * 2**20, start_rss=60 * 2**20)
    floor = bench_large.Run(seconds=2.0, peak_rss=600 * 2**20, start_rss=60 * 2**20)
    assert not bench_large.Row(250, 250 * 2**20, floor, ours).passes  # 1.6 x
    assert bench_large.Row(10, 10 * 2**20, floor, ours).passes  # no target below 250 MiB
    assert bench_large.Row(250, 250 * 2**20, floor, ours).speed_ratio == 2.0


def test_the_default_run_leaves_the_large_phase_out() -> None:
    assert "large" in run.PHASES
    assert "large" not in run.DEFAULT_PHASES
    assert "large" not in run.Settings.quick(1, 1, frozenset(run.DEFAULT_PHASES)).phases
