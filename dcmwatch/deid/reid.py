"""The optional re-identification map: which pseudonym (or new UID) stands for which original.

Off by default, and then nothing reversible exists anywhere: pseudonyms and UIDs are keyed
hashes and consistency comes from determinism, not from a table. When an authorised site asks
for a way back (``[deid] reid_map = true``), the pure core only *reports* the pairs it created,
read from the dataset before and after the run; the edge stores them in the state database
(`dcmwatch.journal`) and `dcmwatch lookup` reads them. The pairs are PHI: they never appear in a
repr, a log event or an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dcmwatch.errors import TransformError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["KINDS", "ReidPair", "reid_pairs", "reid_snapshot"]

#: (kind, pseudonym or new UID, original value).
ReidPair = tuple[str, str, str]

#: The attributes mapped, by keyword (the kind stored): the patient's two pseudonyms and the
#: study and series UIDs (enough to find a study again; per-instance UIDs would add a row per
#: slice for little use).
KINDS: Final[dict[str, int]] = {
    "PatientID": 0x00100020,
    "PatientName": 0x00100010,
    "StudyInstanceUID": 0x0020000D,
    "SeriesInstanceUID": 0x0020000E,
}


def _text(ds: Dataset, tag: int) -> str:
    if tag not in ds._dict:
        return ""
    value = ds[tag].value
    return "" if value is None else str(value).strip().rstrip("\x00").strip()


def reid_snapshot(ds: Dataset) -> dict[str, str]:
    """The original values of the mapped attributes, before de-identification."""
    try:
        return {kind: _text(ds, tag) for kind, tag in KINDS.items()}
    except Exception as exc:  # the library's message may quote the value
        name = type(exc).__name__
        raise TransformError(f"cannot read the re-identification attributes ({name})") from None


def reid_pairs(before: dict[str, str], after: Dataset) -> tuple[ReidPair, ...]:
    """The (kind, new, original) pairs the run created: only values it actually replaced."""
    found: list[ReidPair] = []
    for kind, tag in KINDS.items():
        original = before.get(kind, "")
        new = _text(after, tag)
        if original and new and new != original:
            found.append((kind, new, original))
    return tuple(found)
