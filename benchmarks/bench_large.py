"""Large files: peak RSS per size class, and MB/s against pydicom reading and writing the same file.

    python benchmarks/bench_large.py [--classes 10,250,1000] [--root DIR] [--check]   # MiB
    python -m benchmarks.run --phases large        # the same, in the end-to-end report

For each size class (MB) a native 16-bit 1024x768 multi-frame is generated frame by frame
(`dcmwatch.testing.large`), then each contender runs on it in a fresh process of its own:

* floor: ``pydicom.dcmread(path)`` + ``ds.save_as(out)``: reading and writing the file, no
  de-identification, no mask, no fsync;
* dcmwatch: ``store.read_input`` + ``pipeline.process_bytes`` (Basic Profile, a mask rectangle
  on every frame) + ``store.write_durable`` (fsync), as a worker runs a file.

Each process imports everything first, then reports the wall time of the work and its own
VmHWM from /proc (interpreter included: ~60 MB; "(peak - start)" leaves out what the process
held before the file). Classes are MiB; MB/s are 10^6 bytes a second. The target (``--check``
exits 1 when it fails) is dcmwatch's peak RSS <= 1.5 x the file for classes of 250 MiB and
more; below that the interpreter dominates. The speed ratio is printed, not enforced.
Compressed (JPEG 2000 tiled) classes are not measured yet: their frames are not yet edited
one at a time, and encoding a gigabyte of JPEG 2000 takes longer than the rest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RSS_TARGET = 1.5
#: Classes below this many MB print their ratio without a target.
TARGET_FROM_MB = 250
DEFAULT_CLASSES = (10, 250, 1000)
_FRAME_BYTES = 1024 * 768 * 2
_KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
_CONFIG = """
[paths]
inbox = "inbox"
outbox = "outbox"
quarantine = "quarantine"
state = "state"
[deid]
key_file = "secret.key"
[[rules]]
name = "banner"
[rules.match]
Modality = "MG"
[[rules.actions]]
type = "mask"
rects = [[0, 0, 200, 40]]
fill = 0
"""


@dataclass(frozen=True, slots=True)
class Run:
    """One contender on one file: wall seconds of the work, the process's peak RSS and its
    RSS just before the work started (the interpreter and libraries)."""

    seconds: float
    peak_rss: int
    start_rss: int


@dataclass(frozen=True, slots=True)
class Row:
    size_class: int
    file_bytes: int
    floor: Run
    dcmwatch: Run

    @property
    def rss_ratio(self) -> float:
        return self.dcmwatch.peak_rss / self.file_bytes

    @property
    def work_ratio(self) -> float:
        """Peak RSS above what the process held before the file, over the file's size."""
        return (self.dcmwatch.peak_rss - self.dcmwatch.start_rss) / self.file_bytes

    @property
    def speed_ratio(self) -> float:
        """dcmwatch MB/s over the floor's (> 1: faster than pydicom's read + write)."""
        return self.floor.seconds / self.dcmwatch.seconds if self.dcmwatch.seconds else 0.0

    @property
    def has_target(self) -> bool:
        return self.size_class >= TARGET_FROM_MB

    @property
    def passes(self) -> bool:
        return not self.has_target or self.rss_ratio <= RSS_TARGET


def _mb_per_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds if seconds > 0 else 0.0


def _status(field: str) -> int:
    """A /proc/self/status memory field (VmHWM, VmRSS) in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child(kind: str, src: Path, dest: Path, config_path: Path) -> None:
    """Runs in the measured process: one contender on one file, JSON to stdout."""
    import pydicom  # noqa: PLC0415 - the measured process imports what it needs, then starts

    from dcmwatch import config, dicomfile, pipeline, store  # noqa: PLC0415

    dicomfile.silence_library_messages()
    cfg = config.load(config_path).with_secret(bytes.fromhex(_KEY_HEX))
    pipeline.build_steps(cfg)
    start_rss = _status("VmRSS")
    start = time.perf_counter()
    if kind == "floor":
        pydicom.dcmread(src).save_as(dest)
    else:
        got = store.read_input(src, max_bytes=cfg.limits.max_file_bytes)
        result = pipeline.process_bytes(got.data, cfg)
        store.write_durable(dest, result.data, tag="bench", mode=0o640)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss": _status("VmHWM"), "start_rss": start_rss}))


def _measure(kind: str, src: Path, dest: Path, config_path: Path) -> Run:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(src), str(dest), str(config_path)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed: {proc.stderr[-1000:]}")
    dest.unlink(missing_ok=True)
    got = json.loads(proc.stdout)
    return Run(float(got["seconds"]), int(got["peak_rss"]), int(got["start_rss"]))


def _config(root: Path) -> Path:
    key = root / "secret.key"
    key.write_text(_KEY_HEX + "\n")
    key.chmod(0o600)
    path = root / "bench-large.toml"
    path.write_text(_CONFIG)
    return path


def run(classes: tuple[int, ...], root: Path, say: object = None) -> list[Row]:
    """Generate and measure each class in `root` (one file at a time on disk)."""
    from dcmwatch.testing import large  # noqa: PLC0415 - keeps `--child` start-up as measured

    root.mkdir(parents=True, exist_ok=True)
    config_path = _config(root)
    rows = []
    for mb in classes:
        frames = max(1, round(mb * 2**20 / _FRAME_BYTES))
        if callable(say):
            say(f"large: generating {mb} MB ({frames} frames)")
        src = large.write_multiframe(root / f"large-{mb}.dcm", frames=frames).path
        size = src.stat().st_size
        floor = _measure("floor", src, root / "floor-out.dcm", config_path)
        ours = _measure("dcmwatch", src, root / "dcmwatch-out.dcm", config_path)
        src.unlink()
        rows.append(Row(mb, size, floor, ours))
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| class | file MiB | floor MB/s | floor peak RSS MB | dcmwatch MB/s "
        "| dcmwatch peak RSS MB | peak / file | (peak - start) / file | speed vs floor | target |",
        "|" + "---|" * 10,
    ]
    for r in rows:
        target = (f"{'PASS' if r.passes else 'FAIL'} (<= {RSS_TARGET} x)" if r.has_target
                  else "-")
        lines.append(
            f"| native {r.size_class} MiB | {r.file_bytes / 2**20:.0f} "
            f"| {_mb_per_s(r.file_bytes, r.floor.seconds):.0f} | {r.floor.peak_rss / 2**20:.0f} "
            f"| {_mb_per_s(r.file_bytes, r.dcmwatch.seconds):.0f} "
            f"| {r.dcmwatch.peak_rss / 2**20:.0f} | {r.rss_ratio:.2f} x "
            f"| {r.work_ratio:.2f} x | {r.speed_ratio:.2f} x | {target} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--classes", default=",".join(str(c) for c in DEFAULT_CLASSES),
                    help="file sizes in MB, comma-separated")
    ap.add_argument("--root", type=Path, help="work folder (default: a temporary folder)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    ap.add_argument("--child", nargs=4, metavar=("KIND", "SRC", "DEST", "CONFIG"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, src, dest, cfg = args.child
        child(kind, Path(src), Path(dest), Path(cfg))
        return 0
    classes = tuple(int(c) for c in args.classes.split(",") if c.strip())
    root = args.root or Path(tempfile.mkdtemp(prefix="dcmwatch-large-"))
    try:
        rows = run(classes, root, say=lambda m: print(f"[bench] {m}", file=sys.stderr))
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    print(table(rows))
    return 1 if args.check and not all(r.passes for r in rows) else 0


if __name__ == "__main__":
    if __package__ in (None, ""):  # run as a script: the repository root on the path
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
