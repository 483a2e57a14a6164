"""Table E.1-1 applied in full: a marker in every attribute, for the profile and each option."""

from __future__ import annotations

import re

import pytest
from conftest import (
    GRAPHIC_MARKERS,
    KEY,
    NEST,
    PRIVATE_MARKERS,
    Planted,
    build_planted,
    planted_tags,
    reread,
)
from pydicom.dataset import Dataset

from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.dates import shift_da
from dcmwatch.deid.settings import OPTION_NAMES
from dcmwatch.deid.table import TABLE
from dcmwatch.deid.values import resolve_vr

_MARKER = re.compile(rb"MK[A-Z0-9]+")


def _run(planted: Planted, settings: DeidSettings) -> bytes:
    make_deidentifier(settings, KEY)(planted.ds)
    return planted.to_bytes()


def _levels(ds: Dataset) -> list[Dataset]:
    """The top level and the level three sequences deep where the set was planted again."""
    inner = ds
    for tag in NEST:
        inner = inner[tag].value[0]
    return [ds, inner]


def _column(tag: int, option: str) -> str | None:
    return dict(TABLE[tag][1]).get(option)


class TestBasicProfile:
    def test_every_marker_was_planted(self, planted: Planted) -> None:
        """The fixture really contains what the other tests look for."""
        blob = planted.to_bytes()
        assert all(m in blob for m in planted.markers.values() if m)
        assert all(m in blob for m in PRIVATE_MARKERS)
        assert all(m in blob for m in GRAPHIC_MARKERS.values())

    def test_no_marker_survives(self, planted: Planted) -> None:
        """After the Basic Profile no planted value remains anywhere in the written bytes."""
        out = _run(planted, DeidSettings())
        assert _MARKER.findall(out) == []
        assert [t for t, m in planted.markers.items() if m and m in out] == []

    def test_removed_attributes_are_absent_at_every_level(self, planted: Planted) -> None:
        """X attributes are gone, at the top and three sequences deep."""
        out = reread(_run(planted, DeidSettings()))
        removed = [t for t in planted_tags() if TABLE[t][0] == "X"]
        for level in _levels(out):
            assert [f"{t:08X}" for t in removed if t in level] == []

    def test_other_actions_keep_an_attribute(self, planted: Planted) -> None:
        """Z, D, U and compounds leave the attribute present (IOD validity), values replaced;
        except an X/Z sequence that is Type 3 at the top level, removed there."""
        out = reread(_run(planted, DeidSettings()))
        kept = [t for t in planted_tags() if TABLE[t][0] != "X"]
        top, inner = _levels(out)
        assert [f"{t:08X}" for t in kept if t not in top] == ["00081110"]
        assert [f"{t:08X}" for t in kept if t not in inner] == []

    def test_numeric_and_age_markers_are_replaced(self, planted: Planted) -> None:
        """Values whose bytes are no reliable marker (US, AS) are checked by value."""
        original = {t: planted.ds[t].value for t, m in planted.markers.items() if m is None}
        out = reread(_run(planted, DeidSettings()))
        for tag, value in original.items():
            if tag in out and resolve_vr(tag, None) != "SQ":
                assert out[tag].value != value, f"{tag:08X}"

    def test_private_overlay_curve_and_meta_source_ae_are_removed(self, planted: Planted) -> None:
        """Private blocks (and their sequences), 60xx and 50xx groups, meta AE titles go."""
        out = reread(_run(planted, DeidSettings()))
        for level in _levels(out):
            assert [e.tag for e in level if e.tag.is_private] == []
            assert [e.tag for e in level if e.tag.group in (0x5000, 0x6000)] == []
        assert "SourceApplicationEntityTitle" not in out.file_meta


def _expectations(option: str, allowlisted: bool) -> tuple[set[int], set[int]]:
    """(tags whose marker must survive, tags that must be present with the marker gone)."""
    survive: set[int] = set()
    changed: set[int] = set()
    for tag in planted_tags():
        action = _column(tag, option)
        vr = resolve_vr(tag, None)
        if action == "K":
            survive.add(tag)
        elif action == "C" and option == "retain_long_modified_dates":
            if vr == "TM" or tag == 0x00080201:
                survive.add(tag)  # a whole-day shift leaves times of day (and zone) as they were
            elif vr in ("DA", "DT"):
                changed.add(tag)
        elif action == "C" and allowlisted and vr not in ("OB", "SQ", "DA", "DT", "TM"):
            survive.add(tag)
    return survive, changed


_OPTIONS = [o for o in OPTION_NAMES if o != "retain_safe_private"]


