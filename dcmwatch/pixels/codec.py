"""Pixel data in and out: a numpy view on native bytes, a decode otherwise, and the write-back.

**Fast path.** Uncompressed data (Implicit/Explicit VR Little Endian, Deflated, Explicit VR Big
Endian) of 8, 16 or 32 bits allocated, not chroma-subsampled, whose raw values already lie in the
(0028,0101) *Bits Stored* range, is edited through a numpy view (dtype and byte order from
(0028,0100) *Bits Allocated*, (0028,0103) *Pixel Representation* and the transfer syntax) on a
copy of the Pixel Data bytes. Edits happen in place, so the dtype cannot widen, and the bytes go
back with the identical length (odd-length padding included) and the same transfer syntax, byte
order and (0028,0006) *Planar Configuration*. No ``pixel_array`` copy.

**Slow path.** Everything else is decoded by pydicom's decoders (pylibjpeg, pyjpegls, the native
decoder for 1-bit, subsampled or unclean data) with ``raw=True``: no colour conversion, so YBR
data stays YBR and nothing but the edited pixels changes. Written back:

* native input: natively, in the same transfer syntax (byte order kept; planar configuration 0,
  subsampled YBR_FULL_422 written as full-resolution YBR_FULL);
* RLE Lossless, JPEG-LS Lossless, JPEG 2000 Lossless: re-encoded in that syntax by pydicom, then
  decoded again and compared; any difference or encoder failure falls back to the next case;
* any other (lossy or not re-encodable) syntax: Explicit VR Little Endian, with (0028,2110)
  *Lossy Image Compression* history kept (set to 01 for JPEG baseline/extended inputs).

**Big endian.** Explicit VR Big Endian was retired from the standard (PS3.5 2004) and many
receivers no longer accept it; pydicom 3 refuses to change a dataset's byte order by itself.
`to_little_endian` therefore converts every big-endian dataset the pixel step sees, whether a
rule matched or not: Pixel Data through the native decoder (exact values, any Bits Allocated,
8-bit OW swapped per word as the standard encodes it) and written back with `encode_native`;
other OW/OF/OL/OD/OV values byte-swapped per their word size; numbers and strings are
re-encoded by pydicom's writer. The SOP Instance UID stays: a lossless change of transfer
syntax is the same instance (PS3.5 10).

Every write goes through `encode_native`, which checks dtype, value range and byte length before
bytes leave numpy: the ``(arr * mask).tobytes()`` widening bug cannot reach a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import compress
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSLossless,
    RLELossless,
)
from pydicom.valuerep import VR

from dcmwatch.encoding import SUBSAMPLED_422, native_pixel_bytes
from dcmwatch.pixels import header
from dcmwatch.pixels.errors import (
    PixelDataTooLargeError,
    PixelDecodeError,
    UnsupportedPixelsError,
)

__all__ = [
    "NATIVE_SYNTAXES",
    "REENCODABLE_SYNTAXES",
    "PixelLayout",
    "Pixels",
    "encode_native",
    "open_pixels",
    "read_layout",
    "to_little_endian",
    "with_flat",
    "writable",
    "write_back",
]

NATIVE_SYNTAXES = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
    }
)
#: Lossless syntaxes pydicom 3 can encode: edited pixels go back in the input's syntax.
REENCODABLE_SYNTAXES = frozenset({RLELossless, JPEGLSLossless, JPEG2000Lossless})
#: Syntaxes that are always lossy: converting them records the history (PS3.3 C.7.6.1.1.5).
_ALWAYS_LOSSY = {JPEGBaseline8Bit: "ISO_10918_1", JPEGExtended12Bit: "ISO_10918_1"}
_SUBSAMPLED = frozenset({SUBSAMPLED_422, "YBR_PARTIAL_422", "YBR_PARTIAL_420"})
_TAGS = {
    keyword: Tag(keyword)
    for keyword in (
        "Rows",
        "Columns",
        "SamplesPerPixel",
        "NumberOfFrames",
        "BitsAllocated",
        "BitsStored",
        "PixelRepresentation",
        "PlanarConfiguration",
    )
}
_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA = (
    Tag(0x7FE00010), Tag(0x7FE00008), Tag(0x7FE00009)
)
_PHOTOMETRIC = Tag(0x00280004)
_TRANSFER_SYNTAX_UID = Tag(0x00020010)
_SAMPLES = {
    "MONOCHROME1": 1,
    "MONOCHROME2": 1,
    "PALETTE COLOR": 1,
    "RGB": 3,
    "YBR_FULL": 3,
    "YBR_FULL_422": 3,
}


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """The (0028,xxxx) Image Pixel attributes that say how pixel bytes are laid out."""

    rows: int
    columns: int
    samples: int
    frames: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric: str
    planar_configuration: int = 0

    @property
    def nbytes(self) -> int:
        """Bytes of native Pixel Data this layout declares (`encoding.native_pixel_bytes`)."""
        return native_pixel_bytes(
            rows=self.rows, columns=self.columns, frames=self.frames, samples=self.samples,
            bits_allocated=self.bits_allocated, photometric=self.photometric,
        )

    @property
    def stored_min(self) -> int:
        return -(1 << (self.bits_stored - 1)) if self.pixel_representation else 0

    @property
    def stored_max(self) -> int:
        if self.pixel_representation:
            return (1 << (self.bits_stored - 1)) - 1
        return (1 << self.bits_stored) - 1

    def dtype(self, *, little_endian: bool) -> np.dtype[Any]:
        """The numpy dtype of one stored sample (8, 16, 32 bits allocated)."""
        kind = "i" if self.pixel_representation else "u"
        order = "<" if little_endian else ">"
        return np.dtype(f"{order}{kind}{self.bits_allocated // 8}")


@dataclass(frozen=True, slots=True, eq=False)
class Pixels:
    """Pixels shaped (frames, rows, columns, samples) and the layout they have now.

    On the fast path ``flat`` is the 1-D array of the samples in file order and ``array`` a
    view on it; ``tail`` holds the bytes after them (a pad byte, excess padding). ``flat`` starts
    as a read-only view on the file's own bytes (copy on write: `writable`, or an edit that
    makes a new array anyway, like a HU threshold's blend); writing back is one ``tobytes``.
    """

    array: npt.NDArray[Any]
    layout: PixelLayout
    flat: npt.NDArray[Any] | None = None
    tail: bytes = b""

    @property
    def is_writable(self) -> bool:
        return bool(self.array.flags.writeable)


def writable(pixels: Pixels) -> Pixels:
    """``pixels`` with an array that may be edited in place (a copy when it was read-only)."""
    if pixels.is_writable:
        return pixels
    if pixels.flat is None:
        return replace(pixels, array=pixels.array.copy())
    return with_flat(pixels, pixels.flat.copy())


def with_flat(pixels: Pixels, flat: npt.NDArray[Any]) -> Pixels:
    """Fast-path ``pixels`` whose samples are now ``flat`` (same dtype and size, file order)."""
    if pixels.flat is None or flat.dtype != pixels.flat.dtype or flat.size != pixels.flat.size:
        raise UnsupportedPixelsError("edited pixels no longer match the image")  # pragma: no cover
    return replace(pixels, array=_shaped(flat, pixels.layout), flat=flat)


def _shaped(flat: npt.NDArray[Any], layout: PixelLayout) -> npt.NDArray[Any]:
    f, r, c, s = layout.frames, layout.rows, layout.columns, layout.samples
    if s > 1 and layout.planar_configuration == 1:
        return flat.reshape(f, s, r, c).transpose(0, 2, 3, 1)
    return flat.reshape(f, r, c, s)


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = header.number(ds, _TAGS[keyword])  # raw bytes parsed directly: the hot path
    if value is None or value == "":
        if default is None:
            raise UnsupportedPixelsError(f"the image has no ({keyword}) value")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        pass
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer():
        raise UnsupportedPixelsError(f"the image's {keyword} is not a number")
    return int(number)


def read_layout(ds: Dataset) -> PixelLayout:
    """The layout the header declares, checked for internal consistency (no pixel is read)."""
    if _FLOAT_PIXEL_DATA in ds or _DOUBLE_PIXEL_DATA in ds:
        raise UnsupportedPixelsError("a pixel rule matched float pixel data, which it cannot edit")
    if _PIXEL_DATA not in ds:
        raise UnsupportedPixelsError(
            "a pixel rule matched a dataset without (7FE0,0010) Pixel Data"
        )
    photometric = header.text(ds, _PHOTOMETRIC).upper()
    layout = PixelLayout(
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        samples=_int(ds, "SamplesPerPixel", 1),
        frames=_int(ds, "NumberOfFrames", 1) or 1,
        bits_allocated=_int(ds, "BitsAllocated"),
        bits_stored=_int(ds, "BitsStored", -1),
        pixel_representation=_int(ds, "PixelRepresentation", 0),
        photometric=photometric,
        planar_configuration=_int(ds, "PlanarConfiguration", 0),
    )
    if layout.bits_stored == -1:
        layout = replace(layout, bits_stored=layout.bits_allocated)
    if min(layout.rows, layout.columns, layout.samples, layout.frames) < 1:
        raise UnsupportedPixelsError("the image has zero rows, columns, samples or frames")
    if layout.bits_allocated not in (1, 8, 16, 32):
        raise UnsupportedPixelsError("(0028,0100) Bits Allocated is not 1, 8, 16 or 32")
    if not 1 <= layout.bits_stored <= layout.bits_allocated:
        raise UnsupportedPixelsError("(0028,0101) Bits Stored is outside 1..Bits Allocated")
    if layout.pixel_representation not in (0, 1):
        raise UnsupportedPixelsError("(0028,0103) Pixel Representation is not 0 or 1")
    if _SAMPLES.get(photometric, layout.samples) != layout.samples:
        raise UnsupportedPixelsError("Samples per Pixel disagrees with the photometric type")
    return layout


def check_size(layout: PixelLayout, limit: int) -> None:
    """Refuse before any decode when the declared pixel data exceeds ``limit`` bytes."""
    if layout.nbytes > limit:
        raise PixelDataTooLargeError(
            f"the image declares {layout.nbytes} bytes of pixel data, "
            f"more than max_pixel_bytes ({limit})"
        )


def transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    uid = header.text(meta, _TRANSFER_SYNTAX_UID) if meta is not None else None
    if not uid:
        raise PixelDecodeError("the dataset has no (0002,0010) Transfer Syntax UID")
    return UID(str(uid))


def open_pixels(ds: Dataset, layout: PixelLayout, tsyntax: UID) -> Pixels:
    """The image's pixels, editable: a view when possible (fast path), else decoded."""
    view = _native_view(ds, layout, tsyntax)
    return view if view is not None else _decode(ds, layout, tsyntax)


