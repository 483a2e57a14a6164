"""Every bundled pydicom image with Pixel Data comes out or is quarantined; none crashes."""

from __future__ import annotations

import pytest

from dcmwatch.errors import TransformError
from dcmwatch.pixels import MaskOutsideImageError, PixelSettings

from ._support import read, rule, step_for
from .test_step import FORMATS, QUARANTINED

EXTRA = [
    "MR_small_expb.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+n2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_dcmtk_+eb+cy+s4.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "SC_rgb_jls_lossy_sample.dcm",
    "SC_rgb_jpeg.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmd.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "rtdose_1frame.dcm",
    "rtdose_expb_1frame.dcm",
    "rtdose_rle_1frame.dcm",
]

#: A rule that does everything that can apply to any image.
EVERYTHING = rule([
    {"type": "mask", "rects": [[0, 0, 2, 2]], "circles": [[5, 5, 2]]},
    {"type": "mask", "polygons": [[[0, 0], [9, 0], [0, 9]]], "keep_inside": True},
])


#: EVERYTHING's shapes reach column and row 9: smaller images are refused, not clipped.
EXTENT = 9


@pytest.mark.parametrize("name", sorted(set(FORMATS + QUARANTINED + EXTRA)))
def test_comes_out_or_is_quarantined(name: str) -> None:
    """The step returns a dataset or raises TransformError: never another exception. An image
    too small for the rule's shapes is refused as such."""
    step = step_for([EVERYTHING], PixelSettings(burned_in_annotation="require-mask"))
    ds = read(name)
    too_small = min(int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)) < EXTENT
    try:
        step(ds)
    except MaskOutsideImageError:
        assert too_small and name not in QUARANTINED
    except TransformError:
        assert name in QUARANTINED
    else:
        assert not too_small
