"""Helpers for the OCR guard's tests: installed engines, configurations, pipeline runs."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from typing import Any

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


def leaked(text: str) -> list[str]:
    upper = text.upper()
    return [m for m in TEXT_MARKERS if m.upper() in upper]


def as_json(obj: Any) -> str:
    return json.dumps(obj, default=str)
