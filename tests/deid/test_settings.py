"""The [deid] section validates at load time, so workers never meet a bad setting."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dcmwatch.deid import DeidSettings, Override


class TestDeidSettings:
    def test_defaults_are_the_basic_profile(self) -> None:
        s = DeidSettings()
        assert s.options == () and s.pseudonym_prefix == "ANON" and s.key_env == "DCMWATCH_KEY"

    def test_frozen_and_strict(self) -> None:
        with pytest.raises(ValidationError):
            DeidSettings(unknown=1)  # type: ignore[call-arg]
        with pytest.raises(ValidationError):
            DeidSettings().options = ()  # type: ignore[misc]

    @pytest.mark.parametrize(
        "bad",
        [
            {"options": ["retain_everything"]},
            {"options": ["retain_uids", "retain_uids"]},
            {"options": ["retain_long_full_dates", "retain_long_modified_dates"]},
            {"pseudonym_prefix": "A^B"},
            {"pseudonym_prefix": "X" * 17},
            {"date_shift_days": [10, -10]},
            {"date_shift_days": [-10**6, 0]},
            {"safe_private": [["ACME", 256]]},
            {"safe_private": [["", 16]]},
            {"generate_key": True},
        ],
    )
    def test_rejects(self, bad: dict[str, object]) -> None:
        with pytest.raises(ValidationError):
            DeidSettings.model_validate(bad)

    def test_accepts_toml_shaped_lists(self) -> None:
        s = DeidSettings.model_validate(
            {
                "options": ["clean_graphics"],
                "safe_private": [["ACME 1.0 ", 16]],
                "date_shift_days": [-30, -1],
            }
        )
        assert s.safe_private == (("ACME 1.0", 16),) and s.date_shift_days == (-30, -1)


class TestOverride:
    @pytest.mark.parametrize(
        ("attribute", "target"),
        [("PatientName", 0x00100010), ("(0010,0030)", 0x00100030), ("ACME 1.0:1f", ("ACME 1.0", 0x1F))],
    )
    def test_targets(self, attribute: str, target: object) -> None:
        assert Override(attribute=attribute, action="remove").target() == target

    @pytest.mark.parametrize(
        "bad",
        [
            {"attribute": "NotAKeyword", "action": "keep"},
            {"attribute": "(0009,1010)", "action": "keep"},  # private by tag: ambiguous
            {"attribute": "PatientName", "action": "replace"},  # value missing
            {"attribute": "PatientName", "action": "keep", "value": "x"},
            {"attribute": "Rows", "action": "hash"},
            {"attribute": "PatientName", "action": "shift"},
            {"attribute": "Rows", "action": "replace", "value": "1"},
        ],
    )
    def test_rejects(self, bad: dict[str, object]) -> None:
        with pytest.raises(ValidationError):
            Override.model_validate(bad)

    def test_duplicate_targets_rejected(self) -> None:
        with pytest.raises(ValidationError):
            DeidSettings.model_validate(
                {
                    "overrides": [
                        {"attribute": "PatientName", "action": "keep"},
                        {"attribute": "(0010,0010)", "action": "remove"},
                    ]
                }
            )
