"""Per-VR facts the de-identifier needs: dummy values, maximum lengths, VR lookup.

Dummy values (action D) are chosen to be valid for their VR, so that a Type 1 attribute that
had to be replaced still passes IOD validation, and to be recognisable as de-identified.
"""

from __future__ import annotations

from typing import Any, Final

from pydicom._dicom_dict import DicomDictionary
from pydicom.datadict import dictionary_VR

__all__ = ["DATE_VRS", "FREE_TEXT_VRS", "dummy_value", "max_chars", "resolve_vr"]

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


#: The data dictionary's VRs by int tag, built once (a constant): ambiguous VRs ("US or SS",
#: "OB or OW") reduced to the first, which is valid for any value we write.
_VRS: Final[dict[int, str]] = {
    int(tag): str(entry[0])[:2] for tag, entry in DicomDictionary.items()
}


def _dictionary_vr(tag: int) -> str:
    vr = _VRS.get(tag)
    if vr is not None:
        return vr
    try:  # repeating groups (50xx, 60xx) and unknown tags
        return str(dictionary_VR(tag))[:2]
    except KeyError:
        return "UN"


def resolve_vr(tag: int, raw_vr: str | None) -> str:
    """The element's VR: as read (explicit VR files), else from the data dictionary.

    ``UN`` as read is resolved through the dictionary too, so a known attribute stored as UN
    (for instance after an implicit-VR hop) is still treated by its real VR.
    """
    if raw_vr is not None and raw_vr != "UN" and " " not in raw_vr:
        return raw_vr
    return _dictionary_vr(tag)
