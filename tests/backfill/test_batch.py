"""The backfill's per-file error boundary on a worker: a batch always comes back whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcmwatch.backfill import batch as batch_mod
from dcmwatch.backfill.batch import Batch, Item, run_batch
from dcmwatch.config import Config
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
        items.append(Item(str(src), f"id{i}"))
    real = batch_mod.pipeline.process_bytes

    def panics_on_first(data: bytes, cfg: Config) -> object:
        if data == Path(items[0].source).read_bytes():
            raise Panic("ZZPHINAME^MARKER")
        return real(data, cfg)

    monkeypatch.setattr(batch_mod.pipeline, "process_bytes", panics_on_first)
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    results = run_batch(Batch(tuple(items), str(tmp_path / "outbox"), str(quarantine)), config)
    assert [(r.status, r.reason) for r in results] == [("quarantined", "internal"),
                                                        ("processed", "")]
    assert "ZZPHI" not in results[0].message
    sidecar = json.loads((quarantine / "id0.json").read_text())
    assert sidecar["reason"] == "internal" and "ZZPHI" not in json.dumps(sidecar)


def test_the_per_file_time_limit_applies_in_a_pool_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dcmwatch process` on the local pool stops a pathological file as the daemon does."""
    import time

    config: Config = load_config(tmp_path, "[limits]\nfile_seconds = 0.2\n")
    src = tmp_path / "slow.dcm"
    src.write_bytes(to_bytes(ct_series(1, rows=16, columns=16)[0]))

    def slow(data: bytes, cfg: Config) -> object:
        time.sleep(5)
        raise AssertionError("the time limit did not act")

    monkeypatch.setattr(batch_mod.pipeline, "process_bytes", slow)
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    started = time.monotonic()
    [result] = run_batch(Batch((Item(str(src), "slow"),), str(tmp_path / "outbox"),
                               str(quarantine)), config)
    assert (result.status, result.reason) == ("quarantined", "time_limit")
    assert time.monotonic() - started < 3
