"""Header values OCR read almost right: a name or ID with a letter or two misread, or cut.

Small text over speckle is exactly where an engine reads ``LINDGVISE`` for ``LINDQVIST``,
``VANEHRPOOL`` for ``VANTERPOOL`` or only ``RREIRA`` of ``FERREIRA``: the banner is found, the
exact comparison (`dcmwatch.ocr.findings`) is not. So a recognised word also matches a name or
ID value when the shorter of the two lies within a small edit distance of some stretch of the
longer: at most one edit over 6-7 aligned characters, two over 8 or more. Fewer than six
characters never match this way, and dates never do (digit strings of that length are on every
measurement line); both still match exactly.

Random readings of speckle are short and would need to hit one particular stretch of a
particular value of this patient within one or two edits, so a near match is as strong a
finding as an exact one; the false-positive check of ``benchmarks/bench_ocr.py --fp`` holds it
to that.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MIN_CHARS", "NEAR_CLASSES", "near_classes"]

#: Classes of header value a word may match nearly (never dates).
NEAR_CLASSES = frozenset({"patient_name", "patient_id", "accession", "staff_name"})
#: Fewest characters a near match aligns.
MIN_CHARS = 6
#: Aligned length from which two edits are allowed (one below it).
_TWO_EDITS_FROM = 8


def near_classes(word: str, values: Iterable[tuple[str, str]]) -> set[str]:
    """Classes of the ``values`` ((class, normalised value)) that the normalised ``word``
    nearly matches."""
    out: set[str] = set()
    if len(word) < MIN_CHARS:
        return out
    for cls, value in values:
        if cls in out or cls not in NEAR_CLASSES or len(value) < MIN_CHARS:
            continue
        short, long_ = (word, value) if len(word) <= len(value) else (value, word)
        allowed = 2 if len(short) >= _TWO_EDITS_FROM else 1
        if _distance_within(short, long_) <= allowed:
            out.add(cls)
    return out


def _distance_within(short: str, long_: str) -> int:
    """Fewest edits turning ``short`` into some stretch of ``long_`` (edit distance with free
    ends in ``long_``)."""
    previous = [0] * (len(long_) + 1)
    for i, a in enumerate(short, 1):
        current = [i] + [0] * len(long_)
        for j, b in enumerate(long_, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b))
        previous = current
    return min(previous)
