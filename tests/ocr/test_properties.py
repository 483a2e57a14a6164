"""Properties: every common spelling of any date is recognised; findings never carry text."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from dcmwatch.ocr.engines import TextLine, Word
from dcmwatch.ocr.findings import classify
from dcmwatch.ocr.identifiers import collect, date_spellings, normalise
from dcmwatch.ocr.settings import OcrSettings

FORMATS = ("%m/%d/%Y", "%d.%m.%Y", "%Y-%m-%d", "%Y%m%d", "%d %b %Y", "%m/%d/%y", "%d-%b-%Y")


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_every_common_spelling_of_a_date_matches(date: dt.date) -> None:
    spellings = date_spellings(date.strftime("%Y%m%d"))
    for fmt in FORMATS:
        assert normalise(date.strftime(fmt)) in spellings, fmt


words = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                max_size=12)


@given(st.lists(words, min_size=1, max_size=6), st.floats(0, 100))
def test_a_finding_record_is_numbers_and_class_names_only(texts: list[str], conf: float) -> None:
    ds = Dataset()
    ds.PatientName = "ZZOCRDOE^JOHANNA"
    line = TextLine(tuple(Word(t, (i * 20, 5, 18, 10), conf) for i, t in enumerate(texts)))
    found = classify([line], collect(ds), OcrSettings(min_confidence=0), frame=1)
    for f in found:
        record = f.as_dict()
        assert all(isinstance(record[k], int | float) for k in ("frame", "x", "y", "width",
                                                                 "height", "confidence"))
        assert set(record["classes"]) <= {"patient_name", "text"}
        json.dumps(record)
