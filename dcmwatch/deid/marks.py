"""What the output says about its own de-identification (PS3.15 E.1.1, PS3.3 C.12.1).

(0012,0062) *Patient Identity Removed*, (0012,0063) *De-identification Method*, (0012,0064)
*De-identification Method Code Sequence* with the CID 7050 code of the profile and of every
option used, and (0028,0303) *Longitudinal Temporal Information Modified*. They are written
after everything else and replace earlier values, so they always describe this run.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Final

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from dcmwatch.deid.settings import OPTION_NAMES

if TYPE_CHECKING:
    from dcmwatch.deid.settings import DeidSettings

__all__ = ["CID_7050", "Marks"]

#: PS3.16 CID 7050 *De-identification Method* (checked against pydicom's ``codes.DCM``).
CID_7050: Final[dict[str, tuple[str, str]]] = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "retain_safe_private": ("113111", "Retain Safe Private Option"),
    "retain_uids": ("113110", "Retain UIDs Option"),
    "retain_device_identity": ("113109", "Retain Device Identity Option"),
    "retain_institution_identity": ("113112", "Retain Institution Identity Option"),
    "retain_patient_characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain_long_full_dates": (
        "113106",
        "Retain Longitudinal Temporal Information Full Dates Option",
    ),
    "retain_long_modified_dates": (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    "clean_descriptors": ("113105", "Clean Descriptors Option"),
    "clean_structured_content": ("113104", "Clean Structured Content Option"),
    "clean_graphics": ("113103", "Clean Graphics Option"),
}
_METHOD: Final = "DCMWATCH PS3.15 2024E ANNEX E BASIC PROFILE"
_OVERRIDDEN: Final = "WITH LOCAL ATTRIBUTE OVERRIDES"


class Marks:
    """The marks of one configuration, written into every dataset by :meth:`apply`.

    They are the same for every file of a configuration, so they are encoded once per
    encoding (implicit/explicit VR, byte order) and put into each dataset as raw elements: the
    writer copies raw bytes verbatim, where the dozen code items of a configuration with every
    option would otherwise cost pydicom's per-element encoding, file after file (a third of
    the whole de-identification). Raw elements are immutable, so datasets may share them.
    """

    __slots__ = ("_elements", "_encoded")

    def __init__(self, settings: DeidSettings) -> None:
        used = [name for name in OPTION_NAMES if name in settings.options]
        codes = tuple(CID_7050[name] for name in ("basic", *used))
        method: str | list[str] = [_METHOD, _OVERRIDDEN] if settings.overrides else _METHOD
        if "retain_long_modified_dates" in settings.options:
            longitudinal = "MODIFIED"
        elif "retain_long_full_dates" in settings.options:
            longitudinal = "UNMODIFIED"
        else:
            longitudinal = "REMOVED"
        items = []
        for value, meaning in codes:
            item = Dataset()
            item.add(DataElement(0x00080100, "SH", value))
            item.add(DataElement(0x00080102, "SH", "DCM"))
            item.add(DataElement(0x00080104, "LO", meaning))
            items.append(item)
        #: The prototype elements, in tag order; never handed out (datasets get copies).
        self._elements = (
            DataElement(0x00120062, "CS", "YES"),
            DataElement(0x00120063, "LO", method),
            DataElement(0x00120064, "SQ", Sequence(items)),
            DataElement(0x00280303, "CS", longitudinal),
        )
        #: Per (implicit VR, little endian) of the transfer syntaxes that exist.
        self._encoded = {
            encoding: tuple(_encode(elem, *encoding) for elem in self._elements)
            for encoding in ((True, True), (False, True), (False, False))
        }

    def apply(self, ds: Dataset) -> None:
        """Write the marks into the top-level dataset, replacing earlier values."""
        implicit, little = ds.original_encoding
        raw = None if implicit is None or little is None else self._encoded.get((implicit, little))
        if raw is None:  # built in memory: no encoding to match yet
            for elem in self._elements:
                ds[elem.tag] = copy.deepcopy(elem)
            return
        elements = ds._dict
        for encoded in raw:
            elements[encoded.tag] = encoded


def _encode(elem: DataElement, implicit: bool, little: bool) -> RawDataElement:
    """``elem`` as the reader would have left it: a raw element with its value's bytes."""
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_data_element(fp, elem)
    header = 8 if implicit or elem.VR not in EXPLICIT_VR_LENGTH_32 else 12
    value = fp.getvalue()[header:]
    return RawDataElement(BaseTag(elem.tag), elem.VR, len(value), value, 0, implicit, little)
