"""`dcmwatch process`: its flags and the glue from them to a driver and an engine.

Kept out of `dcmwatch.cli` so that the top-level command stays a dispatcher. Exit codes follow
it: 0 every input came out (or was done already), 1 some input was quarantined or failed,
2 usage error, 3 the engine or cluster could not be used (a rerun resumes).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from dcmwatch import store
from dcmwatch.backfill import locations, sources
from dcmwatch.backfill.driver import Driver, EngineFailed, Options
from dcmwatch.backfill.report import Reporter, want_bar
from dcmwatch.config import Config
from dcmwatch.engine.executors import DaskExecutor, Executor, PoolExecutor
from dcmwatch.engine.listing import ListingError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3


def run(config: Config, args: argparse.Namespace, log: Any) -> int:
    srcs = tuple(str(p) for p in args.paths)
    if not srcs and args.manifest is None:
        print("dcmwatch: process: name at least one SRC or a --manifest", file=sys.stderr)
        return EXIT_USAGE
    missing = sum(1 for s in srcs if not locations.is_remote(s) and not os.path.exists(s))
    if args.manifest is not None and not os.path.isfile(args.manifest):
        missing += 1
    if missing:
        print(f"dcmwatch: {missing} input path(s) do not exist", file=sys.stderr)
        return EXIT_USAGE
    options = Options(
        sources=srcs, manifest=args.manifest,
        outbox=args.outbox or str(config.paths.outbox),
        quarantine=args.quarantine or str(config.paths.quarantine),
        journal=args.journal or config.paths.state / "backfill.sqlite",
        batch_files=args.batch_files, inflight=args.inflight, resume=args.resume,
    )
    for dest in (options.outbox, options.quarantine):
        if not locations.is_remote(dest):
            store.ensure_dir(Path(dest))
    try:
        executor = make_executor(config, args.cluster, args.local_cluster)
    except (OSError, TimeoutError, ImportError) as exc:
        log.error("backfill.engine_failed", error=type(exc).__name__)
        return EXIT_FAILED
    bar = want_bar()
    reporter = Reporter(log, bar=bar, count=(lambda: sources.iter_sources(
        options.sources, options.manifest)) if bar else None)
    if bar:  # warnings above the bar, for a person; JSON only where no person reads it
        log = _log_above_the_bar(config, reporter)
    try:
        tally = Driver(config, options, executor, log, reporter).run()
    except (EngineFailed, ListingError) as exc:
        log.error("backfill.aborted", reason=exc.reason, message=str(exc))
        return EXIT_FAILED
    finally:
        executor.close(wait=True)
    return EXIT_OK if tally.quarantined == 0 and tally.failed == 0 else EXIT_PROBLEMS


def _log_above_the_bar(config: Config, reporter: Reporter) -> Any:
    from dcmwatch import log as log_mod  # noqa: PLC0415

    log_mod.configure(config.log.format, config.log.level, file=config.log.file,
                      stdout=config.log.stdout, stamp=log_mod.fields(), human=reporter.show)
    return log_mod.get()


def make_executor(config: Config, cluster: str | None, local_cluster: int | None) -> Executor:
    """The daemon's worker pool, or Dask: the engine runs the same on either."""
    if cluster is not None:
        return DaskExecutor(config, address=cluster)
    if local_cluster is not None:
        return DaskExecutor(config, local_workers=local_cluster)
    return PoolExecutor(config)
