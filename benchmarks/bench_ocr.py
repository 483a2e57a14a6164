"""What the burned-in text guard finds and what it costs, for each installed engine.

Detection: images from the independent ground-truth generator (`dcmwatch.testing.groundtruth`:
system fonts the guard was not tuned on, 12-28 px, flat/speckle/anatomy backgrounds, both
polarities, every pixel format), ``--detect`` per condition, each run through the pipeline's real
entry point with the default ``[ocr]`` settings (policy quarantine): an image is detected when
the guard quarantines it (`BurnedInTextError`). "located" counts images where a finding's box
also overlaps the glyph pixels of patient data. False positives: the same images drawn without
text (``--fp`` per background and polarity) and pydicom's bundled CT/MR/NM/SEG files claiming
Burned In Annotation YES, so the default guard reads them.

Cost: ms per image for each engine, and the effect on a mixed stream (90 % CT, 10 % US) such as a
department's outbox sees. The floor is the same pipeline with the guard off, measured in the same
run, so the numbers compare on any machine. One process, files in sequence: the ratio is what a
worker pays.

    python benchmarks/bench_ocr.py [--detect 30] [--fp 20] [--images 10] [--stream 100]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections import defaultdict
from typing import Any

from dcmwatch import pipeline
from dcmwatch.config import Config
from dcmwatch.ocr.errors import BurnedInTextError
from dcmwatch.ocr.settings import find_tessdata
from dcmwatch.testing import ct_series_bytes
from dcmwatch.testing.banners import Banner, banner_dataset, banner_text, to_bytes
from dcmwatch.testing.groundtruth import CONDITIONS, Case, Condition, make_case

#: Bundled files without burned-in text (named exactly: wildcards try to download).
TEXT_FREE_FILES = ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "liver_1frame.dcm",
                   "JPEG2000.dcm", "examples_overlay.dcm")

KEY = b"k" * 32


def engines() -> list[str]:
    out = []
    if importlib.util.find_spec("tesserocr") and find_tessdata(None):
        out.append("tesseract")
    if importlib.util.find_spec("rapidocr_onnxruntime"):
        out.append("rapidocr")
    return out


def config(engine: str | None, policy: str = "flag") -> Config:
    ocr: dict[str, Any] = {"enabled": engine is not None}
    if policy != "quarantine":
        ocr["policy"] = policy
    if engine:
        ocr["engine"] = engine
    return Config.model_validate({"ocr": ocr}).with_secret(KEY)


def guard(data: bytes, cfg: Config) -> tuple[bool, tuple[tuple[int, int, int, int], ...], float]:
    """(quarantined for burned-in text, the findings' boxes, ms) through the real entry point."""
    t0 = time.perf_counter()
    try:
        pipeline.process_bytes(data, cfg)
    except BurnedInTextError as exc:
        ms = (time.perf_counter() - t0) * 1000
        return True, tuple(f.box for f in exc.findings if f.frame == 1), ms
    return False, (), (time.perf_counter() - t0) * 1000


def _located(case: Case, boxes: tuple[tuple[int, int, int, int], ...]) -> bool:
    phi = case.phi_mask()
    return any(phi[y : y + h, x : x + w].any() for x, y, w, h in boxes)


def _size_band(size: int) -> str:
    return "12-15 px" if size < 16 else "16-20 px" if size <= 20 else "21-28 px"


class Tally:
    """Hits out of images, and their time, by key."""

    def __init__(self) -> None:
        self.n: dict[str, int] = defaultdict(int)
        self.hits: dict[str, int] = defaultdict(int)
        self.located: dict[str, int] = defaultdict(int)
        self.ms: dict[str, float] = defaultdict(float)

    def add(self, keys: list[str], hit: bool, located: bool, ms: float) -> None:
        for k in keys:
            self.n[k] += 1
            self.hits[k] += hit
            self.located[k] += located
            self.ms[k] += ms

    def rate(self, key: str) -> float:
        return self.hits[key] / max(self.n[key], 1)

    def row(self, key: str) -> str:
        n = self.n[key]
        return (f"  {key:42s} {self.hits[key]:5d}/{n:<5d} {100 * self.rate(key):6.1f} %"
                f"  located {100 * self.located[key] / max(n, 1):5.1f} %"
                f"  {self.ms[key] / max(n, 1):7.0f} ms/image")


def detection(engine: str, per_condition: int, seed0: int = 0,
              conditions: tuple[Condition, ...] = CONDITIONS) -> tuple[Tally, list[str]]:
    """Detection per condition (and by font, size band, one line or block) for ``engine``."""
    cfg = config(engine, "quarantine")
    tally = Tally()
    missed: list[str] = []
    for condition in conditions:
        for seed in range(seed0, seed0 + per_condition):
            case = make_case(seed, condition)
            hit, boxes, ms = guard(to_bytes(case.dataset), cfg)
            layout = case.layout
            assert layout is not None
            keys = ["overall", condition.name, f"background {condition.background}",
                    f"polarity {condition.polarity}", f"font {layout.font}",
                    f"size {_size_band(layout.size)}",
                    "one line" if layout.lines == 1 else "block of lines"]
            tally.add(keys, hit, hit and _located(case, boxes), ms)
            if not hit:
                missed.append(f"{condition.name} seed {seed} {layout.font} {layout.size} px")
    return tally, missed


def false_positives(engine: str, per_kind: int) -> Tally:
    """Images without text: generated backgrounds (each background and polarity, first pixel
    format of each) and bundled files read as if they claimed burned-in text."""
    cfg = config(engine, "quarantine")
    tally = Tally()
    kinds = {(c.background, c.polarity): c for c in reversed(CONDITIONS)}
    for (background, polarity), condition in sorted(kinds.items()):
        for seed in range(per_kind):
            case = make_case(seed, condition, text=False)
            hit, _, ms = guard(to_bytes(case.dataset), cfg)
            tally.add(["overall", f"{background}/{polarity}"], hit, False, ms)
    for name, data in _bundled():
        hit, _, ms = guard(data, cfg)
        tally.add(["overall", f"bundled {name}"], hit, False, ms)
    return tally


def _bundled() -> list[tuple[str, bytes]]:
    import pydicom  # noqa: PLC0415
    from pydicom.data import get_testdata_file  # noqa: PLC0415

    out = []
    for name in TEXT_FREE_FILES:
        path = get_testdata_file(name, download=False)
        if path is None:
            continue
        ds = pydicom.dcmread(path)
        ds.BurnedInAnnotation = "YES"  # the default guard reads any image claiming text
        out.append((name, to_bytes(ds)))
    return out


def _print_detection(engine: str, tally: Tally, missed: list[str]) -> None:
    print(f"\nDetection, {engine} (default [ocr], policy quarantine; through process_bytes):")
    keys = sorted(tally.n, key=lambda k: (k != "overall", not any(
        k == c.name for c in CONDITIONS), k))
    for k in keys:
        print(tally.row(k))
    worst = min((tally.rate(c.name) for c in CONDITIONS if tally.n[c.name]), default=1.0)
    print(f"  worst condition {100 * worst:.1f} %")
    for m in missed[:20]:
        print(f"  missed: {m}")


def _print_fp(engine: str, tally: Tally) -> None:
    print(f"\nFalse positives, {engine} (images without text):")
    for k in sorted(tally.n, key=lambda k: (k != "overall", k)):
        print(tally.row(k).replace("located", "       ").replace("  0.0 %", "        "))


def _ms_per_file(files: list[bytes], cfg: Config) -> float:
    pipeline.process_bytes(files[0], cfg)  # warm up: engine load, caches
    t0 = time.perf_counter()
    for data in files:
        pipeline.process_bytes(data, cfg)
    return (time.perf_counter() - t0) * 1000 / len(files)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10, help="US images per engine (0: no cost)")
    ap.add_argument("--stream", type=int, default=100, help="files in the mixed stream")
    ap.add_argument("--ct-size", type=int, default=512)
    ap.add_argument("--detect", type=int, default=30, help="images per detection condition")
    ap.add_argument("--fp", type=int, default=20,
                    help="text-free images per background and polarity")
    ap.add_argument("--seed", type=int, default=0, help="first seed of the detection set")
    ap.add_argument("--every", type=int, default=1,
                    help="only every Nth detection condition (a quick look)")
    ap.add_argument("--engine", action="append", help="only this engine (repeatable)")
    args = ap.parse_args(argv)
    chosen = [e for e in engines() if not args.engine or e in args.engine]
    conditions = CONDITIONS[:: max(args.every, 1)]
    results: dict[str, float] = {}
    for engine in chosen:
        if args.detect > 0:
            tally, missed = detection(engine, args.detect, args.seed, conditions)
            _print_detection(engine, tally, missed)
            results[f"detect_{engine}"] = tally.rate("overall")
            results[f"detect_ms_{engine}"] = tally.ms["overall"] / max(tally.n["overall"], 1)
            results[f"detect_worst_{engine}"] = min(
                tally.rate(c.name) for c in CONDITIONS if tally.n[c.name])
        if args.fp > 0:
            fp = false_positives(engine, args.fp)
            _print_fp(engine, fp)
            results[f"fp_{engine}"] = fp.rate("overall")
            results[f"fp_ms_{engine}"] = fp.ms["overall"] / max(fp.n["overall"], 1)
    if args.images > 0:
        results |= cost(args.images, args.stream, args.ct_size, chosen)
    return results


