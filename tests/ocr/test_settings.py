"""The [ocr] section: off by default, validated at load with errors naming the key."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dcmwatch import config as config_mod
from dcmwatch.errors import ConfigError
from dcmwatch.ocr.settings import DEFAULT_MODALITIES, OcrSettings

from ._support import parse


def test_off_by_default_and_never_reads_ct_or_mr() -> None:
    config = config_mod.load(None, cwd=Path("/tmp"))
    assert config.ocr.enabled is False
    assert "CT" not in DEFAULT_MODALITIES and "MR" not in DEFAULT_MODALITIES
    on = OcrSettings.model_construct(enabled=True, modalities=DEFAULT_MODALITIES,
                                     when_burned_in_annotation=False)
    assert not on.reads("CT", burned_in=False)
    assert not on.reads("MR", burned_in=False)
    assert on.reads("us", burned_in=False)


def test_burned_in_annotation_selects_any_modality() -> None:
    on = OcrSettings.model_construct(enabled=True, modalities=(), when_burned_in_annotation=True)
    assert on.reads("CT", burned_in=True)
    assert not on.reads("CT", burned_in=False)


@pytest.mark.parametrize(
    ("snippet", "key"),
    [
        ("allow = ['^ok$', '([unclosed']", "ocr.allow"),
        ("policy = 'shred'", "ocr.policy"),
        ("engine = 'easyocr'", "ocr.engine"),
        ("frames = 0", "ocr.frames"),
        ("frames = 'some'", "ocr.frames"),
        ("min_confidence = 101", "ocr.min_confidence"),
        ("modalities = ['U S']", "ocr.modalities"),
        ("time_limit_seconds = 0", "ocr.time_limit_seconds"),
        ("colour = true", "ocr.colour"),
    ],
)
def test_invalid_values_name_the_key(snippet: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(f"[ocr]\n{snippet}\n")
    assert f"test.toml: {key}" in str(err.value)


def test_the_bad_allow_pattern_is_named_by_index() -> None:
    with pytest.raises(ConfigError, match=r"ocr\.allow: .*\[1\] is not a regular expression"):
        parse("[ocr]\nallow = ['^ok$', '([unclosed']\n")


def test_an_enabled_engine_that_is_not_installed_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "rapidocr_onnxruntime" else real(name))
    with pytest.raises(ConfigError, match=r"ocr: .*'rapidocr' is enabled but not installed"):
        parse("[ocr]\nenabled = true\nengine = 'rapidocr'\n")
    # Disabled, the engine is not needed.
    assert parse("[ocr]\nengine = 'rapidocr'\n").ocr.engine == "rapidocr"


def test_tesseract_needs_its_language_data(tmp_path: Path) -> None:
    if importlib.util.find_spec("tesserocr") is None:
        pytest.skip("tesserocr missing")
    with pytest.raises(ConfigError, match=r"eng\.traineddata"):
        parse(f"[ocr]\nenabled = true\ntessdata = '{tmp_path}'\n")


def test_integer_frames_and_lists_load() -> None:
    config = parse("[ocr]\nframes = 5\nmodalities = ['us', 'SC']\nallow = ['^\\\\d+ cm$']\n")
    assert config.ocr.frames == 5
    assert config.ocr.modalities == ("US", "SC")
