"""The few header values the pixel step reads, without pydicom's per-element conversion.

pydicom converts a raw element on first access (VR lookup, value conversion, validation), and
the pixel step reads a dozen of them (Rows, Columns, Bits Allocated, Rescale Slope ...) on every
matched CT slice: together a large share of the pixel step's time budget. These values have
ASCII (CS, IS, DS) or binary (US, SS) VRs whose encoding does not depend on the character set,
so they are parsed here straight from the raw bytes, an order of magnitude faster. An element
pydicom already converted, or of any other VR, is read through pydicom as usual; the result is
the same either way (the tests compare both on every bundled file).

Setting values goes through `set_value`, which builds the element without pydicom's value
validation: the pixel step only writes values it made itself (UIDs from the UID map, defined
terms, numbers), so validating them again costs time and checks nothing.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

__all__ = ["is_raw_ascii", "number", "pixel_bytes", "set_value", "text", "texts"]

_BINARY = {"US": "H", "SS": "h", "UL": "L", "SL": "l"}
#: VRs whose repertoire is ASCII whatever (0008,0005) says: always parsed from raw bytes.
_ASCII = frozenset({"CS", "IS", "DS", "UI"})
#: Multi-valued string VRs that may use the character set: parsed from raw bytes only when every
#: byte is printable ASCII, which every character set DICOM allows decodes the same way (ISO 2022
#: escape sequences start with ESC, not printable).
_STRING = frozenset({"LO", "SH", "AE", "AS", "DA", "TM", "DT"})


def _raw(ds: Dataset, tag: int) -> tuple[RawDataElement | None, Any]:
    """(raw element, None) when ``tag`` is still raw, else (None, converted value or None)."""
    elem = ds.get_item(tag)
    if elem is None:
        return None, None
    if isinstance(elem, RawDataElement):
        return elem, None
    return None, elem.value


def _vr(raw: RawDataElement) -> str:
    return raw.VR or str(dictionary_VR(raw.tag))


def texts(ds: Dataset, tag: int) -> list[str]:
    """The values of a CS/IS/DS/UI element as stripped strings ([] when absent or empty)."""
    raw, value = _raw(ds, tag)
    if raw is not None and raw.value is not None and _parses_raw(raw):
        text = raw.value.decode("ascii", "replace")
        if not text.strip(" \0"):
            return []  # empty (or only padding), as pydicom reads it
        return [part.strip(" \0") for part in text.split("\\")]
    if raw is not None:
        value = ds[tag].value
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes | int | float):
        return [str(value).strip()]
    return [str(v).strip() for v in value]


def text(ds: Dataset, tag: int) -> str:
    """The first value of a CS/IS/DS/UI element, stripped ("" when absent or empty)."""
    values = texts(ds, tag)
    return values[0] if values else ""


def number(ds: Dataset, tag: int) -> Any:
    """The first value of a numeric element (US, SS, IS, DS ...): an int or float for raw binary
    values, the stripped string for raw IS/DS (the caller converts and reports), else
    pydicom's value; None when absent or empty."""
    raw, value = _raw(ds, tag)
    if raw is not None:
        vr = _vr(raw)
        data = raw.value
        if vr in _BINARY and data is not None and len(data) >= struct.calcsize(_BINARY[vr]):
            order = "<" if raw.is_little_endian else ">"
            return struct.unpack_from(order + _BINARY[vr], data)[0]
        if vr in ("IS", "DS") and data is not None:
            first = data.decode("ascii", "replace").split("\\")[0].strip(" \0")
            return first or None
        value = ds[tag].value
    if value is None or value == "":
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def _parses_raw(raw: RawDataElement) -> bool:
    vr = _vr(raw)
    if vr in _ASCII:
        return True
    data = raw.value
    return vr in _STRING and data is not None and (not data or _printable(data))


def _printable(data: bytes) -> bool:
    return data.isascii() and data.rstrip(b"\0").decode("ascii").isprintable()


def is_raw_ascii(ds: Dataset, tag: int) -> bool:
    """Whether ``tag`` is still raw and `texts` parses it itself (see `_ASCII`, `_STRING`)."""
    elem = ds.get_item(tag)
    return isinstance(elem, RawDataElement) and _parses_raw(elem)


def pixel_bytes(ds: Dataset, tag: int) -> tuple[Any, str | None, bool]:
    """(value, VR or None when implicit, undefined length) of a bulk element such as Pixel Data,
    without converting it (a raw value is already the bytes)."""
    elem = ds.get_item(tag)
    if elem is None:
        return None, None, False
    if isinstance(elem, RawDataElement):
        vr = elem.VR if elem.VR in ("OB", "OW") else None
        return elem.value, vr, elem.length == 0xFFFFFFFF
    return elem.value, str(elem.VR), bool(elem.is_undefined_length)


def set_value(ds: Dataset, tag: int, vr: str, value: Any) -> None:
    """Set an element to a value the caller made (not validated again)."""
    ds[tag] = DataElement(tag, vr, value, validation_mode=pydicom_config.IGNORE)
