"""Frames chosen and rendered to 8 bits as a viewer shows them."""

from __future__ import annotations

import numpy as np
import pytest

from dcmwatch.ocr.render import frame_indices, render_frames
from dcmwatch.testing.banners import Banner, banner_dataset


@pytest.mark.parametrize(
    ("total", "frames", "expected"),
    [(1, "all", [0]), (5, "first", [0]), (5, "all", [0, 1, 2, 3, 4]), (9, 3, [0, 4, 8]),
     (4, 10, [0, 1, 2, 3]), (7, 1, [0])],
)
def test_frame_choice(total: int, frames: str | int, expected: list[int]) -> None:
    assert frame_indices(total, frames) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("photometric", "bits"), [("MONOCHROME2", 8), ("MONOCHROME2", 16),
                                                   ("MONOCHROME1", 16), ("RGB", 8),
                                                   ("YBR_FULL", 8)])
def test_text_is_bright_on_dark_in_every_format(photometric: str, bits: int) -> None:
    ds = banner_dataset(Banner("HELLO", size=24), photometric=photometric,  # type: ignore[arg-type]
                        bits=bits, rows=120, columns=200)  # type: ignore[arg-type]
    total, [(index, image)] = render_frames(ds, "first", 2**31)
    assert (total, index) == (1, 0)
    assert image.dtype == np.uint8 and image.shape[:2] == (120, 200)
    grey = image if image.ndim == 2 else image[..., 0]
    assert int(grey[8:40, 8:80].max()) >= 200  # the text, white
    assert int(np.median(grey[8:40, 8:80])) <= 40  # on its dark plate
