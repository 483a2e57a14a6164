"""Explicit VR Big Endian inputs leave as Explicit VR Little Endian with exact values."""

from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian

from dcmwatch.pixels import PixelSettings, codec

from ._support import decode, read, roundtrip, rule, step_for, synthetic, to_bytes

#: Every big-endian image pydicom bundles (8-bit OB and OW, 1-bit, 16-bit, 32-bit, RGB planar 1).
BIG_ENDIAN = [
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "ExplVR_BigEnd.dcm",
    "SC_rgb_small_odd_big_endian.dcm",
    "liver_expb_1frame.dcm",
    "rtdose_expb.dcm",
    "rtdose_expb_1frame.dcm",
]
#: Big-endian files and their little-endian twins: the same pixel values.
TWINS = [
    ("MR_small_bigendian.dcm", "MR_small.dcm"),
    ("rtdose_expb.dcm", "rtdose.dcm"),
    ("liver_expb_1frame.dcm", "liver_1frame.dcm"),
    ("SC_rgb_small_odd_big_endian.dcm", "SC_rgb_small_odd.dcm"),
]

NO_MATCH = step_for([rule([{"type": "mask", "rects": [[0, 0, 2, 2]]}], {"Modality": "XX"})])


def _header(ds: Dataset) -> dict[str, object]:
    skip = {"PixelData", "PhotometricInterpretation", "PlanarConfiguration"}
    # Group lengths (gggg,0000) are retired; pydicom's writer drops them whatever the syntax.
    return {
        e.keyword or str(e.tag): e.value
        for e in ds
        if e.keyword not in skip and e.tag.element != 0
    }


@pytest.mark.parametrize("name", BIG_ENDIAN)
def test_no_rule_converts_with_exact_values(name: str) -> None:
    """Without a matching rule: little endian out, pixel and header values unchanged."""
    before = read(name)
    assert before.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    expected = decode(read(name))
    out = roundtrip(NO_MATCH(read(name)))
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    after = decode(out)
    assert after.shape == expected.shape
    assert np.array_equal(after, expected)
    assert after.dtype.byteorder in ("<", "=", "|")
    assert out.SOPInstanceUID == before.SOPInstanceUID  # same instance, other syntax
    assert _header(out) == _header(before)


@pytest.mark.parametrize(("big", "little"), TWINS)
def test_values_equal_the_little_endian_twin(big: str, little: str) -> None:
    """pydicom ships the same images in both byte orders: the converted one equals the other."""
    out = roundtrip(NO_MATCH(read(big)))
    assert np.array_equal(decode(out), decode(read(little)))


def test_masked_big_endian_is_little_endian_and_exact() -> None:
    """With a mask: fill inside, the decoded input outside, written little endian."""
    before = decode(read("MR_small_bigendian.dcm"))
    step = step_for([rule([{"type": "mask", "rects": [[4, 2, 10, 5]], "fill": -7}])])
    out = roundtrip(step(read("MR_small_bigendian.dcm")))
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    after = decode(out)
    assert (after[0, 2:7, 4:14] == -7).all()
    keep = np.ones(after.shape[1:3], dtype=bool)
    keep[2:7, 4:14] = False
    assert np.array_equal(after[:, keep], before[:, keep])


def test_planar_configuration_is_kept() -> None:
    out = roundtrip(NO_MATCH(read("ExplVR_BigEnd.dcm")))
    assert out.PlanarConfiguration == 1
    assert np.array_equal(decode(out), decode(read("ExplVR_BigEnd.dcm")))


def test_other_ow_values_are_swapped() -> None:
    """OW values outside Pixel Data (here Overlay Data) keep their 16-bit words."""
    pixels = np.arange(-8, 8, dtype=np.int16).reshape(1, 4, 4, 1)
    ds = synthetic(pixels, transfer_syntax=ExplicitVRBigEndian)
    words = np.array([1, 2, 0x1234, 0xFFFE], dtype=">u2")
    ds.add_new(0x60003000, "OW", words.tobytes())
    ds.add_new(0x60000010, "US", 4)
    ds = roundtrip(ds)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian
    out = roundtrip(NO_MATCH(ds))
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    got = np.frombuffer(out[0x60003000].value, dtype="<u2")
    assert got.tolist() == [1, 2, 0x1234, 0xFFFE]
    assert out[0x60000010].value == 4
    assert np.array_equal(decode(out), pixels)


def test_little_endian_input_is_left_alone() -> None:
    ds = read("MR_small.dcm")
    pixels = ds.PixelData
    assert codec.to_little_endian(ds, PixelSettings().max_pixel_bytes) is False
    assert ds.PixelData is pixels


def test_output_bytes_say_little_endian() -> None:
    """The written file's meta names Explicit VR Little Endian and pydicom reads it as such."""
    data = to_bytes(NO_MATCH(read("rtdose_expb.dcm")))
    assert ExplicitVRLittleEndian.encode() in data[:400]
