"""Decode and write-back: the guard against dtype widening, and byte-exact write-back."""

from __future__ import annotations

import numpy as np
import pytest

from dcmwatch.pixels import UnsupportedPixelsError
from dcmwatch.pixels.codec import PixelLayout, encode_native, read_layout

LAYOUT = PixelLayout(rows=2, columns=3, samples=1, frames=1, bits_allocated=16, bits_stored=12,
                     pixel_representation=1, photometric="MONOCHROME2")


class TestEncodeNative:
    def test_widened_dtype_is_refused(self) -> None:
        """The seed bug: int16 * float mask gives float64; it can never become Pixel Data."""
        arr = np.zeros((1, 2, 3, 1), dtype=np.int16) * np.ones((1, 2, 3, 1))
        with pytest.raises(UnsupportedPixelsError):
            encode_native(arr, LAYOUT, little_endian=True)

    def test_wider_integers_are_narrowed_to_the_declared_dtype(self) -> None:
        """An int64 array in range is written as 2 bytes a sample, never 8."""
        arr = np.arange(-3, 3, dtype=np.int64).reshape(1, 2, 3, 1)
        data = encode_native(arr, LAYOUT, little_endian=True)
        assert len(data) == 12
        assert np.frombuffer(data, "<i2").tolist() == list(range(-3, 3))

    def test_out_of_range_values_are_refused(self) -> None:
        """A value beyond Bits Stored raises instead of wrapping."""
        arr = np.full((1, 2, 3, 1), 2048, dtype=np.int16)
        with pytest.raises(UnsupportedPixelsError):
            encode_native(arr, LAYOUT, little_endian=True)

    def test_big_endian_and_odd_padding(self) -> None:
        """Big-endian bytes; an odd byte count gets one pad byte."""
        be = encode_native(np.arange(6, dtype=np.int16).reshape(1, 2, 3, 1), LAYOUT,
                           little_endian=False)
        assert be[:2] == b"\x00\x00" and be[2:4] == b"\x00\x01"
        odd = PixelLayout(rows=1, columns=3, samples=1, frames=1, bits_allocated=8,
                          bits_stored=8, pixel_representation=0, photometric="MONOCHROME2")
        assert encode_native(np.ones((1, 1, 3, 1), np.uint8), odd, little_endian=True) == (
            b"\x01\x01\x01\x00")

    def test_one_bit_is_packed(self) -> None:
        """Bits Allocated 1: eight pixels a byte, little bit order (PS3.5 D.2)."""
        layout = PixelLayout(rows=1, columns=8, samples=1, frames=1, bits_allocated=1,
                             bits_stored=1, pixel_representation=0, photometric="MONOCHROME2")
        arr = np.array([1, 0, 0, 0, 0, 0, 0, 1], np.uint8).reshape(1, 1, 8, 1)
        assert encode_native(arr, layout, little_endian=True) == b"\x81\x00"


class TestReadLayout:
    def test_samples_must_agree_with_photometric(self) -> None:
        """RGB with one sample per pixel is refused before any decode."""
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.Rows = ds.Columns = 2
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "RGB"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.PixelData = b"\0" * 4
        with pytest.raises(UnsupportedPixelsError):
            read_layout(ds)
