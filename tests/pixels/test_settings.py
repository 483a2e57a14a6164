"""Validation of the [pixels] section and [[rules]] tables at config load."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from pydantic import ValidationError

from dcmwatch.pixels import MaskAction, PixelRule, PixelSettings

ISSUE_EXAMPLE = """
[[rules]]
name = "ct-scanner-a"
[rules.match]
Modality = "CT"
Manufacturer = "ACME*"
[[rules.actions]]
type = "hu_threshold"
below = -500
fill_hu = -1000
[[rules.actions]]
type = "mask"
rects = [[0, 0, 100, 50]]
fill = 0
[[rules.actions]]
type = "window"
center = 40
width = 400
mode = "tags"
"""


def _errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        PixelRule.model_validate(data)
    return info.value.errors(include_url=False)


def _mask_rule(**mask: Any) -> dict[str, Any]:
    return {"name": "r", "actions": [{"type": "mask", **mask}]}


class TestPixelRule:
    def test_issue_example_loads(self) -> None:
        """The TOML example of issue 4 validates into typed actions."""
        rule = PixelRule.model_validate(tomllib.loads(ISSUE_EXAMPLE)["rules"][0])
        assert [a.type for a in rule.actions] == ["hu_threshold", "mask", "window"]
        assert rule.match == {"Modality": "CT", "Manufacturer": "ACME*"}

    def test_rules_are_hashable(self) -> None:
        """A rule can key a cache (the pipeline caches steps per Config)."""
        data = tomllib.loads(ISSUE_EXAMPLE)["rules"][0]
        data["match"]["ImageType"] = ["AXIAL", "LOCALIZER"]
        assert hash(PixelRule.model_validate(data)) == hash(PixelRule.model_validate(data))

    def test_unknown_action_type_names_the_tag(self) -> None:
        """An unknown action type is reported at actions.0 with the offending tag."""
        errors = _errors({"name": "r", "actions": [{"type": "blur"}]})
        assert errors[0]["loc"] == ("actions", 0)
        assert "blur" in errors[0]["msg"]

    @pytest.mark.parametrize(
        "rect",
        [[-1, 0, 10, 10], [0, 0, 0, 10], [65000, 0, 600, 10], [0, 70000, 1, 1], [0.5, 0, 1, 1]],
    )
    def test_implausible_rectangle_is_rejected(self, rect: list[float]) -> None:
        """Negative, empty, beyond 65535 or fractional pixel rectangles fail at load."""
        errors = _errors(_mask_rule(rects=[rect]))
        assert errors[0]["loc"] == ("actions", 0, "mask", "rects")
        assert "rects[0]" in errors[0]["msg"]

    def test_fraction_rectangles_must_stay_inside_the_unit_square(self) -> None:
        """With fractions = true, a rectangle reaching past 1 fails."""
        errors = _errors(_mask_rule(fractions=True, rects=[[0.5, 0, 0.6, 0.1]]))
        assert errors[0]["loc"] == ("actions", 0, "mask", "rects")
        ok = PixelRule.model_validate(_mask_rule(fractions=True, rects=[[0.5, 0, 0.5, 0.1]]))
        assert isinstance(ok.actions[0], MaskAction)

    def test_mask_needs_a_shape(self) -> None:
        """A mask without rects, circles or polygons is an error."""
        errors = _errors(_mask_rule(fill=0))
        assert errors[0]["loc"] == ("actions", 0, "mask")

    @pytest.mark.parametrize(
        "match",
        [{}, {"Modality": "MR"}, {"Modality": "C*"}, {"Modality": ["CT", "PT"]}],
    )
    def test_hu_action_needs_a_ct_only_match(self, match: dict[str, Any]) -> None:
        """A HU action on a rule that can match non-CT images is reported at 'actions'."""
        data = {"name": "r", "match": match, "actions": [{"type": "hu_clip", "min": -1000}]}
        errors = _errors(data)
        assert errors[0]["loc"] == ("actions",)
        assert "Hounsfield" in errors[0]["msg"]

    def test_fill_hu_mask_counts_as_hu_action(self) -> None:
        """A mask filled in HU needs a CT match too; with one it validates."""
        errors = _errors(_mask_rule(rects=[[0, 0, 1, 1]], fill_hu=-1000))
        assert errors[0]["loc"] == ("actions",)
        data = _mask_rule(rects=[[0, 0, 1, 1]], fill_hu=-1000) | {"match": {"Modality": ["CT"]}}
        assert PixelRule.model_validate(data).actions[0].type == "mask"

    def test_unknown_keyword_in_match(self) -> None:
        """A match key that is no DICOM keyword is reported at 'match'."""
        errors = _errors({"name": "r", "match": {"Modaliti": "CT"}, "actions": [
            {"type": "window", "center": 1, "width": 2}]})
        assert errors[0]["loc"] == ("match",)
        assert "Modaliti" in errors[0]["msg"]

    def test_bake_must_be_last(self) -> None:
        """A pixel action after a bake would see display values: refused."""
        errors = _errors({"name": "r", "actions": [
            {"type": "window", "center": 40, "width": 400, "mode": "bake"},
            {"type": "mask", "rects": [[0, 0, 1, 1]]},
        ]})
        assert errors[0]["loc"] == ("actions",)

    def test_threshold_needs_a_limit(self) -> None:
        """hu_threshold without below/above is an error."""
        errors = _errors({"name": "r", "match": {"Modality": "CT"}, "actions": [
            {"type": "hu_threshold", "fill_hu": 0}]})
        assert errors[0]["loc"] == ("actions", 0, "hu_threshold")

    def test_extra_keys_are_rejected(self) -> None:
        """A misspelt action key fails instead of being ignored."""
        errors = _errors(_mask_rule(rects=[[0, 0, 1, 1]], fil=0))
        assert errors[0]["loc"] == ("actions", 0, "mask", "fil")

    def test_booleans_are_not_match_values(self) -> None:
        """TOML true would silently become 1; it is refused."""
        errors = _errors({"name": "r", "match": {"Rows": True}, "actions": [
            {"type": "window", "center": 1, "width": 2}]})
        assert errors[0]["loc"][0] == "match"


class TestPixelSettings:
    def test_defaults(self) -> None:
        """Defaults: pass, first rule wins, 2 GiB decode limit."""
        s = PixelSettings()
        assert (s.burned_in_annotation, s.all_matching_rules, s.max_pixel_bytes) == (
            "pass", False, 2 * 1024**3)

    def test_unknown_policy(self) -> None:
        """A policy outside reject / require-mask / pass is an error."""
        with pytest.raises(ValidationError):
            PixelSettings.model_validate({"burned_in_annotation": "ignore"})
