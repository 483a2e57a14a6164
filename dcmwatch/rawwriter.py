"""A Part 10 writer that passes untouched elements through as the bytes they were read as.

pydicom's ``dcmwrite`` does work per element even when nothing changed (a buffer per element, a
writer looked up per VR, seeks for item lengths) plus a deepcopy and two validations of the
file meta: on a CT slice, a large share of a worker's CPU. Most elements of a
de-identified file are still `RawDataElement`s, which pydicom itself writes as their bytes when
the dataset keeps its encoding; this module does that with one ``struct.pack`` per element
and one ``b"".join`` at the end (the Pixel Data is copied once, into the output).

It is byte for byte what ``dcmwrite(..., enforce_file_format=True)`` writes, which the tests
check on every bundled file: anything this module does not handle itself — a dataset level whose
encoding or character set changed, a converted element other than the plain cases below — is
written by pydicom's own ``write_dataset`` / ``write_data_element``.
"""

from __future__ import annotations

import copy
import struct
from typing import Any, Final

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset, validate_file_meta
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from dcmwatch.encoding import LONG_VRS

__all__ = ["write_file", "write_parts"]

#: A piece of the output: bytes made here, or a value's own buffer passed through uncopied.
Part = bytes | memoryview

_PREFIX: Final = b"\0" * 128 + b"DICM"
_UNDEFINED: Final = 0xFFFFFFFF
_PIXEL_DATA: Final = 0x7FE00010
_GROUP_LENGTH: Final = 0x00020000
#: Converted string VRs whose repertoire is not the character set's: pydicom's `write_string`
#: (latin-1, space padded; NUL for UI), done here for plain str values.
_PLAIN_TEXT: Final = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR"})
_BYTES_VRS: Final = frozenset({"OB", "OW"})
#: Converted binary integers (pydicom converts (0028,0103) itself while reading): one int value.
_INTEGERS: Final = {"US": "H", "SS": "h", "UL": "L", "SL": "l"}


class _Format:
    """The struct formats of one byte order."""

    __slots__ = ("delimiter", "encapsulated", "explicit_long", "explicit_short", "implicit")

    def __init__(self, little: bool) -> None:
        e = "<" if little else ">"
        self.implicit = struct.Struct(e + "HHL")  # tag, 4-byte length
        self.explicit_short = struct.Struct(e + "HH2sH")  # tag, VR, 2-byte length
        self.explicit_long = struct.Struct(e + "HH2sHL")  # tag, VR, reserved, 4-byte length
        self.delimiter = struct.Struct(e + "HHL")
        self.encapsulated = b"\xfe\xff\x00\xe0" if little else b"\xff\xfe\xe0\x00"


_FORMATS: Final = {True: _Format(True), False: _Format(False)}


def write_file(ds: Dataset, meta: FileMetaDataset, tsuid: UID) -> bytes:
    """Preamble, prefix, file meta (Explicit VR Little Endian) and `ds` in `tsuid`'s encoding.

    As ``dcmwrite(enforce_file_format=True)``: the file meta gets (0002,0001) and a fresh
    (0002,0000) (on a copy: `meta` is not changed), Pixel Data is of undefined length exactly
    when the syntax is compressed.
    """
    return b"".join(write_parts(ds, meta, tsuid))


def write_parts(ds: Dataset, meta: FileMetaDataset, tsuid: UID) -> list[Part]:
    """`write_file` as its pieces, unjoined: a value held as a memoryview is one of them, the
    same object, so a large image's pixels are never copied into a second buffer here."""
    parts: list[Part] = [_PREFIX]
    _write_meta(parts, meta)
    implicit, little = bool(tsuid.is_implicit_VR), bool(tsuid.is_little_endian)
    if implicit and not little:
        raise ValueError("Implicit VR and big endian is not a valid encoding combination")
    pixel = ds._dict.get(_PIXEL_DATA)  # type: ignore[call-overload]
    if pixel is not None:
        undefined = bool(tsuid.is_compressed)
        if (pixel.length == _UNDEFINED if isinstance(pixel, RawDataElement)
                else pixel.is_undefined_length) != undefined:
            ds["PixelData"].is_undefined_length = undefined
    _write_level(parts, ds, implicit, little, default_encoding)
    return parts


