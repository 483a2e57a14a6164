"""`dcmwatch suggest-masks`: the printed rule loads, and with it the same device's images pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcmwatch import cli
from dcmwatch import config as config_mod
from dcmwatch.ocr.suggest import Device, Suggestion, device_of, merge, sample, suggest, to_toml
from dcmwatch.pipeline import process_bytes
from dcmwatch.testing.banners import Banner, banner_dataset, banner_text, to_bytes
from dcmwatch.testing.groundtruth import CONDITIONS, make_case
from tests.conftest import write_config

from ._support import installed, leaked, make_config

ENGINE = next((n for n in ("tesseract", "rapidocr") if installed(n)), None)


def test_merge_pads_clips_and_joins_touching_boxes() -> None:
    boxes = [(10, 10, 20, 10), (32, 10, 20, 10), (0, 90, 10, 10)]
    assert merge(boxes, 2, rows=100, columns=100) == ((0, 88, 12, 12), (8, 8, 46, 14))


def test_sample_spreads_over_the_session() -> None:
    assert sample([str(i) for i in range(9)], 3) == ["0", "4", "8"]
    assert sample(["a", "b"], 5) == ["a", "b"]


def test_the_rule_is_valid_toml_for_the_config(tmp_path: Path) -> None:
    s = Suggestion(Device('Odd "Co"', "", 480, 640), 3, 2, ((0, 0, 100, 20),))
    cfg = write_config(tmp_path, to_toml(s))
    rule = config_mod.load(cfg).rules[0]
    assert rule.match == {"Manufacturer": 'Odd "Co"', "Rows": 480, "Columns": 640}


@pytest.mark.skipif(ENGINE is None, reason="no OCR engine installed")
def test_suggested_masks_make_the_device_pass(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "device"
    folder.mkdir()
    images = [banner_dataset(Banner(banner_text(style=i), size=16 + 2 * (i % 2)), rows=240,
                             seed=i) for i in range(4)]
    for i, ds in enumerate(images):
        (folder / f"img{i}.dcm").write_bytes(to_bytes(ds))
    base = write_config(tmp_path, f'\n[ocr]\nengine = "{ENGINE}"\n')
    assert cli.main(["suggest-masks", str(folder), "--config", str(base), "--sample", "4"]) == 0
    out = capsys.readouterr().out
    assert "[[rules]]" in out and leaked(out) == []
    cfg = write_config(tmp_path, f'\n[ocr]\nenabled = true\nengine = "{ENGINE}"\n' + out)
    config = config_mod.load(cfg).with_secret(bytes(32))
    for ds in images:
        assert process_bytes(to_bytes(ds), config).findings == ()


@pytest.mark.skipif(ENGINE is None, reason="no OCR engine installed")
@pytest.mark.parametrize("seed", [31, 35, 2])
def test_suggest_counts_and_masks_what_the_guard_finds(seed: int) -> None:
    """An image counts as 'with text' exactly when the guard has a finding in it (a header value
    read at low confidence included), and the suggested rectangles cover every finding."""
    assert ENGINE is not None
    ds = make_case(seed, CONDITIONS[seed % len(CONDITIONS)]).dataset
    config = make_config(ENGINE, policy="flag", frames="all")
    findings = process_bytes(to_bytes(ds), config).findings
    s = suggest(device_of(ds), [ds], config.ocr, 2**31)
    assert s.images == 1
    assert s.images_with_text == (1 if findings else 0)
    for f in findings:
        x, y, w, h = f.box
        assert any(rx <= x and ry <= y and x + w <= rx + rw and y + h <= ry + rh
                   for rx, ry, rw, rh in s.rects), "a finding outside every suggested mask"