def _native_view(ds: Dataset, layout: PixelLayout, tsyntax: UID) -> Pixels | None:
    if tsyntax not in NATIVE_SYNTAXES or layout.bits_allocated == 1:
        return None
    if layout.photometric in _SUBSAMPLED:
        return None
    little = tsyntax != ExplicitVRBigEndian
    value, vr, undefined_length = header.pixel_bytes(ds, _PIXEL_DATA)
    if not little and layout.bits_allocated == 8 and vr != VR.OB:
        return None  # 8-bit OW in big endian is byte-swapped in 16-bit words: decode
    if not isinstance(value, bytes | bytearray | memoryview) or undefined_length:
        raise PixelDecodeError("native Pixel Data is encapsulated or not a byte string")
    if len(value) < layout.nbytes:
        raise PixelDecodeError("the Pixel Data is shorter than its header declares")
    dtype = layout.dtype(little_endian=little)
    count = layout.rows * layout.columns * layout.samples * layout.frames
    # Read-only on bytes (copy on write); writable on a large image's input buffer, which is
    # then edited in place (`dcmwatch.inplace`).
    flat = np.frombuffer(value, dtype=dtype, count=count)
    if layout.bits_stored < layout.bits_allocated and (
        int(flat.min()) < layout.stored_min or int(flat.max()) > layout.stored_max
    ):
        return None  # bits above High Bit in use (or no sign extension): let pydicom decode
    return Pixels(_shaped(flat, layout), layout, flat, bytes(value[flat.nbytes :]))


