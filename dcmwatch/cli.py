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
from collections.abc import Mapping, Sequence

from dcmwatch import __version__, keys
from dcmwatch import config as config_mod
from dcmwatch import log as log_mod
from dcmwatch.backfill import args as backfill_args
from dcmwatch.config import Config
from dcmwatch.errors import ConfigError

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
    return process(config, args)


def _run(config: Config, env: Mapping[str, str]) -> int:
    from dcmwatch.daemon import Daemon  # noqa: PLC0415 - keeps `--version` and batch light

    try:
        return Daemon(config, env).run()
    except OSError as exc:  # a folder that cannot be created or watched, at start
        log_mod.get().error("daemon.failed", errno=exc.errno, strerror=exc.strerror)
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
    backfill_args.add_arguments(proc)
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
def process(config: Config, args: argparse.Namespace) -> int:
    """A backfill over inputs that are never modified or removed (see `dcmwatch.backfill`)."""
    from dcmwatch.backfill.cli import run  # noqa: PLC0415 - keeps `run` and `--version` light

    return run(config, args, log_mod.get())
