"""What de-identification adds to one 512x512 CT slice, over a bare read + write of the same file.

The floor is what every file costs without de-identification: `dicomfile.decode` then
`dicomfile.encode`, as the pipeline does. Each configuration runs decode + de-identify + encode
on the same synthetic slices (realistic header: nested sequences, private block, overlay, PHI
markers). The machine is shared, so each figure is the minimum over repeats of the mean per
file, and the floor is measured in the same run, interleaved with the configurations. Target
(issue 3): at most 1 ms added per slice, for every configuration.

    python benchmarks/bench_deid.py [--files 40] [--repeats 7] [--size 512] [--check]

`--check` exits 1 when a configuration misses the target (2 on bad arguments).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pydicom.config
from pydicom.dataset import Dataset

from dcmwatch import dicomfile
from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.settings import OPTION_NAMES
from dcmwatch.testing import ct_series_bytes

TARGET_MS = 1.0
_LIMIT = 2 * 1024**3
_KEY = b"benchmark-key-0123456789abcdef"

CONFIGS: dict[str, tuple[str, ...]] = {
    "basic profile": (),
    "modified dates + clean descriptors": ("retain_long_modified_dates", "clean_descriptors"),
    "all options (modified dates)": tuple(o for o in OPTION_NAMES if o != "retain_long_full_dates"),
}


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    ms: float
    added_ms: float

    @property
    def ok(self) -> bool:
        return self.added_ms <= TARGET_MS


def _per_file_ms(files: list[bytes], step: Callable[[Dataset], Dataset] | None) -> float:
    gc.collect()
    start = time.perf_counter()
    for data in files:
        ds = dicomfile.decode(data, max_inflated=_LIMIT)
        if step is not None:
            ds = step(ds)
        dicomfile.encode(ds)
    return (time.perf_counter() - start) * 1000 / len(files)


def measure(files: list[bytes], repeats: int) -> tuple[float, list[Row]]:
    """(floor ms per file, one row per configuration), each the minimum over ``repeats``."""
    steps = {name: make_deidentifier(DeidSettings(options=opts), _KEY)
             for name, opts in CONFIGS.items()}  # fmt: skip
    best: dict[str | None, float] = {}
    for _ in range(repeats):
        for name, step in [(None, None), *steps.items()]:
            ms = _per_file_ms(files, step)
            best[name] = min(ms, best.get(name, ms))
    floor = best[None]
    rows = [Row(name, best[name], best[name] - floor) for name in steps]
    return floor, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--files", type=int, default=40, help="slices per repeat")
    ap.add_argument("--repeats", type=int, default=7, help="minimum taken over this many runs")
    ap.add_argument("--size", type=int, default=512, help="rows and columns of each slice")
    ap.add_argument("--check", action="store_true", help=f"exit 1 above {TARGET_MS} ms added")
    args = ap.parse_args(argv)
    if args.files < 1 or args.repeats < 1:
        ap.error("--files and --repeats must be at least 1")
    # As in a worker (job.init_worker): no reading validation, no warnings.
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    warnings.simplefilter("ignore")
    files = ct_series_bytes(args.files, rows=args.size, columns=args.size)
    _per_file_ms(files[:4], None)  # warm up imports and caches
    floor, rows = measure(files, args.repeats)
    print(f"{args.files} slices of {args.size}x{args.size}, min of {args.repeats} runs")
    print(f"{'configuration':38s} {'ms/file':>8s} {'added ms':>9s} {'target':>7s}")
    print(f"{'floor (decode + encode)':38s} {floor:8.3f} {'':>9s} {'':>7s}")
    for row in rows:
        verdict = "ok" if row.ok else "MISS"
        print(f"{row.name:38s} {row.ms:8.3f} {row.added_ms:9.3f} {verdict:>7s}")
    if args.check and not all(row.ok for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
