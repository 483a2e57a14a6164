"""Keyed replacements and date shifts: valid, consistent, interval-preserving."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcmwatch.deid.dates import shift_da, shift_dt
from dcmwatch.deid.pseudonyms import Keyed
from dcmwatch.errors import KeyTooShortError

KEY = b"0123456789abcdef-test-key"
_UID = re.compile(r"2\.25\.(0|[1-9][0-9]*)")


class TestKeyed:
    def test_short_key_refused(self) -> None:
        with pytest.raises(KeyTooShortError, match="shorter than 16 bytes"):
            Keyed(b"short")

    @given(st.text(alphabet="0123456789.", min_size=1, max_size=64))
    def test_uid_is_valid_and_stable(self, uid: str) -> None:
        """Any input UID maps to a valid ``2.25.`` UID of at most 64 characters, every time."""
        keyed = Keyed(KEY)
        new = keyed.uid(uid)
        assert _UID.fullmatch(new) and len(new) <= 64
        assert Keyed(KEY).uid(uid) == new

    @given(st.text(min_size=1, max_size=64), st.text(min_size=1, max_size=64))
    def test_distinct_patients_distinct_pseudonyms(self, a: str, b: str) -> None:
        keyed = Keyed(KEY, "P")
        assert (keyed.pseudonym(a) == keyed.pseudonym(b)) == (a == b)
        assert re.fullmatch(r"P[A-Z2-7]{16}", keyed.pseudonym(a))

    @given(st.text(max_size=30), st.integers(-5000, 0), st.integers(0, 5000))
    def test_offset_in_range(self, patient: str, low: int, width: int) -> None:
        offset = Keyed(KEY).day_offset(patient, low, low + width)
        assert low <= offset <= low + width


_dates = st.dates(min_value=date(1000, 1, 1), max_value=date(9000, 12, 31))


def _da(d: date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


class TestDates:
    @given(_dates, _dates, st.integers(-3650, 3650))
    def test_shift_preserves_intervals(self, a: date, b: date, days: int) -> None:
        """Two dates shifted by one offset keep the days between them."""
        sa, sb = shift_da(_da(a), days), shift_da(_da(b), days)
        assert sa is not None and sb is not None
        da = date(int(sa[:4]), int(sa[4:6]), int(sa[6:]))
        db = date(int(sb[:4]), int(sb[4:6]), int(sb[6:]))
        assert db - da == b - a and da - a == timedelta(days=days)

    @given(_dates, st.sampled_from(["", "10", "1015", "101530", "101530.123456"]),
           st.sampled_from(["", "+0100", "-0500"]), st.integers(-3650, -1))  # fmt: skip
    def test_dt_keeps_time_and_zone(self, d: date, time: str, zone: str, days: int) -> None:
        shifted = shift_dt(_da(d) + time + zone, days)
        assert shifted == _da(d + timedelta(days=days)) + time + zone

    @pytest.mark.parametrize("bad", ["", "2020", "20201301", "2020-", "abc", "20200230"])
    def test_unparsable_da_is_none(self, bad: str) -> None:
        assert shift_da(bad, -1) is None

    def test_partial_precision_kept(self) -> None:
        assert shift_dt("2020", -1) == "2019"
        assert shift_dt("202003", -1) == "202002"
        assert shift_da("2020.03.01", -1) == "20200229"
        assert shift_da("20200101-20200201", -1) == "20191231-20200131"
