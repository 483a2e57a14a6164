"""The per-file error boundary on a worker: a batch always comes back whole, one outcome per
file, and a failure says its reason without any of the file's values."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcmwatch.config import Config
from dcmwatch.engine import work
from dcmwatch.engine.outcome import Batch, WorkItem
from dcmwatch.testing.synth import ct_series, to_bytes
from tests.backfill.conftest import load_config


class Panic(BaseException):
    """What pyo3 raises for a Rust decoder's panic: not an Exception."""


def test_a_base_exception_in_the_core_quarantines_that_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config: Config = load_config(tmp_path)
    items = []
    for i, ds in enumerate(ct_series(2, rows=16, columns=16)):
        src = tmp_path / f"in{i}.dcm"
        src.write_bytes(to_bytes(ds))
        items.append(WorkItem(str(src), f"id{i}"))
    real = work.pipeline.process_bytes

    def panics_on_first(data: bytes, cfg: Config) -> object:
        if data == Path(items[0].source).read_bytes():
            raise Panic("ZZPHINAME^MARKER")
        return real(data, cfg)

    monkeypatch.setattr(work.pipeline, "process_bytes", panics_on_first)
    results = work.run_batch(Batch(tuple(items), str(tmp_path / "outbox")), config)
    assert [(r.status, r.reason) for r in results] == [("quarantined", "internal"),
                                                        ("processed", "")]
    assert "ZZPHI" not in repr(results[0])


def test_the_per_file_time_limit_applies_in_a_pool_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a process's main thread (a pool worker) the alarm stops a pathological file."""
    import time

    config: Config = load_config(tmp_path, "[limits]\nfile_seconds = 0.2\n")
    src = tmp_path / "slow.dcm"
    src.write_bytes(to_bytes(ct_series(1, rows=16, columns=16)[0]))

    def slow(data: bytes, cfg: Config) -> object:
        time.sleep(5)
        raise AssertionError("the time limit did not act")

    monkeypatch.setattr(work.pipeline, "process_bytes", slow)
    started = time.monotonic()
    [result] = work.run_batch(Batch((WorkItem(str(src), "slow"),), str(tmp_path / "outbox")),
                              config)
    assert (result.status, result.reason) == ("quarantined", "time_limit")
    assert time.monotonic() - started < 3
