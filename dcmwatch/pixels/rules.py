"""Which rules apply to a dataset: header matching only, never a look at the pixels.

Matching must stay cheap because it runs on every file and, when nothing matches, is the whole
cost of the pixel step. It reads only the attributes a rule names (pydicom converts a raw
element on first access, so untouched elements stay raw).
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dcmwatch.pixels import header
from dcmwatch.pixels.settings import MatchScalar, MatchValue, PixelRule

__all__ = ["matching_rules", "rule_matches"]


def matching_rules(
    rules: Sequence[PixelRule], ds: Dataset, *, all_matching: bool
) -> tuple[PixelRule, ...]:
    """The rules that apply, in config order: the first match only unless ``all_matching``."""
    found: list[PixelRule] = []
    for rule in rules:
        if rule_matches(rule, ds):
            found.append(rule)
            if not all_matching:
                break
    return tuple(found)


def rule_matches(rule: PixelRule, ds: Dataset) -> bool:
    """Whether every ``match`` key of ``rule`` holds for ``ds`` (see `PixelRule`)."""
    for keyword, expected in rule.match.items():
        tag = tag_for_keyword(keyword)
        if tag is None or tag not in ds:
            return False
        actual: Any
        if header.is_raw_ascii(ds, tag):  # CS/IS/DS/UI parsed from the raw bytes
            values = header.texts(ds, tag)
            actual = values[0] if len(values) == 1 else values
        else:
            actual = ds[tag].value
        if not _value_matches(actual, expected):
            return False
    return True


def _value_matches(actual: Any, expected: MatchValue) -> bool:
    patterns = expected if isinstance(expected, tuple) else (expected,)
    if actual is None or actual == "":
        return False
    candidates: list[Any]
    if isinstance(actual, MultiValue | list | tuple):
        values = list(actual)
        if not values:
            return False
        candidates = values
        if all(isinstance(v, str) for v in values):
            candidates = [*values, "\\".join(values)]
    else:
        candidates = [actual]
    return any(_one_matches(c, p) for p in patterns for c in candidates)


def _one_matches(actual: Any, pattern: MatchScalar) -> bool:
    if isinstance(pattern, str):
        return fnmatchcase(str(actual).strip().upper(), pattern.strip().upper())
    # A number: compare numerically (IS/DS values are str subclasses in pydicom).
    try:
        return float(actual) == float(pattern)
    except (TypeError, ValueError):
        return False
