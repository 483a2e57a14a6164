"""Shifting DA and DT values by whole days, keeping their precision and times.

A shift of whole days leaves every time of day, every interval and every time zone offset as it
was: only the calendar date moves. Values that do not parse return None so the caller can apply
the attribute's basic-profile action instead of leaving an unshifted date behind.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Final

__all__ = ["shift_da", "shift_dt"]

# YYYY[MM[DD]] then anything a DT may carry after the date, kept verbatim.
_DT: Final = re.compile(r"(\d{4})(\d\d)?(\d\d)?((?:\d\d){0,3}(?:\.\d{1,6})?)([+-]\d{4})?")
_DA: Final = re.compile(r"(\d{4})\.?(\d\d)\.?(\d\d)")  # also ACR-NEMA's YYYY.MM.DD


def _shift(year: str, month: str | None, day: str | None, days: int) -> str | None:
    try:
        moved = date(int(year), int(month or 1), int(day or 1)) + timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    text = f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"
    return text[: 4 + (2 if month else 0) + (2 if day else 0)]


def shift_da(value: str, days: int) -> str | None:
    """Shift one DA value, or a DA range ``A-B`` (either side may be empty)."""
    text = value.strip()
    if "-" in text:
        parts = [shift_da(p, days) if p.strip() else "" for p in text.split("-")]
        if len(parts) != 2 or None in parts:
            return None
        return f"{parts[0]}-{parts[1]}"
    m = _DA.fullmatch(text)
    if m is None:
        return None
    return _shift(m.group(1), m.group(2), m.group(3), days)


def shift_dt(value: str, days: int) -> str | None:
    """Shift one DT value, keeping its precision, time and UTC offset."""
    m = _DT.fullmatch(value.strip())
    if m is None or (m.group(4) and not m.group(3)):
        return None
    shifted = _shift(m.group(1), m.group(2), m.group(3), days)
    if shifted is None:
        return None
    return shifted + m.group(4) + (m.group(5) or "")
