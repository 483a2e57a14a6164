"""The `dcmwatch` command: argv -> Config -> the daemon or a batch run -> an exit code.

Only this module chooses exit codes and reads the process environment; everything below it gets
what it needs as arguments. Exit codes: 0 success; 1 some input was quarantined (batch) or a
pseudonym not found (lookup); 2 usage or configuration error; 3 the daemon, the state database
or the engine could not be used.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dcmwatch import __version__, keys, preflight
from dcmwatch import config as config_mod
from dcmwatch import log as log_mod
from dcmwatch.backfill import args as backfill_args
from dcmwatch.config import Config
from dcmwatch.errors import ConfigError, DcmwatchError

EXIT_OK = 0
EXIT_QUARANTINED = 1
EXIT_USAGE = 2
#: The daemon could not start or run (a folder it cannot create or watch); `status`/`lookup`:
#: the state database cannot be read.
EXIT_FAILED = 3
#: `lookup`: no such pseudonym in the map.
EXIT_NOT_FOUND = 1


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:  # noqa: PLR0911 (one return per command)
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
        if args.command in ("check-config", "status", "requeue"):  # no key needed
            return _operator_command(args, config, env)
        if args.command == "lookup":
            return lookup(config, args.pseudonym)
        if args.command == "suggest-masks":
            return _suggest_masks(config, args.folder, args.sample)
        if args.command == "preview":  # de-identifies nothing: needs no key
            return _preview(config, args)
        report = preflight.check(config, env) if args.command == "run" else None
        if report is not None:
            _refuse_config_problems(config, report)
        _configure_logging(config, "daemon" if args.command == "run" else args.command)
        if report is not None and not report.ok:  # only folders: the world, not the config
            log_mod.get().error("daemon.failed", reason="preflight",
                                problems=[f"{p.key}: {p.message}" for p in report.problems])
            return EXIT_FAILED
        if report is not None and report.warnings:
            log_mod.get().warning("daemon.preflight_warning",
                                  problems=[f"{p.key}: {p.message}" for p in report.warnings])
        key = keys.resolve(config.deid, env, create=True)
        config = config.with_secret(key.key)
    except ConfigError as exc:
        print(f"dcmwatch: configuration error:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "run":
        log_mod.get().info("config.loaded", source=config.source, key_origin=key.origin)
        return _run(config, env)
    return process(config, args)


def _operator_command(args: argparse.Namespace, config: Config, env: Mapping[str, str]) -> int:
    if args.command == "check-config":
        return _check_config(config, env)
    if args.command == "status":
        return _status(config, as_json=args.json)
    _configure_logging(config, "requeue")
    return _requeue(config, reason=args.reason, dry_run=args.dry_run)


def _refuse_config_problems(config: Config, report: preflight.Report) -> None:
    config_problems = [p for p in report.problems if p.kind == "config"]
    if config_problems:
        raise ConfigError("\n".join(p.render(config.source) for p in config_problems))


def _configure_logging(config: Config, component: str) -> None:
    """Every line says which command wrote it and which run of it (a random id): a `process`
    run's lines, appended to the daemon's log file, are told apart by both."""
    try:
        log_mod.configure(config.log.format, config.log.level, file=config.log.file,
                          stdout=config.log.stdout,
                          stamp={"run": log_mod.new_run_id(), "component": component})
    except OSError as exc:
        raise ConfigError(f"{config.source}: log.file: cannot open it ({exc.strerror})") from None


def _status(config: Config, *, as_json: bool) -> int:
    from dcmwatch import status  # noqa: PLC0415

    try:
        data = status.collect(config)
    except DcmwatchError as exc:
        print(f"dcmwatch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.Error as exc:  # not a database, or changed under an immutable read
        print(f"dcmwatch: {config.paths.state}: cannot read the state database "
              f"({type(exc).__name__}); try again, or as the service user", file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        print(status.render_json(data))
    else:
        from rich.console import Console  # noqa: PLC0415

        status.render(data, Console())
    return EXIT_OK


def _requeue(config: Config, *, reason: str | None, dry_run: bool) -> int:
    from dcmwatch import requeue  # noqa: PLC0415

    log = log_mod.get()
    summary = requeue.requeue(config, log, reason=reason, dry_run=dry_run)
    log.info("requeue.finished", dry_run=dry_run, reason_filter=reason, **summary.as_fields())
    return EXIT_OK if summary.failed == 0 else EXIT_FAILED


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
    backfill_args.add_arguments(proc)
    check = sub.add_parser("check-config", help="validate and print the effective configuration")
    check.add_argument("--config", "-c", help=cfg_help)
    status = sub.add_parser("status", help="what the daemon did and what waits (no daemon needed)")
    status.add_argument("--config", "-c", help=cfg_help)
    status.add_argument("--json", action="store_true", help="JSON instead of tables")
    requeue = sub.add_parser("requeue", help="move quarantined files back into the inbox")
    requeue.add_argument("--config", "-c", help=cfg_help)
    requeue.add_argument("--reason", help="only entries quarantined for this reason")
    requeue.add_argument("--dry-run", action="store_true", help="count, move nothing")
    look = sub.add_parser("lookup", help="re-identify a pseudonym or UID (needs [deid] reid_map)")
    look.add_argument("--config", "-c", help=cfg_help)
    look.add_argument("pseudonym", help="a PatientID/PatientName pseudonym or a new UID")
    masks = sub.add_parser("suggest-masks",
                           help="OCR a sample of each device's images and print mask rules")
    masks.add_argument("--config", "-c", help=cfg_help)
    masks.add_argument("--sample", type=int, default=20,
                       help="images read per device (default 20)")
    masks.add_argument("folder", type=Path, help="a folder of one or more devices' images")
    _add_preview_parser(sub, cfg_help)
    return parser


def _suggest_masks(config: Config, folder: Path, n: int) -> int:
    from dcmwatch import dicomfile  # noqa: PLC0415
    from dcmwatch.backfill.sources import iter_sources  # noqa: PLC0415
    from dcmwatch.ocr.cli import suggest_masks  # noqa: PLC0415 - loads an OCR engine

    dicomfile.silence_library_messages()  # it reads patients' files in this process
    files = (Path(f) for f in iter_sources([str(folder)]))
    return suggest_masks(config, folder, n, files)


# -- preview --------------------------------------------------------------------------------------
def _add_preview_parser(sub: Any, cfg_help: str) -> None:
    preview = sub.add_parser(
        "preview", help="render a file as the pixel rules would leave it, masks outlined, to PNG"
    )
    preview.add_argument("--config", "-c", help=cfg_help)
    preview.add_argument("file", type=Path, help="the DICOM file")
    preview.add_argument("-o", "--output", type=Path, required=True, help="the PNG to write")
    preview.add_argument("--frame", type=_positive, default=1, help="frame number (from 1)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _preview(config: Config, args: argparse.Namespace) -> int:
    """Exit 0 with the PNG written; 2 when the file does not exist; 1 when it cannot be
    rendered or the PNG not written. Messages never name the input (its name may be PHI)."""
    from dcmwatch import dicomfile  # noqa: PLC0415
    from dcmwatch.errors import InputError  # noqa: PLC0415
    from dcmwatch.pixels.preview_png import write_preview  # noqa: PLC0415 - loads Pillow

    dicomfile.silence_library_messages()  # it reads a patient's file in this process
    if not args.file.exists():
        print("dcmwatch: preview: the input file does not exist", file=sys.stderr)
        return EXIT_USAGE
    try:
        rows, columns = write_preview(args.file, args.output, config, frame=args.frame)
    except InputError as exc:
        print(f"dcmwatch: preview: the input cannot be rendered ({exc.reason}): {exc}",
              file=sys.stderr)
        return EXIT_QUARANTINED
    except DcmwatchError as exc:
        print(f"dcmwatch: preview: {exc}", file=sys.stderr)
        return EXIT_QUARANTINED
    print(f"dcmwatch: preview: wrote {columns} x {rows} PNG", file=sys.stderr)
    return EXIT_OK



def _check_config(config: Config, env: Mapping[str, str]) -> int:
    """The checks `run` makes before it starts (`preflight.check`), and the effective
    configuration; exit 2 or 3 exactly when `run` would."""
    report = preflight.check(config, env)
    data = config_mod.effective(config)
    # Modes as an operator writes them (0o640), not the decimal int they are (416).
    data["output"]["file_mode"] = f"0o{config.output.file_mode:o}"
    data["key_origin"] = report.key_origin
    print(json.dumps(data, indent=2))
    for warning in report.warnings:
        print(f"dcmwatch: warning: {warning.render(config.source)} (`run` starts and retries "
              "each write until it can)", file=sys.stderr)
    if report.ok:
        print(f"dcmwatch: {config.source}: configuration is valid", file=sys.stderr)
        return EXIT_OK
    lines = "\n".join(p.render(config.source) for p in report.problems)
    print(f"dcmwatch: `run` would refuse to start:\n{lines}", file=sys.stderr)
    return EXIT_USAGE if any(p.kind == "config" for p in report.problems) else EXIT_FAILED


def lookup(config: Config, pseudonym: str) -> int:
    """Print the originals behind a pseudonym as JSON: 0 found, 1 not found, 2 map disabled
    (a configuration matter), 3 the map cannot be read.

    The audit event says who asked and whether it was found; it names the pseudonym only when
    it is one (a mistyped argument may be an original ID, which must not reach the log).
    """
    from dcmwatch import journal  # noqa: PLC0415

    try:  # stdout is the answer; the audit event goes to stderr and the site's log file
        log_mod.configure(config.log.format, config.log.level, stream=sys.stderr,
                          file=config.log.file,
                          stamp={"run": log_mod.new_run_id(), "component": "lookup"})
    except OSError as exc:  # no lookup that the log file would not record
        raise ConfigError(f"{config.source}: log.file: cannot open it for the audit event "
                          f"({exc.strerror})") from None
    log = log_mod.get()
    if not config.deid.reid_map:
        print(f"dcmwatch: {config.source}: deid.reid_map: the re-identification map is disabled;"
              " nothing reversible was stored", file=sys.stderr)
        log.warning("reid.lookup", found=False, reason="disabled", operator_uid=os.getuid())
        return EXIT_USAGE
    path = config.paths.state / journal.FILENAME
    try:
        rows = journal.lookup_reid(path, pseudonym) or []
    except sqlite3.Error as exc:
        print(f"dcmwatch: {path}: cannot read the re-identification map"
              f" ({type(exc).__name__})", file=sys.stderr)
        log.error("reid.lookup", found=False, reason="unreadable", operator_uid=os.getuid())
        return EXIT_FAILED
    log.info("reid.lookup", found=bool(rows), matches=len(rows), operator_uid=os.getuid(),
             pseudonym=pseudonym.strip() if rows else None)
    if not rows:
        print("dcmwatch: no such pseudonym in the re-identification map", file=sys.stderr)
        return EXIT_NOT_FOUND
    originals: dict[str, list[str]] = {}
    for kind, original in rows:
        originals.setdefault(kind, []).append(original)
    print(json.dumps({"pseudonym": pseudonym.strip(), "originals": originals}, indent=2))
    return EXIT_OK


# -- batch mode -----------------------------------------------------------------------------------
def process(config: Config, args: argparse.Namespace) -> int:
    """A backfill over inputs that are never modified or removed (see `dcmwatch.backfill`)."""
    from dcmwatch.backfill.cli import run  # noqa: PLC0415 - keeps `run` and `--version` light

    return run(config, args, log_mod.get())
