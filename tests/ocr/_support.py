"""Helpers for the OCR guard's tests: installed engines, configurations, pipeline runs."""

from __future__ import annotations

import importlib.util
import io
import json
import re
from pathlib import Path
from typing import Any, Final

import pydicom
import pytest
from pydicom.dataset import Dataset

from dcmwatch import config as config_mod
from dcmwatch.config import Config
from dcmwatch.ocr.settings import find_tessdata
from dcmwatch.pipeline import Processed, process_bytes
from dcmwatch.testing.banners import PATIENT, to_bytes

KEY = bytes(range(32))


def installed(engine: str) -> bool:
    if engine == "tesseract":
        return importlib.util.find_spec("tesserocr") is not None and find_tessdata(None) is not None
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


ENGINES = [
    pytest.param(name, marks=pytest.mark.skipif(not installed(name), reason=f"{name} missing"))
    for name in ("tesseract", "rapidocr")
]


def make_config(engine: str, rules: list[dict[str, Any]] | None = None, **ocr: Any) -> Config:
    settings: dict[str, Any] = {"enabled": True, "engine": engine, **ocr}
    data = {"ocr": settings, "rules": rules or []}
    config = Config.model_validate(data)
    return config.with_secret(KEY)


def parse(text: str) -> Config:
    return config_mod.parse(text, source="test.toml", base=Path("/tmp"))


def run(ds: Dataset, config: Config) -> Processed:
    return process_bytes(to_bytes(ds), config)


def read_output(result: Processed) -> Dataset:
    return pydicom.dcmread(io.BytesIO(result.data))


#: Strings of the banner that must never appear in a log, sidecar or error.
TEXT_MARKERS = (
    PATIENT.name.split("^")[0],
    PATIENT.name.split("^")[1],
    PATIENT.patient_id,
    "1951",
    "08/29",
    "29.08",
)


#: Values the daemon makes itself and that are made of digits, so they can hold "1951" or
#: "29.08" by chance (a timestamp at 23:13:29.08, a random UID): a JSON number, and these keys.
_OURS: Final = frozenset({"timestamp", "run", "claim_id", "output", "sha256"})
_ISO_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?")


def _without_our_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_our_numbers(v) for k, v in value.items() if k not in _OURS}
    if isinstance(value, list):
        return [_without_our_numbers(v) for v in value]
    if isinstance(value, int | float):
        return None
    return value


def _searchable(text: str) -> str:
    """The text with what the daemon wrote itself taken out: a JSON document, or each JSON line,
    without timestamps, run and claim ids, pseudonymous output paths and numbers; any other
    line as it is, less ISO timestamps."""
    try:
        return json.dumps(_without_our_numbers(json.loads(text)))
    except ValueError:
        pass
    parts = []
    for line in text.splitlines():
        try:
            parts.append(json.dumps(_without_our_numbers(json.loads(line))))
        except ValueError:
            parts.append(_ISO_TIME.sub("", line))
    return "\n".join(parts)


def leaked(text: str) -> list[str]:
    upper = _searchable(text).upper()
    return [m for m in TEXT_MARKERS if m.upper() in upper]


def as_json(obj: Any) -> str:
    return json.dumps(obj, default=str)