def _write_meta(parts: list[Part], meta: FileMetaDataset) -> None:
    """The file meta group as ``write_file_meta_info`` writes it, (0002,0000) computed."""
    meta = copy.copy(meta)  # keeps the encoding it was read with, as dcmwrite's deepcopy does
    meta._dict = dict(meta._dict)  # elements shared, dictionary not: the caller's stays as is
    validate_file_meta(meta, enforce_standard=True)  # adds (0002,0001); refuses missing UIDs
    meta._dict.pop(_GROUP_LENGTH, None)  # type: ignore[call-overload]
    body: list[Part] = []
    _write_level(body, meta, False, True, default_encoding)
    length = sum(len(b) for b in body)
    parts.append(struct.pack("<HH2sHL", 0x0002, 0x0000, b"UL", 4, length))
    parts.extend(body)


def _write_level(
    parts: list[Part], ds: Dataset, implicit: bool, little: bool, parent_encoding: Any
) -> None:
    """One dataset (the top level or a sequence item), as pydicom's ``write_dataset``."""
    if (
        ds.original_encoding != (implicit, little)
        or ds.original_character_set != ds._character_set
    ):
        # pydicom converts every element of such a level (VR lookup, ambiguous VRs, charset).
        buf = DicomBytesIO()
        buf.is_implicit_VR, buf.is_little_endian = implicit, little
        write_dataset(buf, ds, parent_encoding)
        parts.append(buf.getvalue())
        return
    elements = ds._dict
    charset: list[Any] = []  # the level's character set, looked up once if a value needs it

    def encodings() -> Any:
        if not charset:
            charset.append(ds.get("SpecificCharacterSet", parent_encoding))
        return charset[0]

    for tag in sorted(elements, key=int):  # int: BaseTag's own __lt__ is Python code
        if not tag & 0xFFFF and tag >> 16 > 6:
            continue  # retired group lengths are not written (PS3.5 7.2)
        elem = elements[tag]
        if isinstance(elem, RawDataElement) and elem.value is None:
            elem = ds[tag]  # as pydicom's get_item: a deferred value is read and converted
        _write_element(parts, elem, implicit, little, encodings)


def _write_element(
    parts: list[Part], elem: Any, implicit: bool, little: bool, encodings: Any
) -> None:
    fmt = _FORMATS[little]
    tag = int(elem.tag)
    vr = elem.VR
    if isinstance(elem, RawDataElement):
        value: Any = elem.value
        if not isinstance(value, bytes | memoryview) or (
            not implicit and (vr is None or len(vr) != 2)
        ):
            _pydicom_element(parts, elem, implicit, little, encodings)
            return
        undefined = elem.length == _UNDEFINED
    elif vr == "SQ":
        _write_sequence(parts, elem, implicit, little, encodings)
        return
    else:
        value = _plain_value(elem, vr, little)
        if value is None:
            _pydicom_element(parts, elem, implicit, little, encodings)
            return
        undefined = bool(elem.is_undefined_length)
    if undefined and tag == _PIXEL_DATA and not value[:4] == fmt.encapsulated:
        raise ValueError("encapsulated Pixel Data does not start with an item")
    length = _UNDEFINED if undefined else len(value)
    if implicit:
        parts.append(fmt.implicit.pack(tag >> 16, tag & 0xFFFF, length))
    elif vr in LONG_VRS:
        parts.append(fmt.explicit_long.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, length))
    elif undefined or length > 0xFFFF:
        # pydicom writes a too-long short-VR value as UN with a warning: let it.
        _pydicom_element(parts, elem, implicit, little, encodings)
        return
    else:
        parts.append(fmt.explicit_short.pack(tag >> 16, tag & 0xFFFF, vr.encode(), length))
    parts.append(value)
    if undefined:
        parts.append(fmt.delimiter.pack(0xFFFE, 0xE0DD, 0))


