"""Detection rate over a synthetic set: banners >= 10 px high are found in >= 99 % of images.

100 images (240 x 640) per engine: five pixel formats x five text sizes x four positions, the banner's date
spelled four ways and its name three ways, at two brightnesses. Pillow's bundled font at size 14
has 10 px capitals (checked below), so every size here is text >= 10 px high. An image counts as
detected when the guard has a finding overlapping the banner; a finding elsewhere would be a
false one (images without text are covered in test_guard).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from dcmwatch.ocr import OcrSettings, collect
from dcmwatch.ocr.step import read_image
from dcmwatch.testing.banners import Banner, banner_dataset, banner_text

from ._support import ENGINES

FORMATS: list[dict[str, Any]] = [
    {"photometric": "MONOCHROME2", "bits": 8},
    {"photometric": "MONOCHROME2", "bits": 16},
    {"photometric": "MONOCHROME1", "bits": 16},
    {"photometric": "RGB", "bits": 8},
    {"photometric": "YBR_FULL", "bits": 8},
]
SIZES = (14, 16, 18, 22, 26)
POSITIONS = ("top-left", "top-right", "bottom-left", "center")
ROWS, COLUMNS = 240, 640


def test_the_smallest_size_is_ten_pixels_high() -> None:
    from PIL import ImageFont

    _, top, _, bottom = ImageFont.load_default(size=min(SIZES)).getbbox("H")
    assert bottom - top >= 10


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _banner_box(banner: Banner) -> tuple[int, int, int, int]:
    from PIL import ImageFont

    left, top, right, bottom = ImageFont.load_default(size=banner.size).getbbox(banner.text)
    w, h = right - left, bottom - top
    x, y = {
        "top-left": (8, 8), "top-right": (COLUMNS - w - 8, 8),
        "bottom-left": (8, ROWS - h - 8), "center": ((COLUMNS - w) // 2, (ROWS - h) // 2),
    }[banner.position]
    return (x - 4, y - 4, w + 8, h + 8)


@pytest.mark.parametrize("engine", ENGINES)
def test_detection_rate_is_at_least_99_percent(engine: str) -> None:
    settings = OcrSettings(enabled=True, engine=engine)  # type: ignore[arg-type]
    variants = list(itertools.product(range(len(FORMATS)), SIZES, POSITIONS))
    missed = []
    identified = 0
    for i, (f, size, position) in enumerate(variants):
        banner = Banner(banner_text(style=i), size=size, position=position,
                        level=1.0 if i % 2 else 0.8)
        ds = banner_dataset(banner, rows=ROWS, columns=COLUMNS, seed=i, **FORMATS[f])
        _, findings = read_image(ds, collect(ds), settings, 2**31)
        box = _banner_box(banner)
        hits = [x for x in findings if _overlaps(x.box, box)]
        if not hits:
            missed.append((FORMATS[f]["photometric"], FORMATS[f]["bits"], size, position))
        if any(set(x.classes) - {"text"} for x in hits):
            identified += 1
    rate = 1 - len(missed) / len(variants)
    assert rate >= 0.99, f"detected {rate:.0%}; missed {missed}"
    # Most detections also name the header value they matched (not required: any text stops).
    assert identified >= 0.9 * len(variants)
