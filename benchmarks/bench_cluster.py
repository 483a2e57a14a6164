"""Backfill executors: is a Dask cluster as fast as the engine's own pool, and does the driver
stay small?

    python benchmarks/bench_cluster.py [--files 2000] [--size 256] [--workers 2]
                                       [--batch-files 64] [--manifest-paths 200000] [--check]

1. files/s of the same backfill (same driver, same batches) on the engine's worker pool and on
   `--local-cluster N`, in the same run; target: cluster >= 0.9 x pool. Also the CPU seconds
   of all processes of each run (driver, scheduler, nannies, workers): on a busy machine the
   wall clock measures the neighbours, but time-proportional costs (heartbeats, monitors) then
   inflate the cluster's CPU too, so read both, with the load averages printed beside them.
2. Per-file overhead of the cluster at the batch size: (T_cluster - T_pool) x workers / files,
   and in CPU milliseconds per file.
3. Driver RSS over a manifest of `--manifest-paths` paths (target: <= 150 MB, flat). Measured
   in a fresh subprocess whose engine echoes each batch back at once: the driver's own
   listing, batching, journal and bookkeeping, with no worker in the process. (A LocalCluster
   would put the scheduler and its bookkeeping into the driver's process; on a real cluster the
   scheduler runs elsewhere.) The paths need not exist, since the driver never opens them.

Each engine is started (and its workers warmed) before its clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from dcmwatch import config as config_mod
from dcmwatch import log as log_mod
from dcmwatch.backfill.driver import Driver, Options
from dcmwatch.config import Config
from dcmwatch.engine.executors import DaskExecutor, Done, Executor, PoolExecutor
from dcmwatch.engine.outcome import Batch, Outcome
from dcmwatch.testing import write_series

RSS_CEILING_MB = 150.0
RATIO_FLOOR = 0.9


def _config(root: Path, workers: int) -> config_mod.Config:
    text = f"[workers]\ncount = {workers}\n[log]\nlevel = \"warning\"\n"
    cfg = config_mod.parse(text, source="bench", base=root)
    return cfg.with_secret(b"k" * 32)


def _options(root: Path, sources: tuple[str, ...], batch_files: int,
             manifest: str | None = None) -> Options:
    return Options(sources=sources, manifest=manifest, outbox=str(root / "outbox"),
                   quarantine=str(root / "quarantine"), journal=root / "journal.sqlite",
                   batch_files=batch_files)


def _cpu_seconds() -> tuple[float, float]:
    """User + system CPU of this process and all its descendants (driver, scheduler, nannies,
    workers, pool processes): what the run costs, whatever else the machine is doing; and of
    this process alone (the driver; under a LocalCluster also the scheduler and the nannies)."""
    import psutil  # noqa: PLC0415 - a dependency of distributed

    me = psutil.Process()
    own = sum(me.cpu_times()[:2])
    total = own
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total, own


def _drive(config: config_mod.Config, options: Options, engine: Executor) -> dict[str, Any]:
    try:
        cpu0, own0 = _cpu_seconds()
        driver = Driver(config, options, engine, log_mod.get())
        tally = driver.run()
        nums = driver.reporter.numbers(tally)
        cpu1, own1 = _cpu_seconds()
        nums["cpu_seconds"] = cpu1 - cpu0
        nums["driver_cpu_seconds"] = own1 - own0
        return nums
    finally:
        engine.close(wait=True)


def throughput(files: int, size: int, workers: int, batch_files: int,
               repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        src = root / "src"
        write_series(src, files, rows=size, columns=size)
        config = _config(root, workers)
        out: dict[str, Any] = {"files": files, "size": size, "workers": workers,
                               "batch_files": batch_files, "load_avg_1min": os.getloadavg()[0]}
        engines = {"pool": lambda: _warm(PoolExecutor(config)),
                   "cluster": lambda: DaskExecutor(config, local_workers=workers)}
        # Interleaved, best of `repeats`: the machine may be shared, and noise only slows.
        for rep in range(repeats):
            for name, make in engines.items():
                nums = _drive(config, _options(root / f"{name}{rep}", (str(src),), batch_files),
                              make())
                assert nums["processed"] == files, nums
                out.setdefault(f"{name}_each_seconds", []).append(
                    round(nums["duration_ms"] / 1000, 3))
                for key, value in (("seconds", nums["duration_ms"] / 1000),
                                   ("cpu_seconds", nums["cpu_seconds"]),
                                   ("driver_cpu_seconds", nums["driver_cpu_seconds"])):
                    best = out.get(f"{name}_{key}", float("inf"))
                    out[f"{name}_{key}"] = round(min(best, value), 3)
        for name in engines:
            out[f"{name}_files_per_s"] = round(files / out[f"{name}_seconds"], 1)
        #: Wall-clock files/s, cluster over pool: the target on a dedicated machine.
        out["ratio"] = round(out["cluster_files_per_s"] / out["pool_files_per_s"], 3)
        #: The same per interleaved pair (pool then cluster, seconds apart): the spread says how
        #: much the neighbours moved the best-of ratio.
        pairs = sorted(p / c for p, c in zip(out["pool_each_seconds"],
                                             out["cluster_each_seconds"], strict=True))
        out["ratio_each_pair"] = [round(r, 3) for r in pairs]
        out["ratio_median_pair"] = round(pairs[len(pairs) // 2] if len(pairs) % 2 else
                                         (pairs[len(pairs) // 2 - 1] + pairs[len(pairs) // 2]) / 2,
                                         3)
        #: Files per CPU-second, cluster over pool: the same question, robust to a busy machine.
        out["cpu_ratio"] = round(out["pool_cpu_seconds"] / out["cluster_cpu_seconds"], 3)
        extra = out["cluster_seconds"] - out["pool_seconds"]
        out["overhead_ms_per_file"] = round(extra * workers / files * 1000, 3)
        out["cpu_overhead_ms_per_file"] = round(
            (out["cluster_cpu_seconds"] - out["pool_cpu_seconds"]) / files * 1000, 3)
        out["pool_ms_per_file"] = round(out["pool_seconds"] * workers / files * 1000, 3)
        out["load_avg_1min_end"] = os.getloadavg()[0]
        return out


def _warm(executor: PoolExecutor) -> PoolExecutor:
    """Its workers started (interpreter, imports, configuration) before the clock starts."""
    while executor.pool.ready() < executor.pool.size:
        time.sleep(0.01)
    return executor


class EchoEngine:
    """Completes every batch at once with a plausible result: isolates the driver."""

    name = "echo"
    slots = 2
    local = False

    def __init__(self) -> None:
        self._queue: deque[Batch] = deque()
        self.wake: Any = lambda: None

    def submit(self, batch: Batch) -> None:
        self._queue.append(batch)
        self.wake()

    def take_done(self) -> list[Done]:
        out = []
        while self._queue:
            batch = self._queue.popleft()
            out.append(Done(batch, tuple(
                Outcome(i.claim_id, "processed", output=f"a/b/{i.claim_id}.dcm",
                        sha256_in="0" * 64, sha256_out="1" * 64, bytes_in=500_000,
                        bytes_out=500_000) for i in batch.items)))
        return out

    def cancel_waiting(self) -> list[Batch]:
        return []

    def reconfigure(self, config: Config) -> None:
        return None

    def close(self, *, wait: bool) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_rss_mb() -> float:
    """VmHWM: this process's own high-water mark (getrusage's ru_maxrss survives execve and
    would report the parent benchmark's peak)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def driver_rss(paths: int, batch_files: int) -> dict[str, Any]:
    """Runs in its own process (see `--driver-rss`): peak RSS is the driver's alone."""
    import distributed  # noqa: F401, PLC0415 - the client library a cluster run has loaded

    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        root = Path(tmp)
        manifest = root / "manifest.txt"
        with manifest.open("w") as fh:
            for i in range(paths):
                fh.write(f"/archive/does-not-exist/{i // 1000:05d}/{i:09d}.dcm\n")
        config = _config(root, 2)
        before = _rss_mb()
        samples: list[float] = []
        options = _options(root, (), batch_files, manifest=str(manifest))
        driver = Driver(config, options, EchoEngine(), log_mod.get(),
                        on_batch=lambda t: samples.append(_rss_mb()) if t.batches % 200 == 0
                        else None)
        tally = driver.run()
        assert tally.processed == paths, tally
        peak = max([_peak_rss_mb(), before, *samples])
        tenth = samples[max(0, len(samples) // 10 - 1)] if samples else before
        return {"paths": paths, "rss_before_mb": round(before, 1),
                "rss_at_10pct_mb": round(tenth, 1),
                "rss_end_mb": round(samples[-1] if samples else _rss_mb(), 1),
                "rss_peak_mb": round(peak, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-files", type=int, default=64)
    ap.add_argument("--manifest-paths", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    ap.add_argument("--driver-rss", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    log_mod.configure("json", "warning", stream=sys.stderr)
    if args.driver_rss:
        result = driver_rss(args.manifest_paths, args.batch_files)
        print(json.dumps(result))
        return result
    results = throughput(args.files, args.size, args.workers, args.batch_files,
                         args.repeats)
    proc = subprocess.run(
        [sys.executable, __file__, "--driver-rss", "--manifest-paths",
         str(args.manifest_paths), "--batch-files", str(args.batch_files)],
        capture_output=True, check=True, text=True,
    )
    results.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    results["ratio_ok"] = results["ratio"] >= RATIO_FLOOR
    results["rss_ok"] = results["rss_peak_mb"] <= RSS_CEILING_MB
    for name, value in results.items():
        print(f"{name:22s} {value}")
    if args.check and not (results["ratio_ok"] and results["rss_ok"]):
        sys.exit(1)
    return results


if __name__ == "__main__":
    main()
