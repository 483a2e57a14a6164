"""The OCR benchmark runs (tiny) and measures what it says: CT in the stream is not read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks import bench_ocr


def test_tiny_run_reports_every_installed_engine() -> None:
    if not bench_ocr.engines():
        pytest.skip("no OCR engine installed")
    results = bench_ocr.main(["--images", "2", "--stream", "10", "--ct-size", "64"])
    for engine in bench_ocr.engines():
        assert results[f"us_ms_{engine}"] > results["us_ms_floor"]
        # 9 CT files skip the guard: the stream costs far less than 10 US images would.
        assert results[f"stream_ms_{engine}"] < results[f"us_ms_{engine}"]
