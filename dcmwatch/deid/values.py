"""Per-VR facts the de-identifier needs: dummy values, maximum lengths, VR lookup.

Dummy values (action D) are chosen to be valid for their VR, so that a Type 1 attribute that
had to be replaced still passes IOD validation, and to be recognisable as de-identified.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from pydicom._dicom_dict import DicomDictionary
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue
from pydicom.valuerep import VR

__all__ = [
    "DATE_VRS", "FREE_TEXT_VRS", "dummy_like", "dummy_value", "max_chars", "resolve_vr"]

_DUMMY_TEXT: Final = "ANONYMIZED"
_DUMMIES: Final[dict[str, Any]] = {
    "AE": _DUMMY_TEXT,
    "AS": "000Y",
    "CS": _DUMMY_TEXT,
    "DA": "19000101",
    "DT": "19000101000000",
    "TM": "000000",
    "DS": "0",
    "IS": "0",
    "LO": _DUMMY_TEXT,
    "LT": _DUMMY_TEXT,
    "PN": _DUMMY_TEXT,
    "SH": _DUMMY_TEXT,
    "ST": _DUMMY_TEXT,
    "UC": _DUMMY_TEXT,
    "UT": _DUMMY_TEXT,
    "UR": _DUMMY_TEXT,
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    "AT": 0,
}
#: Eight zero bytes: a whole number of values for every binary VR (OB, OW, OF, OL, OD, OV, UN).
_DUMMY_BYTES: Final = b"\x00" * 8

#: VRs of free text: where identifying information hides when nothing else names it.
FREE_TEXT_VRS: Final = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
DATE_VRS: Final = frozenset({"DA", "DT", "TM"})

_MAX_CHARS: Final = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "UI": 64, "ST": 1024}


def dummy_value(vr: str) -> Any:
    """A non-empty value valid for ``vr`` (PS3.15 E.1-1 action D)."""
    return _DUMMIES.get(vr, _DUMMY_BYTES)


def max_chars(vr: str) -> int:
    """The longest string value ``vr`` allows (used to fit keyed digests)."""
    return _MAX_CHARS.get(vr, 64)


#: Bytes per value of the binary number VRs: a scrubbed value keeps its number of values.
_NUMBER_SIZES: Final = {
    "US": 2, "SS": 2, "UL": 4, "SL": 4, "FL": 4, "AT": 4, "FD": 8, "SV": 8, "UV": 8}  # fmt: skip
#: Text VRs replaced value by value (each value's dummy fits the VR's grammar).
_PER_VALUE: Final = frozenset({"AS", "CS", "DA", "DS", "DT", "IS", "TM"})
#: Code strings of a closed vocabulary that structures content (PS3.3 C.17.3 value and
#: relationship types, continuity, graphic and temporal range types, annotation units, Boolean
#: terms). They are the standard's words, never a person's, and an SR or presentation state
#: without them is no longer valid; every other code string in scrubbed content is replaced.
STRUCTURE_TERMS: Final = frozenset({
    "TEXT", "NUM", "CODE", "DATETIME", "DATE", "TIME", "UIDREF", "PNAME", "COMPOSITE", "IMAGE",
    "WAVEFORM", "SCOORD", "SCOORD3D", "TCOORD", "CONTAINER", "TABLE",
    "CONTAINS", "HAS PROPERTIES", "HAS OBS CONTEXT", "HAS ACQ CONTEXT", "INFERRED FROM",
    "SELECTED FROM", "HAS CONCEPT MOD",
    "SEPARATE", "CONTINUOUS",
    "POINT", "MULTIPOINT", "POLYLINE", "CIRCLE", "ELLIPSE", "POLYGON", "ELLIPSOID",
    "INTERPOLATED", "SEGMENT", "MULTISEGMENT", "BEGIN", "END",
    "PIXEL", "DISPLAY", "MATRIX", "YES", "NO",
})  # fmt: skip


def _count(elem: Any, vr: str) -> int:
    """How many values the element holds, counted from its bytes when never converted."""
    value = elem.value
    if value is None or (isinstance(value, bytes | str) and not value):
        return 0
    if isinstance(elem, RawDataElement) or isinstance(value, bytes):
        size = _NUMBER_SIZES.get(vr)
        if size is not None:
            return max(1, len(value) // size)
        return bytes(value).count(b"\\") + 1
    if isinstance(value, MultiValue | list | tuple):
        return len(value)
    return 1


def dummy_like(vr: str, elem: Any, values: list[str]) -> Any:
    """A dummy for ``elem`` (action D) that keeps its number of values, so that an attribute
    whose multiplicity the IOD fixes (Graphic Data, channel pairs) stays valid.

    Binary values become zero bytes of the same length; binary numbers one each (identifiers
    and frame numbers count from one; floats and attribute tags zero); per-value text VRs one
    dummy per value (a code string of :data:`STRUCTURE_TERMS` stays); free text one dummy.
    ``values`` are the element's string values when ``vr`` is a code string, else unused.
    """
    if vr in _NUMBER_SIZES:
        count = _count(elem, vr)
        if count == 0:
            return None
        number: Any = 0.0 if vr in ("FL", "FD") else (0 if vr == "AT" else 1)
        return number if count == 1 else [number] * count
    if vr == "CS":
        return [v if v in STRUCTURE_TERMS else _DUMMY_TEXT for v in values] or _DUMMY_TEXT
    if vr in _PER_VALUE:
        return ["1" if vr == "IS" else _DUMMIES[vr]] * max(1, _count(elem, vr))
    value = elem.value
    if vr in _DUMMIES or not isinstance(value, bytes) or not value:
        return dummy_value(vr)
    return b"\0" * (len(value) + len(value) % 2)


#: The data dictionary's VRs by int tag, built once (a constant): ambiguous VRs ("US or SS",
#: "OB or OW") reduced to the first, which is valid for any value we write.
_VRS: Final[dict[int, str]] = {
    int(tag): str(entry[0])[:2] for tag, entry in DicomDictionary.items()
}


#: Tags whose dictionary VR is a choice ("US or SS", "OB or OW"): the file's VR when it is one
#: of them (the choice depends on other attributes), else the first.
_CHOICES: Final[dict[int, tuple[str, ...]]] = {
    int(tag): tuple(str(entry[0]).split(" or "))
    for tag, entry in DicomDictionary.items()
    if " or " in str(entry[0])
}


_KNOWN_VRS: Final = frozenset(str(vr) for vr in VR if len(str(vr)) == 2)


@lru_cache(maxsize=4096)
def _repeating_vr(tag: int) -> str | None:
    """The VR of a repeating-group tag (50xx, 60xx …), None when the dictionary does not know
    the tag; cached, since the dictionary's mask search is slow and unknown tags recur."""
    try:
        return str(dictionary_VR(tag))[:2]
    except KeyError:
        return None


def resolve_vr(tag: int, raw_vr: str | None) -> str:
    """The VR an element is treated by: the data dictionary's for a known tag, whatever the
    file says (a sequence labelled OB, a UID labelled LO); the file's only for a tag the
    dictionary does not know, and ``UN`` when the file gives none or no valid one.
    """
    vr = _VRS.get(tag)
    if vr is not None:
        choices = _CHOICES.get(tag)
        if choices is not None and raw_vr in choices:
            return str(raw_vr)
        return vr
    vr = _repeating_vr(tag)
    if vr is not None:
        return vr
    return raw_vr if raw_vr in _KNOWN_VRS else "UN"
