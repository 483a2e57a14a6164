"""What does cleaning compressed Pixel Data cost? The stream walk per slice, against reading and
writing the same compressed slice, measured in the same run.

    python benchmarks/bench_streams.py [--files 50] [--rounds 5] [--size 512] [--check]
                                       [--target 0.2]

Synthetic 512x512 CT slices are compressed once (JPEG 2000 and JPEG-LS lossless by pydicom's
encoders, RLE by pydicom, 8-bit JPEG baseline by Pillow, as a VL photograph's would be), then
for every slice and syntax:

* floor: ``dicomfile.decode`` + ``dicomfile.encode`` of the compressed file (what every file
  costs anyway; no pixel is decoded);
* clean: `clean_pixel_data` on the decoded dataset (the walk, the rebuilt tables).

Native slices are timed too: their path is one dictionary lookup. Times are CPU seconds of this
process, best round (as ``timeit`` advises), milliseconds per slice. ``--check`` exits 1 when
cleaning costs more than `--target` times the floor for JPEG, JPEG-LS or JPEG 2000.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

from dcmwatch import dicomfile
from dcmwatch.pixels.streams import clean_pixel_data
from dcmwatch.testing import ct_series_bytes

TARGET_RATIO = 0.2
MAX_INFLATED = 1 << 31
CHECKED = ("JPEG baseline", "JPEG-LS", "JPEG 2000")


def _compressed(native: bytes, syntax: str) -> bytes:
    ds = dicomfile.decode(native, max_inflated=MAX_INFLATED)
    if syntax == "native":
        return native
    if syntax == "JPEG baseline":
        arr = ds.pixel_array.astype(np.float64)
        grey = ((arr - arr.min()) * 255 / max(float(np.ptp(arr)), 1.0)).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(grey).save(buf, format="JPEG", quality=90)
        _as_8bit(ds)
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].is_undefined_length = True
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    else:
        uid = {"JPEG-LS": JPEGLSLossless, "JPEG 2000": JPEG2000Lossless, "RLE": RLELossless}
        ds.compress(uid[syntax], generate_instance_uid=False)
    return dicomfile.encode(ds)


def _as_8bit(ds: Dataset) -> None:
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    for keyword in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth"):
        if keyword in ds:
            delattr(ds, keyword)


def _floor(data: bytes) -> float:
    t0 = time.process_time()
    dicomfile.encode(dicomfile.decode(data, max_inflated=MAX_INFLATED))
    return time.process_time() - t0


def _clean(data: bytes) -> float:
    ds = dicomfile.decode(data, max_inflated=MAX_INFLATED)
    t0 = time.process_time()
    clean_pixel_data(ds)
    return time.process_time() - t0


def measure(series: dict[str, list[bytes]], rounds: int) -> dict[str, tuple[float, float]]:
    """Best round's (floor, clean) ms per slice for each syntax."""
    variants: dict[str, Callable[[bytes], float]] = {"floor": _floor, "clean": _clean}
    best: dict[str, tuple[float, float]] = {}
    for syntax, files in series.items():
        for fn in variants.values():
            fn(files[0])  # warm up
        results: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, fn in variants.items():
                spent = sum(fn(data) for data in files)
                results[name].append(spent / len(files) * 1000)
        best[syntax] = (min(results["floor"]), min(results["clean"]))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=50, help="synthetic slices (default 50)")
    ap.add_argument("--rounds", type=int, default=5, help="passes over the slices (default 5)")
    ap.add_argument("--size", type=int, default=512, help="rows = columns (default 512)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when cleaning costs more than the target ratio")
    ap.add_argument("--target", type=float, default=TARGET_RATIO,
                    help=f"clean / floor allowed (default {TARGET_RATIO})")
    args = ap.parse_args(argv)
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    natives = ct_series_bytes(max(args.files, 1), rows=args.size, columns=args.size)
    syntaxes = ("native", "JPEG baseline", "JPEG-LS", "JPEG 2000", "RLE")
    series = {s: [_compressed(n, s) for n in natives] for s in syntaxes}
    result = measure(series, max(args.rounds, 1))
    print(f"{args.size}x{args.size} CT, {len(natives)} slices x {args.rounds} rounds, "
          "CPU ms per slice (best round)")
    print(f"{'syntax':14s} {'KB/slice':>9s} {'floor ms':>9s} {'clean ms':>9s} {'clean/floor':>12s}")
    ok = True
    for syntax in syntaxes:
        floor, clean = result[syntax]
        size = sum(map(len, series[syntax])) / len(series[syntax]) / 1024
        ratio = clean / floor if floor else 0.0
        print(f"{syntax:14s} {size:9.1f} {floor:9.3f} {clean:9.3f} {ratio:11.3f}x")
        if syntax in CHECKED and ratio > args.target:
            ok = False
    verdict = "meets" if ok else "MISSES"
    print(f"target: cleaning JPEG, JPEG-LS and JPEG 2000 costs at most {args.target} x the "
          f"floor: {verdict}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
