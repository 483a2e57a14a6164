"""Rule matching on header values."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from dcmwatch.pixels.rules import matching_rules, rule_matches

from ._support import rule

WINDOW = [{"type": "window", "center": 40, "width": 400}]


@pytest.fixture
def ds() -> Dataset:
    ds = Dataset()
    ds.Modality = "CT"
    ds.Manufacturer = "Acme Medical"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.Rows = 512
    ds.SliceThickness = "1.25"
    return ds


class TestRuleMatches:
    @pytest.mark.parametrize(
        ("match", "expected"),
        [
            ({"Modality": "CT"}, True),
            ({"Modality": "ct"}, True),
            ({"Manufacturer": "ACME*"}, True),
            ({"Manufacturer": "Other*"}, False),
            ({"Modality": ["MR", "CT"]}, True),
            ({"ImageType": "LOCALIZER"}, True),
            ({"ImageType": "ORIGINAL\\PRIMARY\\*"}, True),
            ({"ImageType": "AXIAL"}, False),
            ({"Rows": 512}, True),
            ({"Rows": [256, 512]}, True),
            ({"Rows": 256}, False),
            ({"SliceThickness": 1.25}, True),
            ({"Modality": "CT", "Rows": 256}, False),
            ({"BurnedInAnnotation": "*"}, False),
            ({}, True),
        ],
    )
    def test_match(self, ds: Dataset, match: dict[str, Any], expected: bool) -> None:
        """Globs are case-insensitive, lists mean any-of, multi-values mean contains,
        numbers compare numerically, an absent attribute never matches."""
        assert rule_matches(rule(WINDOW, match), ds) is expected


class TestMatchingRules:
    def test_first_match_wins_by_default(self, ds: Dataset) -> None:
        """Only the first matching rule applies unless all_matching is set."""
        rules = [rule(WINDOW, {"Modality": "MR"}), rule(WINDOW, {}), rule(WINDOW, {"Rows": 512})]
        assert matching_rules(rules, ds, all_matching=False) == (rules[1],)
        assert matching_rules(rules, ds, all_matching=True) == (rules[1], rules[2])
