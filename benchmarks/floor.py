"""The bare floor: what plain pydicom costs for the same files, in the same kind of pool.

Per file: `dcmread`, `pixel_array`, one rectangle set to 0, pixels put back (re-encoded in the
input's transfer syntax when compressed), `save_as`. No de-identification, no validation, no
fsync. Run as a subprocess so that its RSS and CPU are measured exactly like the daemon's:

    python -m benchmarks.floor --workers 2 --rect 0,0,200,40 [--durable] --out OUT LIST

`--durable` writes each output the way dcmwatch must (temporary name, fsync, rename, fsync of
the folder): the same floor plus only the price of not losing a file, which the issue's floor
leaves out (its writes stay dirty in the page cache, and the kernel's flusher threads, outside
the measured process tree, write them back after the clock has stopped).

LIST names one input per line. It prints `ready` once the pool is warm, waits for a line on
stdin, runs, and prints one JSON line `{"files": n, "bytes": b, "seconds": s}`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pydicom
import pydicom.config

_RECT: tuple[int, int, int, int] = (0, 0, 1, 1)
_DURABLE = False


def _init(rect: tuple[int, int, int, int], warm: str, durable: bool) -> None:
    global _RECT, _DURABLE  # noqa: PLW0603 - per-process state of a pool worker
    _RECT = rect
    _DURABLE = durable
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    _ = pydicom.dcmread(warm).pixel_array  # imports the pixel handlers before the clock runs


def one(task: tuple[str, str]) -> int:
    src, dst = task
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array
    if not arr.flags.writeable:
        arr = arr.copy()
    x, y, w, h = _RECT
    arr[y : y + h, x : x + w] = 0
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax.is_compressed:
        ds.compress(syntax, arr)
    else:
        ds.PixelData = arr.tobytes()
    if not _DURABLE:
        ds.save_as(dst)
        return os.path.getsize(src)
    folder, name = os.path.split(dst)
    tmp = os.path.join(folder, f".{name}.tmp")
    with open(tmp, "wb") as f:
        ds.save_as(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dst)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return os.path.getsize(src)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--rect", required=True, help="x,y,width,height")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--durable", action="store_true",
                    help="temporary name, fsync, rename, fsync of the folder per output")
    ap.add_argument("list", type=Path)
    args = ap.parse_args(argv)
    x, y, w, h = (int(v) for v in args.rect.split(","))
    inputs = args.list.read_text().split("\n")
    inputs = [p for p in inputs if p]
    args.out.mkdir(parents=True, exist_ok=True)
    tasks = [(src, str(args.out / f"{i:06d}.dcm")) for i, src in enumerate(inputs)]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=_init,
                             initargs=((x, y, w, h), inputs[0], args.durable)) as pool:
        # Start every worker (each runs the initializer) before the clock starts.
        list(pool.map(time.sleep, [0.05] * args.workers))
        print("ready", flush=True)
        sys.stdin.readline()
        t0 = time.perf_counter()
        total = sum(pool.map(one, tasks))
        seconds = time.perf_counter() - t0
        print(json.dumps({"files": len(tasks), "bytes": total, "seconds": seconds}), flush=True)
        # The harness takes its CPU snapshot while the workers are still alive.
        sys.stdin.readline()


if __name__ == "__main__":
    main()
