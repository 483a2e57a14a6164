"""The cluster benchmark runs end to end (tiny sizes; its targets are checked by the benchmark
itself on a real run, not here, where the machine is shared)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_cluster


def test_bench_cluster_tiny_run() -> None:
    """Both engines process every file; the driver's RSS over a manifest is measured in its
    own process and stays under the ceiling even at this size."""
    r = bench_cluster.main(["--files", "24", "--size", "32", "--manifest-paths", "5000",
                            "--repeats", "1", "--batch-files", "4"])
    assert r["pool_files_per_s"] > 0 and r["cluster_files_per_s"] > 0
    assert r["ratio"] > 0
    assert "overhead_ms_per_file" in r
    assert r["paths"] == 5000
    assert 0 < r["rss_peak_mb"] <= bench_cluster.RSS_CEILING_MB