@pytest.mark.parametrize("option", _OPTIONS)
@pytest.mark.parametrize("allowlisted", [False, True])
def test_each_option_retains_exactly_its_column(option: str, allowlisted: bool) -> None:
    """With one option, its K (and, allow-listed, C) attributes keep their marker; the rest go."""
    planted = build_planted()
    allow = tuple(m.decode() for m in planted.markers.values() if m) if allowlisted else ()
    settings = DeidSettings(options=(option,), descriptor_allowlist=allow)
    out = _run(planted, settings)
    survive, changed = _expectations(option, allowlisted)
    surviving = {t for t, m in planted.markers.items() if m and m in out}
    expected = {t for t in survive if planted.markers[t]}
    if option == "retain_uids":
        # the items planted in every sequence repeat (0008,1155)'s UID marker
        expected.add(0x00081155)
    assert {f"{t:08X}" for t in surviving} == {f"{t:08X}" for t in expected}
    ds = reread(out)
    for level in _levels(ds):
        for tag in survive:
            assert tag in level, f"{tag:08X} retained by {option} is missing"
        for tag in changed:
            assert tag in level, f"{tag:08X} should be shifted, not removed"


def test_modified_dates_are_shifted_by_one_offset_per_patient() -> None:
    """Every DA moves by the same number of days: intervals between dates are preserved."""
    planted = build_planted()
    before = {t: planted.ds[t].value for t in planted_tags() if resolve_vr(t, None) == "DA"}
    out = reread(_run(planted, DeidSettings(options=("retain_long_modified_dates",))))
    shifted = [t for t in before if _column(t, "retain_long_modified_dates") == "C"]
    offsets = set()
    for days in range(-3650, 0):
        if shift_da(before[shifted[0]], days) == out[shifted[0]].value:
            offsets.add(days)
    assert len(offsets) == 1
    (offset,) = offsets
    assert all(out[t].value == shift_da(before[t], offset) for t in shifted)
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_graphics_kept_with_clean_graphics() -> None:
    """Clean Graphics keeps overlay and curve data; their free text only when allow-listed."""
    planted = build_planted()
    out = _run(planted, DeidSettings(options=("clean_graphics",)))
    assert GRAPHIC_MARKERS["overlay_data"] in out
    assert GRAPHIC_MARKERS["curve_data"] in out
    assert GRAPHIC_MARKERS["overlay_comment"] not in out
    assert GRAPHIC_MARKERS["overlay_description"] not in out
    assert GRAPHIC_MARKERS["curve_description"] not in out
    ds = reread(out)
    assert 0x60000010 in ds  # the overlay plane stays whole


def test_retain_safe_private_keeps_only_allowlisted_pairs() -> None:
    """Only (creator, element) pairs on the list survive, with their creator; nested too."""
    planted = build_planted()
    settings = DeidSettings(
        options=("retain_safe_private",),
        safe_private=(("MKVENDOR 1", 0x10), ("MKVENDOR 1", 0x20)),
    )
    out = _run(planted, settings)
    assert PRIVATE_MARKERS[0] in out  # (0009,1010) allow-listed
    assert PRIVATE_MARKERS[2] in out  # inside the allow-listed private sequence, also 0x10
    assert PRIVATE_MARKERS[1] not in out
    assert PRIVATE_MARKERS[3] not in out
    assert b"MKPRIVSEQNAME" not in out  # the table still applies inside a kept private sequence
    ds = reread(out)
    assert ds[0x00090010].value == "MKVENDOR 1"



@pytest.mark.parametrize("option", OPTION_NAMES)
def test_each_option_removes_what_its_column_does_not_retain(option: str) -> None:
    """With any one option: every X attribute whose column for that option is empty is still
    absent at every level, and no private, overlay or curve marker survives unless the option
    is the one that retains it (Retain Safe Private with an allow-list, Clean Graphics)."""
    planted = build_planted()
    out = _run(planted, DeidSettings(options=(option,)))
    removed = [t for t in planted_tags() if TABLE[t][0] == "X" and _column(t, option) is None]
    ds = reread(out)
    for level in _levels(ds):
        assert [f"{t:08X}" for t in removed if t in level] == []
    retained_graphics = {GRAPHIC_MARKERS["overlay_data"], GRAPHIC_MARKERS["curve_data"]}
    for marker in (*PRIVATE_MARKERS, *GRAPHIC_MARKERS.values()):
        expected = option == "clean_graphics" and marker in retained_graphics
        assert (marker in out) is expected, marker
    assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert ds.PatientIdentityRemoved == "YES"
