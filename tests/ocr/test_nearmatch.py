"""Near matches of names and IDs: one or two misread letters, or a piece of the value, match;
short words, dates and unrelated words do not. The oracle for the distance is a plain
Levenshtein distance over every stretch of the longer string, computed independently."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dcmwatch.ocr.engines import TextLine, Word
from dcmwatch.ocr.findings import OTHER_TEXT, flag_lines
from dcmwatch.ocr.identifiers import IdentifyingValues
from dcmwatch.ocr.nearmatch import MIN_CHARS, _distance_within, near_classes
from dcmwatch.ocr.settings import OcrSettings

VALUES = (("patient_name", "LINDQVIST"), ("patient_name", "FERREIRA"),
          ("patient_id", "AZ5534972"), ("birth_date", "19610816"), ("accession", "A7621830"))


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _oracle(short: str, long_: str) -> int:
    return min(_levenshtein(short, long_[i:j])
               for i in range(len(long_) + 1) for j in range(i, len(long_) + 1))


@given(st.text("ABC12", max_size=7), st.text("ABC12", max_size=9))
def test_distance_is_the_best_stretch_of_the_longer(short: str, long_: str) -> None:
    assert _distance_within(short, long_) == _oracle(short, long_)


def test_misread_letters_and_pieces_match() -> None:
    assert near_classes("LINDGVISE", VALUES) == {"patient_name"}  # two misread
    assert near_classes("LENGQVIST", VALUES) == {"patient_name"}
    assert near_classes("RREIRA", VALUES) == {"patient_name"}  # a piece
    assert near_classes("EAZ55343", VALUES) == {"patient_id"}  # a piece, two edits
    assert near_classes("A762183O", VALUES) == {"accession"}


def test_short_words_dates_and_other_words_do_not() -> None:
    assert near_classes("LINDQ", VALUES) == set()  # under MIN_CHARS
    assert len("LINDQ") < MIN_CHARS
    assert near_classes("19610815", VALUES) == set()  # dates match exactly or not at all
    assert near_classes("VASCULAR", VALUES) == set()
    assert near_classes("RREIKX", VALUES) == set()  # two edits over six characters
    assert near_classes("LXNDGVXSE", VALUES) == set()  # three over nine


def test_a_near_match_is_a_finding_at_any_confidence() -> None:
    settings = OcrSettings()
    ids = IdentifyingValues(values=VALUES)
    line = TextLine((Word("Lindgvise,", (10, 10, 60, 12), 12.0),))
    found = flag_lines([line], ids, settings, frame=1)
    assert [f.classes for _, f in found] == [("patient_name",)]
    other = TextLine((Word("Vascular", (10, 10, 60, 12), 12.0),))
    assert flag_lines([other], ids, settings, frame=1) == []
    confident = TextLine((Word("Vascular", (10, 10, 60, 12), 95.0),))
    assert [f.classes for _, f in flag_lines([confident], ids, settings, frame=1)] == [
        (OTHER_TEXT,)]
