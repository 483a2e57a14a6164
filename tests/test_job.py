"""The worker's step: outputs durable by default, or left pending for the daemon's I/O threads."""

from __future__ import annotations

from pathlib import Path

from dcmwatch import config as config_mod
from dcmwatch import job, store
from dcmwatch.testing import ct_series_bytes


def _setup(tmp_path: Path) -> tuple[config_mod.Config, Path]:
    cfg = config_mod.parse('[paths]\noutbox = "out"\n', source="t", base=tmp_path)
    src = tmp_path / "in.dcm"
    src.write_bytes(ct_series_bytes(1, rows=16, columns=16)[0])
    return cfg.with_secret(b"k" * 32), src


def test_default_writes_the_output_durably(tmp_path: Path) -> None:
    cfg, src = _setup(tmp_path)
    out = job.process(job.Task(str(src), "c1", batch=True), cfg)
    assert out.status == "processed" and out.pending is None
    assert (cfg.paths.outbox / out.output).is_file()


def test_defer_sync_leaves_a_hidden_temp_until_committed(tmp_path: Path) -> None:
    cfg, src = _setup(tmp_path)
    out = job.process(job.Task(str(src), "c2", batch=True, defer_sync=True), cfg)
    assert out.status == "processed" and out.pending is not None
    tmp, dest = (Path(p) for p in out.pending)
    assert dest == (cfg.paths.outbox / out.output).resolve()
    assert tmp.is_file() and tmp.name.startswith(".") and not dest.exists()
    store.commit(tmp, dest)
    assert dest.is_file() and not tmp.exists()
    assert src.exists()  # the worker never removes its input
