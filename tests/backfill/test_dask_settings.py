"""The Dask settings a backfill cluster runs with: one list for `--local-cluster` (engine/executors.py)
and for the systemd units (config/dask.yaml), and they reach the worker processes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from dcmwatch.engine.executors import LOCAL_CLUSTER_CONFIG, DaskExecutor
from tests.backfill.conftest import load_config

dask_config = pytest.importorskip("dask.config")
ROOT = Path(__file__).parents[2]
YAML = ROOT / "config" / "dask.yaml"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_yaml_for_real_clusters_holds_the_local_cluster_settings() -> None:
    loaded = dask_config.merge(*dask_config.collect_yaml([str(YAML)]))
    assert flatten(loaded) == LOCAL_CLUSTER_CONFIG


@pytest.mark.parametrize("unit", ["dcmwatch-dask-scheduler.service",
                                  "dcmwatch-dask-worker.service"])
def test_the_units_load_the_yaml(unit: str) -> None:
    lines = (ROOT / "systemd" / unit).read_text().splitlines()
    assert "Environment=DASK_CONFIG=/etc/dcmwatch/dask.yaml" in lines


def test_local_cluster_workers_get_the_settings(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """In the spawned worker processes: no MALLOC_TRIM_THRESHOLD_ (glibc's dynamic mmap
    threshold: no page faults per CT slice), no profiler, slow ticks; and only there: the
    settings do not stay in the driver's process."""
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    engine = DaskExecutor(load_config(tmp_path), local_workers=1)
    try:
        def probe() -> tuple[str | None, bool, str]:
            import dask

            return (os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                    dask.config.get("distributed.worker.profile.enabled"),
                    dask.config.get("distributed.admin.tick.interval"))

        assert list(engine.client.run(probe).values()) == [(None, False, "1s")]
    finally:
        engine.close(wait=True)
    assert dask_config.get("distributed.admin.tick.interval") != "1s"