def _decode(ds: Dataset, layout: PixelLayout, tsyntax: UID) -> Pixels:
    try:
        decoder = get_decoder(tsyntax)
    except Exception as exc:  # NotImplementedError for unknown syntaxes
        raise PixelDecodeError(
            f"no pixel data decoder for the transfer syntax ({type(exc).__name__})"
        ) from None
    if not decoder.is_available:
        raise PixelDecodeError("the decoder for the image's transfer syntax is not installed")
    try:
        array, meta = decoder.as_array(ds, raw=True)
    except Exception as exc:  # decoder messages are not ours to show
        raise PixelDecodeError(f"the pixel data cannot be decoded ({type(exc).__name__})") from None
    photometric = str(meta.get("photometric_interpretation", layout.photometric))
    if photometric == SUBSAMPLED_422:
        photometric = "YBR_FULL"  # raw decoding removed the subsampling
    decoded = replace(
        layout,
        photometric=photometric,
        samples=int(meta.get("samples_per_pixel", layout.samples)),
        bits_stored=int(meta.get("bits_stored", layout.bits_stored)),
        pixel_representation=int(meta.get("pixel_representation", layout.pixel_representation)),
        planar_configuration=0,
    )
    array = array.reshape(decoded.frames, decoded.rows, decoded.columns, decoded.samples)
    if decoded.bits_allocated == 1:
        array = array.astype(np.uint8)
    elif array.dtype.itemsize * 8 != decoded.bits_allocated:
        array = array.astype(decoded.dtype(little_endian=True))
    if not array.flags.writeable:
        array = array.copy()
    lo, hi = int(array.min()), int(array.max())
    if lo < decoded.stored_min or hi > decoded.stored_max:
        if decoded.pixel_representation == 0:
            # Bits above High Bit (retired embedded overlays) are not pixel values: drop them.
            np.bitwise_and(array, decoded.stored_max, out=array, casting="unsafe")
        else:
            raise PixelDecodeError("decoded values exceed the Bits Stored range")
    return Pixels(array, decoded)


