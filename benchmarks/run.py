"""The end-to-end benchmark: floor vs `dcmwatch process` vs the daemon, in one run.

    python -m benchmarks.run                 # the full run (< 5 minutes on 2 cores)
    python -m benchmarks.run --quick         # a few small files: checks the harness works
    python -m benchmarks.run --json out.json # also write every number as JSON
    python -m benchmarks.run --phases large  # peak RSS and MB/s of 10 MiB .. 1 GiB files

Phases (see benchmarks/README.md): generate; floor, process and daemon side by side at the
machine's worker count; scaling with 1..N workers; steady load at half the daemon's peak rate;
a burst of small files waiting at start-up; compressed inputs (JPEG 2000 lossless, RLE). Every
target is a ratio to the floor of the same run or a latency/RSS bound, printed PASS or FAIL.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import pydicom

from benchmarks import bench_large, data
from benchmarks.contenders import (
    Result,
    Rules,
    run_burst,
    run_daemon,
    run_floor,
    run_process,
)

RATIO_TARGET = 0.85
#: `dcmwatch process` CPU per file against the daemon's, in the same run (issue 17: within 10 %).
PROCESS_CPU_TARGET = 1.10
P50_TARGET_MS = 20.0
P99_TARGET_MS = 100.0
BURST_RSS_TARGET_MB = 200.0
READY_TARGET_S = 1.0
#: side: floor, process, daemon at N workers; scaling: 1..N-1 workers; steady: half-peak load;
#: compressed: JPEG 2000 and RLE; burst: small files waiting at start-up; large: peak RSS and
#: MB/s per file size class (bench_large), only when asked for: it writes gigabytes.
DEFAULT_PHASES = ("side", "scaling", "steady", "compressed", "burst")
PHASES = (*DEFAULT_PHASES, "large")


@dataclass(frozen=True, slots=True)
class Settings:
    files: int
    size: int
    workers: int
    burst: int
    burst_size: int
    compressed: int
    seed: int
    phases: frozenset[str] = frozenset(DEFAULT_PHASES)
    #: File size classes (MiB) of the large phase.
    large: tuple[int, ...] = bench_large.DEFAULT_CLASSES

    @classmethod
    def quick(cls, workers: int, seed: int, phases: frozenset[str]) -> Settings:
        return cls(files=6, size=64, workers=workers, burst=40, burst_size=32, compressed=2,
                   seed=seed, phases=phases, large=(10,))


@dataclass(slots=True)
class Report:
    settings: Settings
    results: list[Result] = field(default_factory=list)
    targets: list[tuple[str, bool, str]] = field(default_factory=list)
    #: Ratios that explain a target without being one (the durable floor).
    references: list[tuple[str, str]] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def get(self, name: str, workers: int | None = None) -> Result:
        for r in self.results:
            if r.name == name and (workers is None or r.workers == workers):
                return r
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": {k: sorted(v) if isinstance(v, frozenset) else v
                         for k, v in dataclasses.asdict(self.settings).items()},
            "machine": self.machine,
            "results": [r.as_dict() for r in self.results],
            "targets": [{"target": t, "pass": ok, "measured": m} for t, ok, m in self.targets],
            "references": [{"reference": r, "measured": m} for r, m in self.references],
            "seconds": round(self.seconds, 1),
        }


def machine() -> dict[str, str]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()), "cpu": model, "python": platform.python_version(),
        "pydicom": pydicom.__version__, "numpy": numpy.__version__,
        "kernel": platform.release(), "loadavg_at_start": load,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run_all(s: Settings, root: Path) -> Report:
    report = Report(s, machine=machine())
    rules = Rules(rect=(0, 0, min(200, s.size), min(40, s.size)))
    started = time.monotonic()

    n = s.workers
    if s.phases & {"side", "scaling", "steady"}:
        _say(f"generating {s.files} CT slices {s.size}x{s.size}")
        ct = data.ct_files(root / "data" / "ct", s.files, seed=s.seed, size=s.size)

    # Side by side at N workers, then scaling with 1..N-1 (N is already measured).
    widths = [n] if "side" in s.phases else []
    if "scaling" in s.phases:
        widths += list(range(n - 1, 0, -1))
    for w in widths:
        _say(f"floor, {w} worker(s)")
        report.results.append(run_floor(root / f"floor-{w}", ct.paths, w, rules))
        if w == n:
            _say(f"floor durable, {w} worker(s)")
            report.results.append(run_floor(root / "floor-durable", ct.paths, w, rules,
                                            name="floor durable", durable=True))
            _say("dcmwatch process")
            report.results.append(run_process(root / "process", ct.folder, len(ct.paths),
                                              ct.total_bytes, w, rules))
        _say(f"daemon e2e, {w} worker(s)")
        report.results.append(run_daemon(root / f"daemon-{w}", ct.paths, ct.total_bytes, w,
                                         rules))

    if "steady" in s.phases:
        peak = report.get("daemon e2e", n).files_per_s if "side" in s.phases else 100.0
        rate = max(peak / 2, 1.0)
        _say(f"steady load at {rate:.0f} files/s (half the daemon's peak)")
        report.results.append(run_daemon(root / "steady", ct.paths, ct.total_bytes, n, rules,
                                         name="daemon steady 50%", rate=rate))

    for syntax in ("j2k", "rle") if "compressed" in s.phases else ():
        _say(f"compressed {syntax}: generating {s.compressed}")
        corpus = data.compressed_series(root / "data" / syntax, s.compressed, seed=s.seed,
                                        size=s.size, syntax=syntax)
        report.results.append(run_floor(root / f"floor-{syntax}", corpus.paths, n, rules,
                                        name=f"floor {syntax}"))
        report.results.append(run_daemon(root / f"daemon-{syntax}", corpus.paths,
                                         corpus.total_bytes, n, rules,
                                         name=f"daemon e2e {syntax}"))

    if "burst" in s.phases:
        _say(f"burst: {s.burst} files of {s.burst_size}x{s.burst_size} waiting at start-up")
        burst_root = root / "burst"
        corpus = data.burst_files(burst_root / "inbox", s.burst, seed=s.seed,
                                  size=s.burst_size)
        # A mask must fit the image (else the file is quarantined): the burst's slices are
        # smaller than the others.
        fitted = Rules(rect=(0, 0, min(200, s.burst_size), min(40, s.burst_size)))
        report.results.append(run_burst(burst_root, s.burst, corpus.paths, corpus.total_bytes,
                                        n, fitted))

    if "large" in s.phases:
        for row in bench_large.run(s.large, root / "large", say=_say):
            report.results += _large_results(row)

    report.targets = targets(report, n)
    report.references = references(report, n)
    report.seconds = time.monotonic() - started
    return report


def _large_results(row: bench_large.Row) -> list[Result]:
    """A size class as two rows of the table: the pydicom floor and dcmwatch, one file each."""
    out = []
    for name, run in (("floor", row.floor), ("dcmwatch", row.dcmwatch)):
        extra = {"size_class_mib": float(row.size_class)}
        if name == "dcmwatch":
            extra |= {"peak_over_file": round(row.rss_ratio, 2),
                      "speed_vs_floor": round(row.speed_ratio, 2)}
        out.append(Result(name=f"large native {name}", workers=1, files=1,
                          bytes=row.file_bytes, seconds=run.seconds, cpu=0.0,
                          peak_rss=run.peak_rss, extra=extra))
    return out


def targets(report: Report, n: int) -> list[tuple[str, bool, str]]:
    out: list[tuple[str, bool, str]] = []
    phases = report.settings.phases
    if "side" in phases:
        floor = report.get("floor", n)
        e2e = report.get("daemon e2e", n)
        ratio = e2e.files_per_s / floor.files_per_s if floor.files_per_s else 0.0
        out.append((f"daemon e2e >= {RATIO_TARGET} x floor files/s", ratio >= RATIO_TARGET,
                    f"{ratio:.2f} x ({e2e.files_per_s:.0f} vs {floor.files_per_s:.0f} files/s)"))
        # One engine for both front ends: a backfill must not pay more than the daemon does.
        proc = report.get("dcmwatch process", n)
        speed = proc.files_per_s / e2e.files_per_s if e2e.files_per_s else 0.0
        out.append(("process >= daemon e2e files/s (start-up included)", speed >= 1.0,
                    f"{speed:.2f} x ({proc.files_per_s:.0f} vs {e2e.files_per_s:.0f} files/s)"))
        cpu = proc.cpu_ms_per_file / e2e.cpu_ms_per_file if e2e.cpu_ms_per_file else 0.0
        out.append((f"process CPU/file <= {PROCESS_CPU_TARGET} x daemon's",
                    cpu <= PROCESS_CPU_TARGET,
                    f"{cpu:.2f} x ({proc.cpu_ms_per_file:.2f} vs {e2e.cpu_ms_per_file:.2f} ms)"))
    if "steady" in phases:
        steady = report.get("daemon steady 50%", n)
        p50 = steady.percentile(50) or 0.0
        p99 = steady.percentile(99) or 0.0
        out.append((f"latency p50 <= {P50_TARGET_MS:.0f} ms at half peak",
                    p50 <= P50_TARGET_MS, f"{p50:.1f} ms"))
        out.append((f"latency p99 <= {P99_TARGET_MS:.0f} ms at half peak",
                    p99 <= P99_TARGET_MS, f"{p99:.1f} ms"))
    if "burst" in phases:
        burst = report.get("daemon burst", n)
        rss = burst.peak_rss / 2**20
        ready = burst.extra["ready_s"]
        out.append((f"peak RSS <= {BURST_RSS_TARGET_MB:.0f} MB, {burst.files} waiting",
                    rss <= BURST_RSS_TARGET_MB, f"{rss:.0f} MB"))
        out.append((f"start-up to ready <= {READY_TARGET_S:.0f} s, {burst.files} present",
                    ready <= READY_TARGET_S, f"{ready:.2f} s"))
    for r in report.results:
        ratio = r.extra.get("peak_over_file")
        size = r.extra.get("size_class_mib", 0.0)
        if ratio is not None and size >= bench_large.TARGET_FROM_MB:
            out.append((f"large native {size:.0f} MiB: peak RSS <= {bench_large.RSS_TARGET} x file",
                        ratio <= bench_large.RSS_TARGET, f"{ratio:.2f} x"))
    return out


def references(report: Report, n: int) -> list[tuple[str, str]]:
    """The daemon against the floor that also writes durably: how much of the gap to the
    target is the price of fsync, which the issue's floor does not pay."""
    if "side" not in report.settings.phases:
        return []
    floor = report.get("floor", n)
    durable = report.get("floor durable", n)
    e2e = report.get("daemon e2e", n)
    return [
        ("floor durable / floor files/s",
         f"{durable.files_per_s / floor.files_per_s:.2f} x" if floor.files_per_s else "-"),
        ("daemon e2e / floor durable files/s",
         f"{e2e.files_per_s / durable.files_per_s:.2f} x" if durable.files_per_s else "-"),
    ]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(report: Report) -> str:
    head = ("| run | workers | files | files/s | MB/s | p50 ms | p99 ms | peak RSS MB "
            "| peak PSS MB | CPU ms/file | notes |")
    lines = [head, "|" + "---|" * 11]
    for r in report.results:
        notes = ", ".join(f"{k}={v}" for k, v in r.extra.items())
        lines.append(
            f"| {r.name} | {r.workers} | {r.files} | {r.files_per_s:.1f} | {r.mb_per_s:.1f} "
            f"| {_fmt(r.percentile(50))} | {_fmt(r.percentile(99))} "
            f"| {r.peak_rss / 2**20:.0f} | {r.peak_pss / 2**20:.0f} "
            f"| {r.cpu_ms_per_file:.2f} | {notes} |"
        )
    lines.append("")
    lines.append("| target | result | measured |")
    lines.append("|---|---|---|")
    for name, ok, measured in report.targets:
        lines.append(f"| {name} | {'PASS' if ok else 'FAIL'} | {measured} |")
    if report.references:
        lines += ["", "| reference (no target) | measured |", "|---|---|"]
        lines += [f"| {name} | {measured} |" for name, measured in report.references]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Report:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="a few small files (CI)")
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--size", type=int, default=512, help="rows = columns of the CT slices")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--burst", type=int, default=20_000)
    ap.add_argument("--burst-size", type=int, default=64)
    ap.add_argument("--compressed", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--root", type=Path, help="work folder (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--json", type=Path, help="write the results as JSON")
    ap.add_argument("--phases", default=",".join(DEFAULT_PHASES),
                    help=f"comma-separated subset of {','.join(PHASES)} (large: only when named)")
    ap.add_argument("--large", default=",".join(str(c) for c in bench_large.DEFAULT_CLASSES),
                    help="file size classes of the large phase, MiB, comma-separated")
    args = ap.parse_args(argv)
    phases = frozenset(p.strip() for p in args.phases.split(",") if p.strip())
    if not phases <= set(PHASES):
        ap.error(f"unknown phase(s): {sorted(phases - set(PHASES))}")
    if args.quick:
        settings = Settings.quick(args.workers, args.seed, phases)
    else:
        settings = Settings(args.files, args.size, args.workers, args.burst, args.burst_size,
                            args.compressed, args.seed, phases,
                            tuple(int(c) for c in args.large.split(",") if c.strip()))
    root = args.root or Path(tempfile.mkdtemp(prefix="dcmwatch-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        report = run_all(settings, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    m = report.machine
    print(f"\nmachine: {m['nproc']} x {m['cpu']}, Python {m['python']}, pydicom {m['pydicom']}, "
          f"numpy {m['numpy']}, load average at start {m['loadavg_at_start']}, "
          f"{m['date_utc']} UTC; run took {report.seconds:.0f} s\n")
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
