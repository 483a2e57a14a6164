"""Threads or processes for the per-file core? Measures files/s of `pipeline.process_bytes`
over synthetic 512x512 CT slices with 1..N threads and 1..N processes.

    python benchmarks/bench_workers.py [--files 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from dcmwatch import config as config_mod
from dcmwatch import pipeline
from dcmwatch.testing import ct_series_bytes

_CONFIG: config_mod.Config | None = None


def _init(cfg: config_mod.Config) -> None:
    global _CONFIG  # noqa: PLW0603
    _CONFIG = cfg
    pipeline.build_steps(cfg)


def _one(data: bytes) -> int:
    assert _CONFIG is not None
    return len(pipeline.process_bytes(data, _CONFIG).data)


def _rate(executor: Executor, files: list[bytes]) -> float:
    list(executor.map(_one, files[:8]))  # warm up
    t0 = time.perf_counter()
    list(executor.map(_one, files, chunksize=4))
    return len(files) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args(argv)
    cfg = config_mod.load(None).with_secret(b"k" * 32)
    files = ct_series_bytes(args.files, rows=args.size, columns=args.size)
    _init(cfg)
    results: dict[str, float] = {}
    for n in range(1, args.workers + 1):
        with ThreadPoolExecutor(n) as tp:
            results[f"threads={n}"] = _rate(tp, files)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init, initargs=(cfg,)) as pp:
            results[f"processes={n}"] = _rate(pp, files)
    for name, rate in results.items():
        print(f"{name:14s} {rate:8.1f} files/s")
    return results


if __name__ == "__main__":
    main()
