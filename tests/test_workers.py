"""The worker pool follows a reloaded configuration, its size included."""

from __future__ import annotations

from pathlib import Path

from dcmwatch import config as config_mod
from dcmwatch.workers import Pool
from tests.conftest import write_config


def test_a_reload_applies_the_worker_count(tmp_path: Path) -> None:
    first = config_mod.load(write_config(tmp_path))
    pool = Pool(first)
    try:
        assert pool.size == first.workers.count == 2
        pool.replace(first.model_copy(update={
            "workers": first.workers.model_copy(update={"count": 3})}))
        assert pool.size == 3
        assert pool._executor._max_workers == 3  # type: ignore[attr-defined]
        pool.replace()  # after a crash: same size
        assert pool.size == 3
    finally:
        pool.shutdown(wait=True)
