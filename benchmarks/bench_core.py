"""The per-file core against the floor's steps, in one process: where issue 6's CPU gap is.

With 2 workers on 2 cores the daemon is CPU-bound, so its throughput relative to the floor is
about the floor's CPU per file over the daemon's. This measures the two cores of that ratio on
the same slices, interleaved file by file, as CPU time of this process (the machine is shared):

* floor: `dcmread` + `pixel_array` + one rectangle set to 0 + `PixelData = tobytes()` +
  `save_as`, from and to memory (what `benchmarks/floor.py` does per file, minus the disk);
* core: `pipeline.process_bytes` with the end-to-end benchmark's configuration (full Basic
  Profile, a HU threshold and the same rectangle), which includes the SHA-256 of the input.

    python benchmarks/bench_core.py [--files 100] [--repeats 5] [--size 512] [--profile OUT]

`--profile OUT` also writes a cProfile of the core over the files (`python -m pstats OUT`).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import sys
import tempfile
import time
import warnings
from io import BytesIO
from pathlib import Path

import pydicom
import pydicom.config

from benchmarks.contenders import KEY_HEX, Rules, write_config
from dcmwatch import config as config_module
from dcmwatch import pipeline
from dcmwatch.testing import ct_series_bytes


def floor_one(data: bytes, rect: tuple[int, int, int, int]) -> bytes:
    ds = pydicom.dcmread(BytesIO(data))
    arr = ds.pixel_array
    if not arr.flags.writeable:
        arr = arr.copy()
    x, y, w, h = rect
    arr[y : y + h, x : x + w] = 0
    ds.PixelData = arr.tobytes()
    out = BytesIO()
    ds.save_as(out)
    return out.getvalue()


def _cpu_ms(fn: object, *args: object) -> float:
    start = time.process_time_ns()
    fn(*args)  # type: ignore[operator]
    return (time.process_time_ns() - start) / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--profile", type=Path)
    args = ap.parse_args(argv)
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    warnings.simplefilter("ignore")
    rules = Rules()
    with tempfile.TemporaryDirectory() as tmp:
        config = config_module.load(write_config(Path(tmp), 1, rules))
    config = config.with_secret(bytes.fromhex(KEY_HEX))
    files = ct_series_bytes(args.files, rows=args.size, columns=args.size)
    for data in files[:3]:
        floor_one(data, rules.rect)
        pipeline.process_bytes(data, config)
    floor = [float("inf")] * len(files)
    core = [float("inf")] * len(files)
    gc.disable()
    try:
        for _ in range(args.repeats):
            for i, data in enumerate(files):
                floor[i] = min(floor[i], _cpu_ms(floor_one, data, rules.rect))
                core[i] = min(core[i], _cpu_ms(pipeline.process_bytes, data, config))
            gc.collect()
    finally:
        gc.enable()
    f = sum(floor) / len(floor)
    c = sum(core) / len(core)
    print(f"{args.files} slices of {args.size}x{args.size}, CPU ms per file (min of "
          f"{args.repeats})")
    print(f"floor  {f:7.3f}")
    print(f"core   {c:7.3f}   floor/core = {f / c:.2f}")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for data in files:
            pipeline.process_bytes(data, config)
        prof.disable()
        prof.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
