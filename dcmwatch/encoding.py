"""Facts of the DICOM encoding (PS3.5) that more than one module needs, stated once.

The reader that checks a file is complete (`dcmwatch.dicomfile`), the strict sequence parser
(`dcmwatch.deid.sequences`), the writer (`dcmwatch.rawwriter`) and the pixel codec
(`dcmwatch.pixels.codec`) each used to carry their own copy of these facts, and the copies had
begun to disagree: one counted a YBR_FULL_422 image at 3 samples a pixel, another at 2. A module
that needs one of them imports it from here.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LONG_VRS", "LONG_VRS_BYTES", "SUBSAMPLED_422", "native_pixel_bytes"]

#: VRs whose explicit VR element header has 2 reserved bytes and a 4-byte length (PS3.5 7.1.2,
#: Table 7.1-1); every other VR has a 2-byte length.
LONG_VRS: Final = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
#: `LONG_VRS` as the bytes found in a file, for the parsers that read element headers directly.
LONG_VRS_BYTES: Final = frozenset(vr.encode("ascii") for vr in LONG_VRS)

#: The one photometric interpretation whose native Pixel Data is stored subsampled
#: (PS3.3 C.7.6.3.1.2): two Y values share one Cb and one Cr, 2 samples' worth per pixel.
SUBSAMPLED_422: Final = "YBR_FULL_422"


def native_pixel_bytes(
    *,
    rows: int,
    columns: int,
    frames: int,
    samples: int,
    bits_allocated: int,
    photometric: str,
) -> int:
    """Bytes of native (uncompressed) Pixel Data the Image Pixel module declares, pad excluded.

    1-bit data is packed across pixel and frame boundaries (PS3.5 8.1.1), so it is rounded up
    once, at the end. YBR_FULL_422 stores each pair of pixels as Y Y Cb Cr (PS3.5 8.2.1,
    PS3.3 C.7.6.3.1.2): 2 samples a pixel although Samples per Pixel is 3, as pydicom's own
    ``get_expected_length`` counts it. Bits Allocated is 1 or a multiple of 8 in a valid file;
    another value is counted in whole bytes per sample, as such a sample would be stored.
    """
    pixels = rows * columns * frames
    if bits_allocated == 1:
        return (pixels * samples + 7) // 8
    per_sample = (bits_allocated + 7) // 8
    if samples == 3 and photometric == SUBSAMPLED_422:
        return pixels * 2 * per_sample
    return pixels * samples * per_sample
