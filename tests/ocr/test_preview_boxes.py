"""`dcmwatch preview` outlines the text the guard's engine reads, beside the mask outlines, so an
operator can turn a finding into a mask rule by looking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcmwatch.preview_png import OCR_RGB, write_preview
from dcmwatch.testing.banners import Banner, banner_dataset, banner_text, to_bytes
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