def cost(images: int, stream_files: int, ct_size: int, chosen: list[str]) -> dict[str, float]:
    """ms per US image and per file of a 90 % CT / 10 % US stream, guard off and on."""
    us = [to_bytes(banner_dataset(Banner(banner_text(style=i), size=18), seed=i))
          for i in range(images)]
    n_us = max(stream_files // 10, 1)
    ct = ct_series_bytes(stream_files - n_us, rows=ct_size, columns=ct_size)
    stream = list(ct)
    for i in range(n_us):  # every tenth file is an ultrasound image
        stream.insert(min(i * 10 + 9, len(stream)), us[i % len(us)])
    results = {"us_ms_floor": _ms_per_file(us, config(None)),
               "stream_ms_floor": _ms_per_file(stream, config(None))}
    for engine in chosen:
        cfg = config(engine)
        results[f"us_ms_{engine}"] = _ms_per_file(us, cfg)
        results[f"stream_ms_{engine}"] = _ms_per_file(stream, cfg)
        results[f"stream_ratio_{engine}"] = (
            results[f"stream_ms_{engine}"] / results["stream_ms_floor"])
    print(f"\nUS image (640x480), guard off: {results['us_ms_floor']:8.1f} ms/image")
    for engine in chosen:
        print(f"US image, {engine:9s}:          {results[f'us_ms_{engine}']:8.1f} ms/image")
    print(f"mixed stream 90 % CT / 10 % US, guard off: {results['stream_ms_floor']:8.1f} ms/file")
    for engine in chosen:
        print(f"mixed stream, {engine:9s}:          {results[f'stream_ms_{engine}']:8.1f} ms/file "
              f"(x{results[f'stream_ratio_{engine}']:.2f})")
    return results


if __name__ == "__main__":
    main()
