"""What a mask writes: a configured stored value, or what renders black in the image's display.

The default fill must hide text *and* leave the image readable. The stored minimum does the
first but not the second on CT: a signed 16-bit slice filled with -32768 holds -33792 HU, which
a viewer's automatic window (and the preview's full-range one) stretches over, washing out the
anatomy. So the default is chosen per (0028,0004) *Photometric Interpretation*:

* **HU images** (MONOCHROME2 with a modality LUT whose (0028,1054) *Rescale Type* is HU, or
  absent on a CT): -1000 HU, air, converted to a stored value through the modality LUT and
  clipped into the stored range. (0028,0120) *Pixel Padding Value* plays no part: padding marks
  pixels outside the scan, it is not a colour.
* **Other MONOCHROME2**: the stored value just at or below the lower edge of the image's display
  window (the last ``window`` action of the matched rules, else the first (0028,1050)/(0028,1051)
  pair), so it renders black; without a window, or when no stored value lies that low, the
  darkest stored value (the lowest, or the highest under a negative slope).
* **MONOCHROME1**: the inverse: just above the window's upper edge, else the brightest-valued.
* **RGB**: 0 in every sample. **YBR_FULL** (also YBR_FULL_422, decoded to full resolution):
  Y = 0, Cb = Cr = the middle of the range. **PALETTE COLOR**: the entry of lowest luminance.
  Other photometric types are refused (``pixel_unsupported``).
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut
from pydicom.tag import Tag

from dcmwatch.pixels import header
from dcmwatch.pixels.errors import UnsupportedPixelsError
from dcmwatch.pixels.hu import ModalityLut
from dcmwatch.pixels.window import Window

__all__ = ["AIR_HU", "default_fill", "explicit_fill", "is_hu_image"]

#: Air: black under every soft-tissue, brain or bone window.
AIR_HU = -1000.0
_MODALITY = Tag(0x00080060)


def explicit_fill(value: int | tuple[int, ...], samples: int, lo: int, hi: int) -> list[int]:
    """A configured stored fill, one value per sample, clipped into the stored range."""
    values = [value] if isinstance(value, int) else list(value)
    if len(values) == 1:
        values = values * samples
    if len(values) != samples:
        raise UnsupportedPixelsError("the mask 'fill' has not one value per sample of the image")
    return [min(max(v, lo), hi) for v in values]


def is_hu_image(ds: Dataset, lut: ModalityLut) -> bool:
    """Whether ``lut`` yields Hounsfield units: Rescale Type HU, or a CT without a Rescale Type
    (the CT Image module defines the rescaled values as HU, PS3.3 C.8.2.1)."""
    if not lut.present:
        return False
    if lut.rescale_type is not None:
        return lut.rescale_type == "HU"
    return header.text(ds, _MODALITY).upper() == "CT"


def default_fill(
    ds: Dataset,
    photometric: str,
    *,
    samples: int,
    lo: int,
    hi: int,
    lut: ModalityLut | None,
    window: Window | None,
) -> list[int]:
    """The stored value(s) that render black in the image's display (see the module text).

    ``lut`` is the frame's modality LUT (monochrome images), ``window`` the display window.
    """
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        return [_monochrome(ds, lut or ModalityLut(lo, hi, present=False), window,
                            inverted=photometric == "MONOCHROME1")]
    if photometric == "RGB":
        return [0] * samples
    if photometric == "YBR_FULL":
        mid = (hi + 1) // 2
        return [0, mid, mid]
    if photometric == "PALETTE COLOR":
        return [_darkest_palette_index(ds, lo, hi)]
    raise UnsupportedPixelsError("a mask matched an image of an unsupported photometric type")


def _monochrome(ds: Dataset, lut: ModalityLut, window: Window | None, *, inverted: bool) -> int:
    if not inverted and is_hu_image(ds, lut):
        return lut.nearest_stored(AIR_HU)
    if window is not None:
        black = lut.nearest_above(window.upper) if inverted else lut.nearest_at_or_below(
            window.lower)
        if black is not None:
            return black
    return lut.darkest_stored(inverted=inverted)


def _darkest_palette_index(ds: Dataset, lo: int, hi: int) -> int:
    """The index of lowest luminance (Rec. 601 weights) in the (0028,1201..1203) palette."""
    if hi - lo + 1 > 1 << 16:
        raise UnsupportedPixelsError("a palette colour image of more than 16 bits")
    indices = np.arange(lo, hi + 1, dtype=np.int32 if lo < 0 else np.uint16)
    try:
        rgb = np.asarray(apply_color_lut(indices, ds), dtype=np.float64)
    except Exception as exc:  # pydicom's message may quote values
        raise UnsupportedPixelsError(
            f"the palette colour lookup table cannot be used ({type(exc).__name__})"
        ) from None
    luminance = rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114
    return lo + int(np.argmin(luminance))
