"""The edge of `dcmwatch suggest-masks`: read files, group them by device, print rules."""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydicom.dataset import Dataset

from dcmwatch import dicomfile
from dcmwatch.config import Config
from dcmwatch.errors import DcmwatchError
from dcmwatch.ocr.settings import find_tessdata
from dcmwatch.ocr.suggest import Device, device_of, sample, suggest, to_toml

EXIT_OK = 0
EXIT_USAGE = 2


def suggest_masks(config: Config, folder: Path, n: int, files: Iterable[Path]) -> int:
    settings = config.ocr
    if not folder.is_dir() or n < 1:
        print("dcmwatch: suggest-masks needs a folder and --sample >= 1", file=sys.stderr)
        return EXIT_USAGE
    problem = _engine_problem(settings.engine, settings.tessdata)
    if problem:
        print(f"dcmwatch: {config.source}: ocr.engine: {problem}", file=sys.stderr)
        return EXIT_USAGE
    by_device: dict[Device, list[str]] = defaultdict(list)
    unreadable = 0
    for path in files:
        ds = _read(path, config, header_only=True)
        if ds is None or "PixelData" not in ds:
            unreadable += ds is None
            continue
        by_device[device_of(ds)].append(str(path))
    for device in sorted(by_device):
        chosen = sample(sorted(by_device[device]), n)
        datasets = (ds for ds in _read_all(chosen, config) if ds is not None)
        try:
            found = suggest(device, datasets, settings, config.pixels.max_pixel_bytes)
        except DcmwatchError as exc:
            print(f"# {device.manufacturer} {device.model}: skipped ({exc.reason})")
            continue
        print(to_toml(found))
    if unreadable:
        print(f"dcmwatch: {unreadable} file(s) were not readable DICOM", file=sys.stderr)
    return EXIT_OK


def _read_all(paths: Iterable[str], config: Config) -> Iterator[Dataset | None]:
    for p in paths:
        yield _read(Path(p), config, header_only=False)


def _read(path: Path, config: Config, *, header_only: bool) -> Dataset | None:
    del header_only  # one decode path: dicomfile's checks hold for both uses
    try:
        data = path.read_bytes()
        return dicomfile.decode(data, max_inflated=config.limits.max_inflated_bytes)
    except (OSError, DcmwatchError):
        return None


def _engine_problem(engine: str, tessdata: str | None) -> str:
    module = "tesserocr" if engine == "tesseract" else "rapidocr_onnxruntime"
    if importlib.util.find_spec(module) is None:
        return f"{engine!r} is not installed"
    if engine == "tesseract" and find_tessdata(tessdata) is None:
        return "tesseract language data (eng.traineddata) was not found"
    return ""
