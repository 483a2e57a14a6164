"""What in the original header identifies the patient, as OCR would read it.

Collected from the dataset *before* de-identification (afterwards the values are gone) and passed
on as a frozen value object, so the pipeline stays pure and nothing else keeps the dataset.
Values are normalised the way recognised text is (upper case, letters and digits only), so
``DOE^JOHN``, ``Doe, John`` and an OCR'd ``DOEAJOHN`` compare; dates are expanded into every
common spelling (``08/29/1951``, ``29.08.1951``, ``1951-08-29``, ``19510829``, ``29 AUG 1951``,
two-digit years) because banners print them every way.

The values are PHI: the object never reaches a log, a sidecar or an error; findings name only
the *class* of value that matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

__all__ = ["IdentifyingValues", "collect", "date_spellings", "normalise"]

_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})")
#: Values shorter than this (normalised) are too common to mean anything ("1", "MR").
MIN_VALUE_CHARS = 2

_NAMES = {
    "patient_name": ("PatientName", "OtherPatientNames", "PatientBirthName",
                     "PatientMotherBirthName"),
    "staff_name": ("ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
                   "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord"),
}
_IDS = {
    "patient_id": ("PatientID", "OtherPatientIDs"),
    "accession": ("AccessionNumber",),
    "institution": ("InstitutionName", "InstitutionalDepartmentName", "InstitutionAddress"),
}
_DATES = {
    "birth_date": ("PatientBirthDate",),
    "date": ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"),
}


def normalise(text: str) -> str:
    """Upper case, letters and digits only: how values and recognised text are compared."""
    return _NOT_ALNUM.sub("", text.upper())


@dataclass(frozen=True, slots=True)
class IdentifyingValues:
    """Normalised identifying values by class, plus the two header facts the guard's selection
    needs from the original (de-identification may change them)."""

    #: (class, normalised value) pairs, e.g. ("patient_name", "DOE").
    values: tuple[tuple[str, str], ...] = ()
    modality: str = ""
    #: The original (0028,0301) Burned In Annotation said YES.
    burned_in: bool = False

    def __repr__(self) -> str:  # never print the values, even in a traceback's locals
        return f"IdentifyingValues(<{len(self.values)} values>, modality={self.modality!r})"


def collect(ds: Dataset) -> IdentifyingValues:
    """The identifying values of ``ds`` (top level only: banners print top-level attributes)."""
    found: set[tuple[str, str]] = set()
    for cls, keywords in _NAMES.items():
        for value in _values(ds, keywords):
            found.update((cls, part) for part in _name_parts(value))
    for cls, keywords in _IDS.items():
        for value in _values(ds, keywords):
            found.add((cls, normalise(value)))
            # Long free text (an institution's name) is also matched word by word.
            if cls == "institution":
                found.update((cls, normalise(w)) for w in value.split() if len(w) >= 4)
    for cls, keywords in _DATES.items():
        for value in _values(ds, keywords):
            found.update((cls, d) for d in date_spellings(value))
    values = tuple(sorted(v for v in found if len(v[1]) >= MIN_VALUE_CHARS))
    return IdentifyingValues(
        values=values,
        modality=str(ds.get("Modality", "") or "").strip().upper(),
        burned_in=str(ds.get("BurnedInAnnotation", "") or "").strip().upper() == "YES",
    )


def _values(ds: Dataset, keywords: Iterable[str]) -> Iterable[str]:
    for keyword in keywords:
        try:
            raw: Any = ds.get(keyword)
        except Exception:  # noqa: S112 - an unreadable value is nothing to compare with
            continue
        if raw is None or raw == "":
            continue
        multi = isinstance(raw, list | tuple) or type(raw).__name__ == "MultiValue"
        items = raw if multi else [raw]
        for item in items:
            text = str(item).strip()
            if text:
                yield text


def _name_parts(value: str) -> set[str]:
    """The whole name and each of its parts (PN components ^ and =, spaces, hyphens, commas)."""
    parts = {normalise(value)}
    for piece in re.split(r"[\^=\s,\-.]+", value):
        norm = normalise(piece)
        if norm:
            parts.add(norm)
    return parts


def date_spellings(value: str) -> set[str]:
    """A DA value (YYYYMMDD) in the spellings banners use, normalised (separators dropped)."""
    m = _DATE.match(value.strip())
    if not m:
        return set()
    y, mo, d = m.groups()
    month = int(mo)
    yy = y[2:]
    out = {y + mo + d, mo + d + y, d + mo + y, mo + d + yy, d + mo + yy, yy + mo + d}
    # Unpadded day/month: 8/29/1951, 29.8.1951.
    mo1, d1 = str(month), str(int(d))
    out |= {mo1 + d1 + y, d1 + mo1 + y}
    if 1 <= month <= 12:
        name = _MONTHS[month - 1]
        out |= {d + name + y, d1 + name + y, name + d + y, name + d1 + y, d + name + yy,
                y + name + d}
    return out
