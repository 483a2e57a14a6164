"""Where the daemon's time goes: cProfile of its main thread and of each worker, on a real run.

    python -m benchmarks.profile_daemon [--files 300] [--workers 2] [--out /tmp/dcmwatch-prof]

The daemon runs in this process (its main loop under cProfile); workers run `profiled_run`,
which wraps `work.run_in_pool` in a per-process profiler and dumps `worker-<pid>.prof` as it
goes. Each profile is printed (top functions by own time); open the .prof files with
`python -m pstats`.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import signal
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import data
from benchmarks.contenders import Rules, drop, stage_copies, write_config
from dcmwatch import config as config_mod
from dcmwatch import keys
from dcmwatch import log as log_mod
from dcmwatch.engine import work
from dcmwatch.engine.outcome import Batch, Outcome
from dcmwatch.engine.pool import Pool

_PROFILE: cProfile.Profile | None = None
_DONE = 0
_OUT = Path(os.environ.get("DCMWATCH_PROF_DIR", tempfile.gettempdir()))


def profiled_run(batch: Batch) -> tuple[Outcome, ...]:
    global _PROFILE, _DONE  # noqa: PLW0603 - per-worker profiler
    if _PROFILE is None:
        _PROFILE = cProfile.Profile()
    _PROFILE.enable()
    try:
        return work.run_in_pool(batch)
    finally:
        _PROFILE.disable()
        _DONE += 1
        if _DONE % 25 == 0:
            _PROFILE.dump_stats(_OUT / f"worker-{os.getpid()}.prof")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, help="folder for data and profiles (default: a new "
                    "temporary folder, kept)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="dcmwatch-prof-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ["DCMWATCH_PROF_DIR"] = str(out)  # inherited by the spawned workers
    corpus = data.ct_files(out / "data", args.files, seed=1)
    cfg_path = write_config(out / "run", args.workers, Rules())
    staged = stage_copies(corpus.paths, out / "run" / "stage")
    config = config_mod.load(cfg_path)
    log_mod.configure("json", "warning")
    config = config.with_secret(keys.resolve(config.deid, os.environ, create=False).key)

    Pool.target = "benchmarks.profile_daemon:profiled_run"

    from dcmwatch.daemon import Daemon  # noqa: PLC0415

    daemon = Daemon(config, os.environ)

    def feeder() -> None:
        time.sleep(2.0)  # the pool warms up
        t0 = time.monotonic()
        drop(staged, config.paths.inbox)
        while not hasattr(daemon, "counts") or daemon.counts.processed < len(staged):
            time.sleep(0.01)
        print(f"{len(staged)} files in {time.monotonic() - t0:.2f} s", flush=True)
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=feeder, daemon=True).start()
    main_prof = cProfile.Profile()
    main_prof.enable()
    try:
        daemon.run()
    finally:
        main_prof.disable()
        Pool.target = "dcmwatch.engine.work:run_in_pool"
    main_prof.dump_stats(out / "main.prof")
    for prof in sorted(out.glob("*.prof")):
        print(f"\n===== {prof.name}")
        pstats.Stats(str(prof)).sort_stats("tottime").print_stats(args.top)
    print(f"profiles in {out}")


if __name__ == "__main__":
    main()
