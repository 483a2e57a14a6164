"""The OCR benchmark runs (tiny) and measures what it says: detection through the guard's real
entry point, false positives on text-free images, and CT in the stream is not read."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks import bench_ocr


def test_tiny_run_reports_every_installed_engine() -> None:
    if not bench_ocr.engines():
        pytest.skip("no OCR engine installed")
    results = bench_ocr.main(["--images", "2", "--stream", "10", "--ct-size", "64",
                              "--detect", "1", "--every", "12", "--fp", "0"])
    for engine in bench_ocr.engines():
        assert results[f"us_ms_{engine}"] > results["us_ms_floor"]
        # 9 CT files skip the guard: the stream costs far less than 10 US images would.
        assert results[f"stream_ms_{engine}"] < results[f"us_ms_{engine}"]
        assert 0 <= results[f"detect_{engine}"] <= 1
        assert results[f"detect_ms_{engine}"] > 0


def test_detection_counts_a_quarantine_and_only_that() -> None:
    """The bench's notion of "detected" is the guard quarantining: a text-free CT claiming no
    burned-in text is not read at all, so it cannot count."""
    if not bench_ocr.engines():
        pytest.skip("no OCR engine installed")
    from dcmwatch.testing import ct_series_bytes

    engine = bench_ocr.engines()[0]
    hit, boxes, _ = bench_ocr.guard(ct_series_bytes(1, rows=64, columns=64)[0],
                                    bench_ocr.config(engine, "quarantine"))
    assert (hit, boxes) == (False, ())
    from dcmwatch.testing.groundtruth import CONDITIONS, make_case
    from dcmwatch.testing.synth import to_bytes

    case = make_case(3, CONDITIONS[0])
    hit, boxes, _ = bench_ocr.guard(to_bytes(case.dataset), bench_ocr.config(engine, "quarantine"))
    assert hit
    assert boxes