def encode_native(array: npt.NDArray[Any], layout: PixelLayout, *, little_endian: bool) -> bytes:
    """Pixel bytes for ``layout`` (planar configuration 0), checked before they leave numpy.

    Values must lie in the Bits Stored range (else `UnsupportedPixelsError`, never a silent wrap),
    the dtype is the one the layout names, and the length is exactly ``layout.nbytes`` plus the
    pad byte that keeps a value even (PS3.5 7.1.1).
    """
    expected_shape = (layout.frames, layout.rows, layout.columns, layout.samples)
    if array.shape != expected_shape:
        raise UnsupportedPixelsError("edited pixels no longer match the image geometry")
    if array.dtype.kind not in "ui":
        raise UnsupportedPixelsError("edited pixels are not integers")
    if array.size and (
        int(array.min()) < layout.stored_min or int(array.max()) > layout.stored_max
    ):
        raise UnsupportedPixelsError("edited pixels exceed the Bits Stored range")
    if layout.bits_allocated == 1:
        data = np.packbits(array.reshape(-1).astype(np.uint8), bitorder="little").tobytes()
    else:
        dtype = layout.dtype(little_endian=little_endian)
        out = np.ascontiguousarray(array).astype(dtype, copy=False)
        if out.dtype != dtype or out.size != array.size:
            raise UnsupportedPixelsError("edited pixels changed their data type")
        data = out.tobytes()
    if len(data) != layout.nbytes:
        raise UnsupportedPixelsError("edited pixel bytes do not have the declared length")
    return data + b"\x00" if len(data) % 2 else data


def write_back(ds: Dataset, pixels: Pixels, original: PixelLayout, tsyntax: UID) -> None:
    """Store edited pixels in ``ds`` (see the module docstring for which encoding is used)."""
    if pixels.flat is not None and pixels.layout == original:
        old, vr, _ = header.pixel_bytes(ds, _PIXEL_DATA)
        if _edited_in_place(pixels.flat, old):
            return  # the element's value is the buffer the edits were made in
        new = pixels.flat.tobytes() + pixels.tail
        width = pixels.flat.dtype.itemsize * 8
        if len(new) != len(old) or width != original.bits_allocated:
            raise UnsupportedPixelsError("edited pixel bytes changed length")  # pragma: no cover
        vr = vr or (VR.OB if original.bits_allocated <= 8 else VR.OW)
        header.set_value(ds, _PIXEL_DATA, vr, new)  # same VR, length, order: checked above
        return
    layout = replace(pixels.layout, planar_configuration=0)
    if tsyntax in NATIVE_SYNTAXES:
        little = tsyntax != ExplicitVRBigEndian
        data = encode_native(pixels.array, layout, little_endian=little)
        _set_native(ds, data, layout)
        return
    if tsyntax in REENCODABLE_SYNTAXES and _try_reencode(ds, pixels.array, layout, tsyntax):
        return
    data = encode_native(pixels.array, layout, little_endian=True)
    _set_native(ds, data, layout)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):
        if keyword in ds:
            del ds[keyword]
    method = _ALWAYS_LOSSY.get(tsyntax)
    if method is not None:
        ds.LossyImageCompression = "01"
        methods = ds.get("LossyImageCompressionMethod")
        listed = [] if methods is None else [str(m) for m in _as_list(methods)]
        if method not in listed:
            ds.LossyImageCompressionMethod = [*listed, method] if listed else method


