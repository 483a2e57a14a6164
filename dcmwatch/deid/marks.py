"""What the output says about its own de-identification (PS3.15 E.1.1, PS3.3 C.12.1).

(0012,0062) *Patient Identity Removed*, (0012,0063) *De-identification Method*, (0012,0064)
*De-identification Method Code Sequence* with the CID 7050 code of the profile and of every
option used, and (0028,0303) *Longitudinal Temporal Information Modified*. They are written
after everything else and replace earlier values, so they always describe this run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

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
    """The marks of one configuration; :meth:`apply` builds fresh items for every dataset."""

    __slots__ = ("_codes", "_longitudinal", "_method")

    def __init__(self, settings: DeidSettings) -> None:
        used = [name for name in OPTION_NAMES if name in settings.options]
        self._codes = tuple(CID_7050[name] for name in ("basic", *used))
        self._method: str | list[str] = (
            [_METHOD, _OVERRIDDEN] if settings.overrides else _METHOD
        )
        if "retain_long_modified_dates" in settings.options:
            self._longitudinal = "MODIFIED"
        elif "retain_long_full_dates" in settings.options:
            self._longitudinal = "UNMODIFIED"
        else:
            self._longitudinal = "REMOVED"

    def apply(self, ds: Dataset) -> None:
        """Write the marks into the top-level dataset."""
        items = []
        for value, meaning in self._codes:
            item = Dataset()
            item[0x00080100] = DataElement(0x00080100, "SH", value)
            item[0x00080102] = DataElement(0x00080102, "SH", "DCM")
            item[0x00080104] = DataElement(0x00080104, "LO", meaning)
            items.append(item)
        ds[0x00120062] = DataElement(0x00120062, "CS", "YES")
        ds[0x00120063] = DataElement(0x00120063, "LO", self._method)
        ds[0x00120064] = DataElement(0x00120064, "SQ", Sequence(items))
        ds[0x00280303] = DataElement(0x00280303, "CS", self._longitudinal)
