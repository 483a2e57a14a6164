"""The `dcmwatch` command: argv -> Config -> the daemon or a batch run -> an exit code.

Only this module chooses exit codes and reads the process environment; everything below it gets
what it needs as arguments. Exit codes: 0 success; 1 some input was quarantined (batch);
2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

from dcmwatch import __version__, keys, store
from dcmwatch import config as config_mod
from dcmwatch import log as log_mod
from dcmwatch.config import Config
from dcmwatch.errors import ConfigError, DcmwatchError
from dcmwatch.job import Outcome, Task

EXIT_OK = 0
EXIT_QUARANTINED = 1
EXIT_USAGE = 2
#: The daemon could not start or run (a folder it cannot create or watch).
EXIT_FAILED = 3


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        config = config_mod.load(args.config or config_mod.env_config_path(env))
        if args.command == "check-config":
            return _check_config(config, env)
        log_mod.configure(config.log.format, config.log.level)
        key = keys.resolve(config.deid, env, create=True)
        config = config.with_secret(key.key)
    except ConfigError as exc:
        print(f"dcmwatch: configuration error:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "run":
        log_mod.get().info("config.loaded", source=config.source, key_origin=key.origin)
        return _run(config, env)
    return process(config, args.paths)


def _run(config: Config, env: Mapping[str, str]) -> int:
    from dcmwatch.daemon import Daemon  # noqa: PLC0415 - keeps `--version` and batch light
    from dcmwatch.journal import JournalError  # noqa: PLC0415

    try:
        return Daemon(config, env).run()
    except OSError as exc:  # a folder that cannot be created or watched, at start
        log_mod.get().error("daemon.failed", errno=exc.errno, strerror=exc.strerror)
        return EXIT_FAILED
    except JournalError as exc:  # the state database is held by another process
        log_mod.get().error("daemon.failed", reason=exc.reason, message=str(exc))
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcmwatch",
        description="De-identify DICOM files dropped into an inbox folder, durably and fast.",
    )
    parser.add_argument("--version", action="version", version=f"dcmwatch {__version__}")
    sub = parser.add_subparsers(dest="command")
    cfg_help = "TOML configuration file (default: $DCMWATCH_CONFIG, else the embedded default)"
    run = sub.add_parser("run", help="watch the inbox until SIGTERM/SIGINT")
    run.add_argument("--config", "-c", help=cfg_help)
    proc = sub.add_parser("process", help="process files and folders once, into the outbox")
    proc.add_argument("--config", "-c", help=cfg_help)
    proc.add_argument("paths", nargs="+", type=Path, help="files or folders (recursive)")
    check = sub.add_parser("check-config", help="validate and print the effective configuration")
    check.add_argument("--config", "-c", help=cfg_help)
    return parser


def _check_config(config: Config, env: Mapping[str, str]) -> int:
    key = keys.resolve(config.deid, env, create=False)
    data = config_mod.effective(config)
    data["key_origin"] = key.origin
    print(json.dumps(data, indent=2))
    print(f"dcmwatch: {config.source}: configuration is valid", file=sys.stderr)
    return EXIT_OK


# -- batch mode -----------------------------------------------------------------------------------
def iter_inputs(paths: Sequence[Path]) -> Iterator[Path]:
    """Files named, and every file below folders named; hidden names and links skipped."""
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    full = Path(root) / name
                    if not name.startswith(".") and not full.is_symlink():
                        yield full
        else:
            yield p


def process(config: Config, paths: Sequence[Path]) -> int:
    """Run the daemon's per-file step over inputs, which are never modified or removed."""
    from dcmwatch.daemon import new_claim_id  # noqa: PLC0415
    from dcmwatch.workers import Pool  # noqa: PLC0415

    log = log_mod.get()
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"dcmwatch: {len(missing)} input path(s) do not exist", file=sys.stderr)
        return EXIT_USAGE
    for folder in (config.paths.outbox, config.paths.quarantine):
        store.ensure_dir(folder)
    files = list(iter_inputs(paths))
    started = time.monotonic()
    counts = {"processed": 0, "quarantined": 0, "failed": 0}
    pool = Pool(config)
    window = pool.size * config.workers.prefetch
    inflight: dict[Future[Outcome], Task] = {}
    progress = _progress(len(files))
    try:
        todo = iter(files)
        exhausted = False
        while inflight or not exhausted:
            while not exhausted and len(inflight) < window:
                path = next(todo, None)
                if path is None:
                    exhausted = True
                    break
                task = Task(str(path), new_claim_id(), batch=True)
                inflight[pool.submit(task)] = task
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            for fut in done:
                task = inflight.pop(fut)
                _settle_batch(config, task, fut.result(), counts, log)
                if progress is not None:
                    progress.advance()
    finally:
        pool.shutdown(wait=True)
        if progress is not None:
            progress.close()
    seconds = time.monotonic() - started
    log.info("process.finished", files=len(files), **counts,
             duration_ms=round(seconds * 1000, 1),
             files_per_s=round(len(files) / seconds, 1) if seconds > 0 else None)
    return EXIT_OK if counts["quarantined"] == 0 and counts["failed"] == 0 else EXIT_QUARANTINED


def _settle_batch(config: Config, task: Task, outcome: Outcome, counts: dict[str, int],
                  log: Any) -> None:
    if outcome.status == "processed":
        counts["processed"] += 1
        log.debug("file.processed", claim_id=task.claim_id, output=outcome.output,
                  bytes=outcome.bytes_in, duration_ms=outcome.duration_ms)
        return
    if outcome.status == "transient":
        counts["failed"] += 1
        log.error("file.failed", claim_id=task.claim_id, reason=outcome.reason,
                  message=outcome.message)
        return
    sidecar = {"event": "file.quarantined", "claim_id": task.claim_id, "reason": outcome.reason,
               "message": outcome.message, "bytes": outcome.bytes_in, "mode": "process",
               "dcmwatch_version": __version__}
    try:
        store.quarantine(Path(task.path), config.paths.quarantine, task.claim_id, sidecar,
                         mode=config.output.file_mode, keep_source=True)
    except (DcmwatchError, OSError):
        counts["failed"] += 1
        log.error("file.failed", claim_id=task.claim_id, reason="quarantine_failed")
        return
    counts["quarantined"] += 1
    log.warning("file.quarantined", claim_id=task.claim_id, reason=outcome.reason,
                message=outcome.message, bytes=outcome.bytes_in)


class _Bar:
    def __init__(self, total: int) -> None:
        from rich.console import Console  # noqa: PLC0415 - only on a terminal
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), transient=False,
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("de-identifying", total=total)
        self._progress.start()

    def advance(self) -> None:
        self._progress.advance(self._task)

    def close(self) -> None:
        self._progress.stop()


def _progress(total: int) -> _Bar | None:
    return _Bar(total) if sys.stderr.isatty() and total > 0 else None
