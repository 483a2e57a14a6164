"""The flags of `dcmwatch process` (light: no engine, no pydicom, so `--help` stays fast)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_arguments(proc: argparse.ArgumentParser) -> None:
    proc.add_argument("paths", nargs="*", metavar="SRC",
                      help="files, folders (recursive) or s3://bucket/prefix URLs")
    where = proc.add_mutually_exclusive_group()
    where.add_argument("--cluster", metavar="ADDRESS",
                       help="run on a Dask scheduler, e.g. tcp://host:8786 (tls:// off a "
                            "trusted network)")
    where.add_argument("--local-cluster", type=_positive, metavar="N",
                       help="start a Dask LocalCluster of N single-threaded worker processes")
    proc.add_argument("--batch-files", type=_positive, default=64, metavar="N",
                      help="input paths per task (default 64)")
    proc.add_argument("--inflight", type=_positive, metavar="K",
                      help="batches in flight (default: twice the worker threads)")
    proc.add_argument("--resume", action="store_true",
                      help="continue an interrupted run (a plain rerun also skips what the "
                           "journal marks done)")
    proc.add_argument("--manifest", metavar="FILE", help="a file of input paths/URLs, one a line")
    proc.add_argument("--outbox", metavar="DEST",
                      help="folder or s3:// URL for outputs (default: paths.outbox)")
    proc.add_argument("--quarantine", metavar="DEST",
                      help="folder or s3:// URL for quarantined originals "
                           "(default: paths.quarantine)")
    proc.add_argument("--journal", type=Path, metavar="FILE",
                      help="backfill journal (default: paths.state/backfill.sqlite)")
