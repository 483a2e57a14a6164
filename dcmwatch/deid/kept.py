"""Whether a value the profile keeps really is what its tag says it is.

The profile keeps numbers and codes (an Integer String, a Code String, an unsigned short) because
they cannot carry a name or a date. That holds only when the bytes are such a value: a file can
store ``DOE^JOHN`` in an Integer String, label a Slice Thickness LO, or write a birth date into a
Code String. The walk judges each element by its tag's dictionary VR, so before it lets one pass
unchanged it asks here whether the bytes fit that VR. A value that does not fit is removed: an
element we cannot vouch for never passes.

The checks are deliberately about characters and sizes, not about the standard's every length
rule: a real archive's lowercase Code String or over-long Decimal String is harmless and common,
while a caret, a slash, a comma or a letter in a number is exactly how text gets smuggled.
What the checks cannot see is text that happens to fit: a Code String of capitals (``SMITH``) or
an Integer String of digits (``19510829``) is kept, as the profile keeps any code or number.
"""

from __future__ import annotations

import re
from typing import Any, Final

from pydicom._dicom_dict import DicomDictionary
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue

__all__ = ["fits"]


def _values(number: bytes) -> bytes:
    """A pattern for backslash-separated values, each ``number`` (or empty) with spaces around
    it, then NUL or space padding."""
    one = rb" *(?:" + number + rb")? *"
    return one + rb"(?:\\" + one + rb")*[\x00 ]*"


#: Text VRs whose whole repertoire is a handful of characters (PS3.5 Table 6.2-1), with NUL and
#: space padding and the backslash between values allowed.
_REPERTOIRE: Final = {
    "AS": re.compile(rb"[0-9DWMY \\\x00]*"),
    "CS": re.compile(rb"[A-Za-z0-9_ \\\x00]*"),
    # Numbers are checked value by value: "1951-08-29" is all digits and dashes, not a number.
    "DS": re.compile(_values(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")),
    "IS": re.compile(_values(rb"[+-]?[0-9]+")),
    # A UID is digits and dots (PS3.5 9.1); what is kept as a UID must be one.
    "UI": re.compile(_values(rb"[0-9.]+")),
}
#: Binary VRs of a fixed size per value: any other byte count is not such a value.
_WIDTH: Final = {"AT": 4, "FD": 8, "FL": 4, "SL": 4, "SS": 2, "SV": 8, "UL": 4, "US": 2, "UV": 8}
#: What a file may call an element without contradicting a binary dictionary VR: nothing
#: (Implicit VR), UN (a system that did not know the tag), or the VR itself.
_NEUTRAL: Final = frozenset({None, "UN"})


def _fixed_counts() -> dict[int, int]:
    """Tag -> its value multiplicity, for the binary-number tags whose VM is a fixed number."""
    counts: dict[int, int] = {}
    for tag, (vr, vm, *_) in DicomDictionary.items():
        if vr in _WIDTH and vm.isdigit():
            counts[tag] = int(vm)
    return counts


_FIXED_COUNT: Final = _fixed_counts()


def fits(vr: str, elem: Any) -> bool:
    """False when ``elem``'s value cannot be a value of ``vr``, the VR its tag has.

    Only the VRs that the profile keeps as harmless are judged; every other VR is someone
    else's decision (free text is removed, dummied or allow-listed by the profile itself).
    """
    pattern = _REPERTOIRE.get(vr)
    if pattern is not None:
        raw = _raw(elem)
        return raw is None or pattern.fullmatch(raw) is not None
    width = _WIDTH.get(vr)
    if width is None:
        return True
    if isinstance(elem, RawDataElement):
        if elem.VR not in _NEUTRAL and vr != elem.VR:
            return False  # text (or another binary kind) where the tag holds numbers
        if elem.value is None:
            return True
        size = len(elem.value)
        count = _FIXED_COUNT.get(elem.tag)
        # Sixteen bytes of text in a one-value US are eight "values": the count must be the
        # dictionary's when it names one, else a whole number of values.
        return size == count * width if count is not None else size % width == 0
    return vr == elem.VR or elem.VR in _NEUTRAL



def _raw(elem: Any) -> bytes | None:
    """The value's bytes as the file had them, or its text when pydicom already converted it."""
    value = elem.value
    if value is None:
        return None
    if isinstance(elem, RawDataElement) or isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, MultiValue | list | tuple):
        value = "\\".join(str(v) for v in value)
    return str(value).encode("utf-8", "replace")
