"""Bytes to Dataset and back, with the checks pydicom leaves to its callers.

Pure: no file system. pydicom reads a truncated file without complaint (it stops at the last
whole element), inflates deflated datasets without a limit, and quotes element values in its
messages. Here a truncated file is told apart from a complete one by walking the element
structure to the last byte, deflate is inflated under a cap, and every failure becomes one of our
exceptions with a message of our own.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from io import SEEK_CUR, SEEK_END, SEEK_SET, BytesIO

import pydicom
from pydicom.config import IGNORE
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset
from pydicom.pixels import iter_pixels  # type: ignore[attr-defined]
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dcmwatch import rawwriter
from dcmwatch.encoding import LONG_VRS_BYTES, native_pixel_bytes
from dcmwatch.errors import (
    FATAL,
    DcmwatchError,
    EmptyFileError,
    NotDicomError,
    PixelDataError,
    TooLargeError,
    TruncatedError,
)

#: A file's bytes: immutable, or a large file's buffer (`store.read_input`), read the same way.
Bytes = bytes | bytearray


def silence_library_messages() -> None:
    """Stop pydicom's warnings and validation messages in this process: they quote element
    values (names, dates), and a process that reads patients' files must never print one.
    Reading validation would also convert values we never look at."""
    pydicom.config.settings.reading_validation_mode = IGNORE
    warnings.simplefilter("ignore")

#: (0002,0013) *Implementation Version Name* and (0002,0012) *Implementation Class UID* of
#: files written by dcmwatch. The UID is 2.25 + a fixed UUID derived integer.
IMPLEMENTATION_VERSION = "DCMWATCH_01"
IMPLEMENTATION_UID = "2.25.181377612843386327214064418906734127105"

_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_MAX_DEPTH = 64
_PIXEL_DATA = 0x7FE00010
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_PREAMBLE = b"\0" * 128
_VERSION_NAME = BaseTag(0x00020013)
_VERSION_NAME_BYTES = IMPLEMENTATION_VERSION.encode("ascii") + b" " * (
    len(IMPLEMENTATION_VERSION) % 2
)
_VERSION_NAME_RAW = RawDataElement(
    _VERSION_NAME, "SH", len(_VERSION_NAME_BYTES), _VERSION_NAME_BYTES, 0, False, True
)


def decode(data: Bytes, *, max_inflated: int) -> Dataset:
    """Parse one file's bytes into a Dataset, refusing anything incomplete or not DICOM."""
    if not data:
        raise EmptyFileError("the file is empty")
    try:
        return _decode(data, max_inflated)
    except (NotDicomError, TruncatedError):
        fixed = _big_endian_cp246(data)
        if fixed is None:
            raise
    return _decode(fixed, max_inflated)


def _decode(data: Bytes, max_inflated: int) -> Dataset:
    try:
        ds: Dataset = pydicom.dcmread(_reader(data), force=not _has_preamble(data))
    except DcmwatchError:  # the per-file time limit fired inside pydicom
        raise
    except InvalidDicomError:
        raise NotDicomError("not a DICOM file (no preamble, no file meta, no dataset)") from None
    except (EOFError, struct.error):
        raise TruncatedError("the file ends inside an element") from None
    except Exception as exc:  # pydicom raises many kinds; their messages may quote values
        raise NotDicomError(f"unreadable DICOM ({type(exc).__name__})") from None
    # pydicom converts values lazily: a bad VR or value surfaces on first access, here or later.
    try:
        return _checked(ds, data, max_inflated)
    except DcmwatchError:
        raise
    except Exception as exc:
        raise NotDicomError(f"unreadable DICOM ({type(exc).__name__})") from None


def _reader(data: Bytes) -> BytesIO | _ViewReader:
    """A file object on ``data`` that does not copy it: a BytesIO shares a bytes object's
    buffer but copies anything else, which for a large input held in a bytearray (see
    `store.read_input`) would be a second full copy."""
    if isinstance(data, bytes):
        return BytesIO(data)
    return _ViewReader(memoryview(data).toreadonly())


