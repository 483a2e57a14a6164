"""What the burned-in text guard costs: ms per image for each installed engine, and the effect
on a mixed stream (90 % CT, 10 % US) such as a department's outbox sees.

The floor is the same pipeline with the guard off, measured in the same run, so the numbers
compare on any machine. One process, files in sequence: the ratio is what a worker pays.

    python benchmarks/bench_ocr.py [--images 10] [--stream 100] [--ct-size 512]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from typing import Any

from dcmwatch import pipeline
from dcmwatch.config import Config
from dcmwatch.ocr.settings import find_tessdata
from dcmwatch.testing import ct_series_bytes
from dcmwatch.testing.banners import Banner, banner_dataset, banner_text, to_bytes

KEY = b"k" * 32


def engines() -> list[str]:
    out = []
    if importlib.util.find_spec("tesserocr") and find_tessdata(None):
        out.append("tesseract")
    if importlib.util.find_spec("rapidocr_onnxruntime"):
        out.append("rapidocr")
    return out


def config(engine: str | None) -> Config:
    ocr: dict[str, Any] = {"enabled": engine is not None, "policy": "flag"}
    if engine:
        ocr["engine"] = engine
    return Config.model_validate({"ocr": ocr}).with_secret(KEY)


def _ms_per_file(files: list[bytes], cfg: Config) -> float:
    pipeline.process_bytes(files[0], cfg)  # warm up: engine load, caches
    t0 = time.perf_counter()
    for data in files:
        pipeline.process_bytes(data, cfg)
    return (time.perf_counter() - t0) * 1000 / len(files)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10, help="US images per engine")
    ap.add_argument("--stream", type=int, default=100, help="files in the mixed stream")
    ap.add_argument("--ct-size", type=int, default=512)
    args = ap.parse_args(argv)
    us = [to_bytes(banner_dataset(Banner(banner_text(style=i), size=18), seed=i))
          for i in range(args.images)]
    n_us = max(args.stream // 10, 1)
    ct = ct_series_bytes(args.stream - n_us, rows=args.ct_size, columns=args.ct_size)
    stream = list(ct)
    for i in range(n_us):  # every tenth file is an ultrasound image
        stream.insert(min(i * 10 + 9, len(stream)), us[i % len(us)])
    results: dict[str, float] = {"us_ms_floor": _ms_per_file(us, config(None)),
                                 "stream_ms_floor": _ms_per_file(stream, config(None))}
    for engine in engines():
        cfg = config(engine)
        results[f"us_ms_{engine}"] = _ms_per_file(us, cfg)
        results[f"stream_ms_{engine}"] = _ms_per_file(stream, cfg)
        results[f"stream_ratio_{engine}"] = (
            results[f"stream_ms_{engine}"] / results["stream_ms_floor"])
    print(f"US image (640x480), guard off: {results['us_ms_floor']:8.1f} ms/image")
    for engine in engines():
        print(f"US image, {engine:9s}:          {results[f'us_ms_{engine}']:8.1f} ms/image")
    print(f"mixed stream 90 % CT / 10 % US, guard off: {results['stream_ms_floor']:8.1f} ms/file")
    for engine in engines():
        print(f"mixed stream, {engine:9s}:          {results[f'stream_ms_{engine}']:8.1f} ms/file "
              f"(x{results[f'stream_ratio_{engine}']:.2f})")
    return results


if __name__ == "__main__":
    main()