def _plain_value(elem: DataElement, vr: str, little: bool) -> Part | None:
    """The bytes pydicom would write for a converted element in the simple cases (byte strings,
    ASCII text of a VR that ignores the character set); None for everything else."""
    if elem.is_buffered:
        return None
    value = elem.value
    if vr in _BYTES_VRS:
        if type(value) is memoryview and not value.nbytes % 2:
            return value  # a large image's pixels in their input buffer: passed through
        if type(value) is not bytes:
            return None
        return value + b"\0" if len(value) % 2 else value
    if vr in _INTEGERS:
        return _plain_integer(value, _INTEGERS[vr], little)
    return _plain_text(value, vr) if vr in _PLAIN_TEXT else None


def _plain_integer(value: Any, code: str, little: bool) -> bytes | None:
    if type(value) is not int:
        return None
    try:
        return struct.pack(("<" if little else ">") + code, value)
    except struct.error:
        return None  # out of range: pydicom's writer reports it


def _plain_text(value: Any, vr: str) -> bytes | None:
    if value is None:
        return b""
    if isinstance(value, MultiValue | list):
        if not all(isinstance(v, str) for v in value):
            return None
        value = "\\".join(value)
    if not isinstance(value, str) or not value.isascii():
        return None
    text: str = value
    if len(text) % 2:
        text += "\0" if vr == "UI" else " "
    return text.encode("ascii")


def _write_sequence(
    parts: list[Part], elem: DataElement, implicit: bool, little: bool, encodings: Any
) -> None:
    """A sequence as pydicom's ``write_sequence``: each item of undefined length or with its
    length filled in, then a delimiter if the sequence is of undefined length."""
    fmt = _FORMATS[little]
    tag = int(elem.tag)
    undefined = bool(elem.is_undefined_length)
    header_at = len(parts)
    parts.append(b"")  # the header, once the length is known
    start = len(parts)
    items = elem.value
    if items:
        if not isinstance(items, Sequence):
            _pydicom_element(parts, elem, implicit, little, encodings)
            del parts[header_at]
            return
        item_encoding = convert_encodings(_resolved(encodings) or [default_encoding])
        for item in items:
            _write_item(parts, item, implicit, little, item_encoding)
    length = _UNDEFINED if undefined else sum(len(p) for p in parts[start:])
    if implicit:
        header = fmt.implicit.pack(tag >> 16, tag & 0xFFFF, length)
    else:
        header = fmt.explicit_long.pack(tag >> 16, tag & 0xFFFF, b"SQ", 0, length)
    parts[header_at] = header
    if undefined:
        parts.append(fmt.delimiter.pack(0xFFFE, 0xE0DD, 0))


def _write_item(
    parts: list[Part], item: Dataset, implicit: bool, little: bool, encodings: Any
) -> None:
    fmt = _FORMATS[little]
    header_at = len(parts)
    parts.append(b"")
    start = len(parts)
    _write_level(parts, item, implicit, little, encodings)
    if getattr(item, "is_undefined_length_sequence_item", False):
        parts[header_at] = fmt.delimiter.pack(0xFFFE, 0xE000, _UNDEFINED)
        parts.append(fmt.delimiter.pack(0xFFFE, 0xE00D, 0))
    else:
        length = sum(len(p) for p in parts[start:])
        parts[header_at] = fmt.delimiter.pack(0xFFFE, 0xE000, length)


def _resolved(encodings: Any) -> Any:
    return encodings() if callable(encodings) else encodings


def _pydicom_element(
    parts: list[Part], elem: Any, implicit: bool, little: bool, encodings: Any
) -> None:
    buf = DicomBytesIO()
    buf.is_implicit_VR, buf.is_little_endian = implicit, little
    write_data_element(buf, elem, _resolved(encodings))
    parts.append(buf.getvalue())