class _ViewReader:
    """The read/seek/tell pydicom needs, on a memoryview: each read copies only what it
    returns, as BytesIO does."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else self._pos + size
        chunk = self._view[self._pos : end].tobytes()
        self._pos += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = SEEK_SET) -> int:
        base = {SEEK_SET: 0, SEEK_CUR: self._pos, SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def native_pixel_span(data: bytes | bytearray) -> tuple[int, int] | None:
    """(start, end) of the value of a native, top-level (7FE0,0010) *Pixel Data* in a Part 10
    file in (Implicit or Explicit VR) Little Endian; None for anything else, including files
    this cannot read (the ordinary `decode` then says what is wrong with them).

    Found by walking the top-level element headers, which skips values without reading them,
    so that a large image can be parsed around its pixels instead of copying them.
    """
    syntax = _meta_syntax(data)
    if syntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        return None
    implicit = syntax == ImplicitVRLittleEndian
    try:
        pos = _dataset_offset(data)
        while pos is not None and pos + 8 <= len(data):
            group, element = struct.unpack_from("<HH", data, pos)
            tag = (group << 16) | element
            if group == 0xFFFE or tag > _PIXEL_DATA:
                return None
            if implicit:
                vr, length, value_at = b"", struct.unpack_from("<L", data, pos + 4)[0], pos + 8
            else:
                vr, length, value_at = _explicit_header(data, pos, "<H", "<L")
            if tag == _PIXEL_DATA:
                if length == _UNDEFINED or value_at + length > len(data) or length % 2:
                    return None
                return value_at, value_at + length
            if length == _UNDEFINED:
                inner = (True, True) if implicit else _undefined_syntax(vr, tag, True)
                pos = _skip_value(data, value_at, length, *inner, 0, item=False)
            else:
                pos = value_at + length
    except (NotDicomError, TruncatedError, struct.error):
        return None
    return None


def _checked(ds: Dataset, data: Bytes, max_inflated: int) -> Dataset:
    meta = ds.file_meta if ds.file_meta is not None else FileMetaDataset()
    tsuid = meta.get("TransferSyntaxUID")
    start = _dataset_offset(data)
    if start is None:  # no Part 10 header: pydicom guessed the encoding of a bare dataset
        implicit, little = ds.original_encoding
        if implicit is None or not _looks_like_dataset(ds):
            raise NotDicomError("not a DICOM file (no preamble, no file meta, no dataset)")
        body, offset = data, 0
        tsuid = (
            ImplicitVRLittleEndian
            if implicit
            else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        )
        meta.TransferSyntaxUID = tsuid
        ds.file_meta = meta
    elif tsuid == DeflatedExplicitVRLittleEndian:
        body, offset = _inflate(data[start:], max_inflated), 0
        ds = _reread_inflated(body, meta)
        implicit, little = False, True
    else:
        body, offset = data, start
        implicit, little = ds.original_encoding
        if implicit is None:
            raise NotDicomError("unsupported transfer syntax")
    _check_complete(body, offset, bool(implicit), bool(little))
    if "SOPInstanceUID" not in ds:
        raise NotDicomError("the dataset has no SOP Instance UID")
    if _is_image(ds) and not any(k in ds for k in _PIXEL_KEYWORDS):
        # Cut exactly between two elements: structurally whole, but an image without pixels.
        raise TruncatedError("an image without pixel data")
    return ds


def check_pixels(ds: Dataset, *, max_pixel_bytes: int, verify_compressed: bool) -> None:
    """Refuse pixel data that disagrees with its header, before anything is decoded.

    pydicom passes native Pixel Data through whatever its length, and a compressed stream is
    never looked at unless someone decodes it: a short, long or undecodable image would leave
    dcmwatch looking healthy and reach the PACS broken. The declared size is checked against
    `max_pixel_bytes` first, so a small file that claims gigabytes never allocates them.
    """
    if "PixelData" not in ds:
        return
    try:
        declared = _declared_pixel_bytes(ds)
    except DcmwatchError:
        raise
    except Exception as exc:  # a garbled header: its values are never quoted
        raise PixelDataError(f"the image header is unusable ({type(exc).__name__})") from None
    if declared > max_pixel_bytes:
        raise TooLargeError("the image declares more pixel bytes than limits.max_pixel_bytes")
    tsuid = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    elem = ds["PixelData"]
    value = elem.value
    if not elem.is_undefined_length:  # native (encapsulated data always has undefined length)
        if not isinstance(value, bytes | bytearray | memoryview):
            raise PixelDataError("native pixel data is not a byte string")
        if len(value) < declared:
            raise PixelDataError("the pixel data is shorter than the image header declares")
        if len(value) > declared + 1 + (declared & 1):  # one pad byte makes it even
            raise PixelDataError("the pixel data is longer than the image header declares")
        return
    if verify_compressed and tsuid.is_transfer_syntax:  # a private syntax: no decoder to ask
        try:
            for _frame in iter_pixels(ds):
                pass
        except BaseException as exc:  # decoders raise anything (pyo3: PanicException)
            if isinstance(exc, (*FATAL, DcmwatchError)):
                raise
            name = type(exc).__name__
            raise PixelDataError(f"the compressed pixel data does not decode ({name})") from None


def _declared_pixel_bytes(ds: Dataset) -> int:
    rows, columns = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.BitsAllocated)
    if min(rows, columns, frames, samples, bits) <= 0:
        raise PixelDataError("the image header declares zero rows, columns, frames or bits")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    return native_pixel_bytes(
        rows=rows, columns=columns, frames=frames, samples=samples, bits_allocated=bits,
        photometric=photometric,
    )


def encode(ds: Dataset) -> bytes:
    """Write a Part 10 file (preamble, complete file meta) to bytes."""
    return b"".join(encode_parts(ds))


def encode_parts(ds: Dataset) -> list[bytes | memoryview]:
    """`encode` as the list of pieces whose concatenation is the file. A value held as a
    memoryview (the pixels of a large image, edited in its input buffer) is one of the pieces,
    itself, not a copy: the caller can find it by identity and write around it.

    The one place the file meta group is made. It is new and ours entirely, read off the
    dataset as it is now: (0002,0002) and (0002,0003) from its SOP Class and Instance UIDs
    (changed by the de-identifier, a pixel rule or a bake), (0002,0010) from the transfer
    syntax its elements are encoded in (kept in ``ds.file_meta`` by the reader and the pixel
    codec), and our implementation UID and name. So no step keeps the meta in step with the
    dataset, and nothing of the input's meta (AE titles, private information, the original
    instance UID, a group length with the wrong VR) reaches the output.
    """
    # Values we made or checked ourselves are set without pydicom's per-value validation (a
    # hot path: once per file).
    old = ds.file_meta
    sop_class = UID(str(ds.get("SOPClassUID", old.get("MediaStorageSOPClassUID"))))
    tsuid = old.get("TransferSyntaxUID")
    meta = FileMetaDataset()
    fields: list[tuple[int, str, object]] = [
        (0x00020001, "OB", b"\x00\x01"),
        (0x00020002, "UI", sop_class),
        (0x00020003, "UI", UID(str(ds.SOPInstanceUID))),
        (0x00020012, "UI", UID(IMPLEMENTATION_UID)),
    ]
    if tsuid is not None:
        fields.append((0x00020010, "UI", UID(str(tsuid))))
    for tag, vr, value in sorted(fields):
        meta._dict[BaseTag(tag)] = DataElement(tag, vr, value, validation_mode=IGNORE)
    meta._dict[_VERSION_NAME] = _VERSION_NAME_RAW  # as read: the writer copies its bytes
    ds.preamble = _PREAMBLE
    tsuid = meta.get("TransferSyntaxUID")
    if (
        tsuid is None
        or tsuid == DeflatedExplicitVRLittleEndian
        or not tsuid.is_transfer_syntax
        or tsuid.is_private
        or any(tag >> 16 in (0, 2) for tag in ds._dict)
    ):
        # Rare shapes (no or a private syntax, deflate, meta elements in the dataset): pydicom
        # decides and refuses them, as it always did.
        buf = BytesIO()
        saved, ds.file_meta = ds.file_meta, meta  # the caller's dataset keeps its own
        try:
            pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        finally:
            ds.file_meta = saved
        return [buf.getvalue()]
    return rawwriter.write_parts(ds, meta, tsuid)


def _is_image(ds: Dataset) -> bool:
    if "Rows" in ds:
        return True
    sop_class = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
    return sop_class is not None and "Image Storage" in UID(str(sop_class)).name


def _has_preamble(data: Bytes) -> bool:
    return data[128:132] == b"DICM"


def _looks_like_dataset(ds: Dataset) -> bool:
    return "SOPClassUID" in ds or "SOPInstanceUID" in ds


def _dataset_offset(data: Bytes) -> int | None:
    """Offset of the first dataset byte after the file meta group, or None without meta."""
    if data[128:132] == b"DICM":
        pos = 132
    elif data[:2] == b"\x02\x00" and data[4:6].isalpha():
        pos = 0  # meta without preamble
    else:
        return None
    # (0002,0000) group length is Explicit VR LE UL; walk the group by headers anyway,
    # since some writers get the group length wrong.
    while pos + 8 <= len(data):
        group = struct.unpack_from("<H", data, pos)[0]
        if group != 0x0002:
            return pos
        vr = bytes(data[pos + 4 : pos + 6])  # hashable also when data is a bytearray
        if vr in LONG_VRS_BYTES:
            if pos + 12 > len(data):
                raise TruncatedError("the file ends inside the file meta")
            length = struct.unpack_from("<L", data, pos + 8)[0]
            pos += 12 + length
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            pos += 8 + length
    if pos > len(data):
        raise TruncatedError("the file ends inside the file meta")
    return pos


def _big_endian_cp246(data: Bytes) -> bytes | None:
    """The file with each top-level UN of undefined length given its defined length, for an
    Explicit VR Big Endian file; None when that changes nothing or the file is another kind.

    PS3.5 6.2.2 (CP-246) puts such a value, delimiters included, in Implicit VR Little Endian;
    pydicom reads it in the file's byte order and fails. With a defined length pydicom keeps
    the value's bytes, which the de-identifier parses as the sequence it is. Only tried after
    a failed read, so a valid file never pays for it.
    """
    if _meta_syntax(data) != ExplicitVRBigEndian:
        return None
    try:
        pos = _dataset_offset(data)
        parts: list[Bytes] = []
        last = pos = pos if pos is not None else len(data)
        while pos + 8 <= len(data):
            tag = int.from_bytes(data[pos : pos + 4], "big")
            vr, length, value_at = _explicit_header(data, pos, ">H", ">L")
            if length != _UNDEFINED:
                pos = value_at + length
                continue
            implicit, little = _undefined_syntax(vr, tag, False)
            end = _skip_value(data, value_at, length, implicit, little, 0, item=False)
            if vr == b"UN":  # the value without its sequence delimiter, length filled in
                defined = struct.pack(">L", end - 8 - value_at)
                parts += [data[last:pos], data[pos : pos + 8], defined, data[value_at : end - 8]]
                last = end
            pos = end
    except (NotDicomError, TruncatedError, struct.error):  # not the time limit: it must fire
        return None
    return b"".join([*parts, data[last:]]) if parts else None


def meta_syntax(data: Bytes) -> str | None:
    """The Transfer Syntax UID a file's meta declares, from its first bytes alone (no parse of
    the dataset): what `dcmwatch.footprint` needs before a file is read."""
    try:
        return _meta_syntax(data)
    except (TruncatedError, struct.error):
        return None


def _meta_syntax(data: Bytes) -> str | None:
    """(0002,0010) *Transfer Syntax UID* read from the file meta's bytes, None without it."""
    pos = 132 if _has_preamble(data) else 0
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        _, length, value_at = _explicit_header(data, pos, "<H", "<L")
        if data[pos + 2 : pos + 4] == b"\x10\x00":
            return data[value_at : value_at + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos = value_at + length
    return None


def _inflate(raw: Bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error:
        raise NotDicomError("the deflated dataset does not inflate") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLargeError("the deflated dataset inflates beyond limits.max_inflated_bytes")
    if not inflater.eof:
        raise TruncatedError("the deflated dataset ends early")
    return out


def _reread_inflated(body: bytes, meta: FileMetaDataset) -> Dataset:
    """Read the inflated dataset; it is written back as Explicit VR Little Endian."""
    try:
        inner = read_dataset(BytesIO(body), is_implicit_VR=False, is_little_endian=True)
    except DcmwatchError:
        raise
    except Exception as exc:
        raise NotDicomError(f"unreadable deflated dataset ({type(exc).__name__})") from None
    ds = pydicom.FileDataset(
        "", inner, file_meta=meta, preamble=b"\0" * 128, is_implicit_VR=False,
        is_little_endian=True,
    )
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _check_complete(data: Bytes, pos: int, implicit: bool, little: bool) -> None:
    """Walk the element structure from `pos` to the end; raise if it stops short."""
    end = _walk(data, pos, len(data), implicit, little, 0, stop_at=None)
    if end != len(data):
        raise TruncatedError("the file ends inside an element")


def _walk(
    data: Bytes, pos: int, end: int, implicit: bool, little: bool, depth: int,
    stop_at: int | None,
) -> int:
    """Skip elements until `end` or the delimiter `stop_at`; return the position reached."""
    if depth > _MAX_DEPTH:
        raise NotDicomError("sequences nested deeper than dcmwatch accepts")
    e = "<" if little else ">"
    tag_fmt, short_fmt, long_fmt = e + "HH", e + "H", e + "L"
    size = len(data)
    while pos < end:
        if pos + 8 > size:
            raise TruncatedError("the file ends inside an element header")
        g, el = struct.unpack_from(tag_fmt, data, pos)
        tag = (g << 16) | el
        if g == 0xFFFE:  # item and delimiters: always implicit-style 4-byte length
            length = struct.unpack_from(long_fmt, data, pos + 4)[0]
            pos += 8
            if tag == stop_at:
                return pos
            if tag == _ITEM:
                pos = _skip_value(data, pos, length, implicit, little, depth, item=True)
                continue
            raise NotDicomError("unexpected delimiter in the dataset")
        inner_implicit, inner_little = implicit, little
        if implicit:
            length = struct.unpack_from(long_fmt, data, pos + 4)[0]
            pos += 8
        else:
            vr, length, pos = _explicit_header(data, pos, short_fmt, long_fmt)
            if length == _UNDEFINED:
                inner_implicit, inner_little = _undefined_syntax(vr, tag, little)
        pos = _skip_value(data, pos, length, inner_implicit, inner_little, depth, item=False)
    if stop_at is not None:
        raise TruncatedError("the file ends inside a sequence")
    return pos


def _explicit_header(
    data: Bytes, pos: int, short_fmt: str, long_fmt: str
) -> tuple[bytes, int, int]:
    """(VR, length, value offset) of the explicit VR element header at ``pos``."""
    vr = bytes(data[pos + 4 : pos + 6])  # hashable also when data is a bytearray
    if vr in LONG_VRS_BYTES:
        if pos + 12 > len(data):
            raise TruncatedError("the file ends inside an element header")
        return vr, struct.unpack_from(long_fmt, data, pos + 8)[0], pos + 12
    return vr, struct.unpack_from(short_fmt, data, pos + 6)[0], pos + 8


def _undefined_syntax(vr: bytes, tag: int, little: bool) -> tuple[bool, bool]:
    """The syntax of the items of an explicit VR element of undefined length.

    PS3.5 6.2.2 (CP-246): a UN's value, delimiters included, is in Implicit VR Little Endian.
    Only SQ, UN and encapsulated Pixel Data may have an undefined length (PS3.5 7.1.2): pydicom
    reads any other such value to the first delimiter inside it, then misreads what follows.
    """
    if vr == b"UN":
        return True, True
    if vr != b"SQ" and tag != _PIXEL_DATA:
        raise NotDicomError("an element of undefined length with a VR that cannot have one")
    return False, little


def _skip_value(
    data: Bytes, pos: int, length: int, implicit: bool, little: bool, depth: int, *, item: bool
) -> int:
    if length != _UNDEFINED:
        if pos + length > len(data):
            raise TruncatedError("the file ends inside an element value")
        return pos + length
    # undefined length: an item's dataset up to its delimiter, or a sequence (or encapsulated
    # pixel data, whose fragments are items too) up to the sequence delimiter
    stop = _ITEM_END if item else _SEQ_END
    return _walk(data, pos, len(data), implicit, little, depth + 1, stop_at=stop)