def _edited_in_place(flat: npt.NDArray[Any], value: Any) -> bool:
    """Whether ``flat`` is the view `open_pixels` made on ``value`` itself (a writable buffer,
    not bytes): its edits are already in the element, and a copy would only cost memory."""
    if not isinstance(value, memoryview) or value.readonly:
        return False
    start = np.frombuffer(value, dtype=np.uint8, count=0).__array_interface__["data"][0]
    return bool(flat.__array_interface__["data"][0] == start and flat.nbytes <= value.nbytes)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _set_header(ds: Dataset, layout: PixelLayout) -> None:
    ds.SamplesPerPixel = layout.samples
    ds.PhotometricInterpretation = layout.photometric
    if layout.samples > 1:
        ds.PlanarConfiguration = layout.planar_configuration
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration
    ds.BitsAllocated = layout.bits_allocated
    ds.BitsStored = layout.bits_stored
    ds.HighBit = layout.bits_stored - 1
    ds.PixelRepresentation = layout.pixel_representation


def _set_native(ds: Dataset, data: bytes, layout: PixelLayout) -> None:
    _set_header(ds, layout)
    ds.PixelData = data
    elem = ds["PixelData"]
    elem.VR = VR.OB if layout.bits_allocated <= 8 else VR.OW
    elem.is_undefined_length = False


def _try_reencode(
    ds: Dataset, array: npt.NDArray[Any], layout: PixelLayout, tsyntax: UID
) -> bool:
    """Re-encode losslessly in ``tsyntax``; True only when a decode gives ``array`` back."""
    shaped = array.astype(array.dtype.newbyteorder("="), copy=False)
    if layout.samples == 1:
        shaped = shaped[..., 0]
    if layout.frames == 1:
        shaped = shaped[0]
    _set_header(ds, layout)
    try:
        compress(ds, tsyntax, np.ascontiguousarray(shaped), generate_instance_uid=False)
        check, _ = get_decoder(tsyntax).as_array(ds, raw=True)
    except Exception:  # any encoder refusal means: fall back to native
        return False
    return bool(np.array_equal(check.reshape(array.shape), array))


#: Word sizes of the "other" VRs whose values are byte strings of numbers.
_WORD_SIZE: dict[str, int] = {VR.OW: 2, VR.OF: 4, VR.OL: 4, VR.OD: 8, VR.OV: 8}


def to_little_endian(ds: Dataset, max_pixel_bytes: int) -> bool:
    """Convert an Explicit VR Big Endian dataset to Explicit VR Little Endian; True when done.

    Pixel values are exact: the top-level Pixel Data is decoded with the big-endian layout and
    written with `encode_native` (which checks dtype, range and length).
    """
    if transfer_syntax(ds) != ExplicitVRBigEndian:
        return False
    if "PixelData" in ds:
        layout = read_layout(ds)
        check_size(layout, max_pixel_bytes)
        pixels = open_pixels(ds, layout, ExplicitVRBigEndian)
        out = replace(pixels.layout, planar_configuration=0)
        data = encode_native(pixels.array, out, little_endian=True)
        if pixels.flat is not None and out.samples > 1 and layout.planar_configuration == 1:
            # A view kept the planes apart: keep (0028,0006) Planar Configuration 1 as well.
            f, r, c, s = out.frames, out.rows, out.columns, out.samples
            planes = np.frombuffer(data, out.dtype(little_endian=True), count=f * r * c * s)
            data = planes.reshape(f, r, c, s).transpose(0, 3, 1, 2).tobytes()
            data += b"\x00" if len(data) % 2 else b""
            out = replace(out, planar_configuration=1)
        _set_native(ds, data, out)
    _swap_other_words(ds, top=True)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return True


def _swap_other_words(ds: Dataset, *, top: bool) -> None:
    """Byte-swap OW/OF/OL/OD/OV values (top-level Pixel Data excepted), sequences included."""
    for elem in ds:
        if elem.VR == VR.SQ:
            for item in elem.value or []:
                _swap_other_words(item, top=False)
            continue
        if top and elem.tag == 0x7FE00010:
            continue
        size = _WORD_SIZE.get(str(elem.VR))
        value = elem.value
        if size is None or not isinstance(value, bytes | bytearray) or len(value) % size:
            continue
        if elem.is_undefined_length:
            continue  # encapsulated: a byte stream, not words
        elem.value = np.frombuffer(value, dtype=f">u{size}").astype(f"<u{size}").tobytes()
