"""`dcmwatch preview` outlines the guard's findings beside the mask outlines, so an operator can
turn a finding into a mask rule by looking, and sees exactly what the guard acts on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcmwatch.pipeline import process_bytes
from dcmwatch.pixels.preview import Box, draw_boxes
from dcmwatch.pixels.preview_png import OCR_RGB, write_preview
from dcmwatch.testing.banners import Banner, banner_dataset, banner_text, to_bytes
from dcmwatch.testing.groundtruth import CONDITIONS, make_case
from tests.ocr._support import ENGINES, make_config


def _outlined(png: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(png).convert("RGB"))
    return np.all(rgb == np.array(OCR_RGB, dtype=np.uint8), axis=-1)


@pytest.mark.parametrize("engine", ENGINES)
def test_text_is_outlined_only_with_the_guard_enabled(tmp_path: Path, engine: str) -> None:
    ds = banner_dataset(Banner(banner_text(), size=20, position="top-left"))
    src = tmp_path / "in.dcm"
    src.write_bytes(to_bytes(ds))

    on = make_config(engine)
    write_preview(src, tmp_path / "on.png", on)
    outline = _outlined(tmp_path / "on.png")
    rows, _ = np.nonzero(outline)
    assert rows.size > 0, "no OCR box drawn"
    assert rows.max() < ds.Rows // 2, "boxes belong around the top banner"

    off = on.model_copy(update={"ocr": on.ocr.model_copy(update={"enabled": False})})
    write_preview(src, tmp_path / "off.png", off)
    assert not _outlined(tmp_path / "off.png").any()


@pytest.mark.parametrize("engine", ENGINES)
def test_an_image_without_text_gets_no_ocr_box(tmp_path: Path, engine: str) -> None:
    src = tmp_path / "in.dcm"
    src.write_bytes(to_bytes(banner_dataset(None)))
    write_preview(src, tmp_path / "out.png", make_config(engine))
    assert not _outlined(tmp_path / "out.png").any()


#: Ground-truth cases; with tesseract, seed 31's name is matched at a confidence below
#: ``min_confidence`` (the guard acts on a header value whatever the confidence).
LOW_CONFIDENCE_SEED = 31


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("seed", [LOW_CONFIDENCE_SEED, 35, 2, 6])
def test_preview_outlines_exactly_the_guards_findings(tmp_path: Path, engine: str,
                                                      seed: int) -> None:
    """The amber outlines are the boxes of the findings the pipeline's guard reports for the
    frame, no more and no fewer (same engine, thresholds and header values)."""
    case = make_case(seed, CONDITIONS[seed % len(CONDITIONS)])
    config = make_config(engine, policy="flag", frames="all")
    findings = process_bytes(to_bytes(case.dataset), config).findings
    if engine == "tesseract" and seed == LOW_CONFIDENCE_SEED:
        assert any(f.confidence < config.ocr.min_confidence and set(f.classes) - {"text"}
                   for f in findings), "the case no longer has a low-confidence header match"
    src = tmp_path / "in.dcm"
    src.write_bytes(to_bytes(case.dataset))
    write_preview(src, tmp_path / "out.png", config)
    expected = np.zeros((int(case.dataset.Rows), int(case.dataset.Columns), 3), dtype=np.uint8)
    draw_boxes(expected, [Box(*f.box, rgb=OCR_RGB) for f in findings if f.frame == 1])
    drawn = np.all(expected == np.array(OCR_RGB, dtype=np.uint8), axis=-1)
    assert np.array_equal(_outlined(tmp_path / "out.png"), drawn)


@pytest.mark.parametrize("engine", ENGINES)
def test_text_under_a_mask_rule_is_not_outlined(tmp_path: Path, engine: str) -> None:
    """The guard reads the frame as the rules leave it, and so does the preview: a banner a
    rule masks is outlined in red only."""
    ds = banner_dataset(Banner(banner_text(), size=18, position="top-left"))
    src = tmp_path / "in.dcm"
    src.write_bytes(to_bytes(ds))
    rules = [{"name": "banner", "match": {"Manufacturer": "ACME*"},
              "actions": [{"type": "mask", "rects": [[0, 0, 480, 40]]}]}]
    write_preview(src, tmp_path / "out.png", make_config(engine, rules=rules))
    assert not _outlined(tmp_path / "out.png").any()
