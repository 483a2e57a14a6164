"""Which words are findings: header values always, other text unless allowed; never the text."""

from __future__ import annotations

import json

from pydicom.dataset import Dataset

from dcmwatch.ocr.engines import TextLine, Word
from dcmwatch.ocr.findings import OTHER_TEXT, classify, summary
from dcmwatch.ocr.identifiers import collect, date_spellings, normalise
from dcmwatch.ocr.settings import OcrSettings

from ._support import leaked

ALLOW = (r"^\d+(\.\d+)?\s*(cm|mm|Hz|dB|%)$", r"^(MI|TIS|TIB)\s*\d")


def header() -> Dataset:
    ds = Dataset()
    ds.PatientName = "ZZOCRDOE^JOHANNA^^DR"
    ds.PatientID = "PID48213907"
    ds.PatientBirthDate = "19510829"
    ds.AccessionNumber = "ACC7731942"
    ds.InstitutionName = "Mercyhurst General"
    ds.StudyDate = "20240315"
    ds.Modality = "US"
    ds.BurnedInAnnotation = "YES"
    return ds


def line(*words: str, conf: float = 95.0) -> TextLine:
    out = []
    x = 10
    for w in words:
        out.append(Word(w, (x, 10, 8 * len(w), 12), conf))
        x += 8 * len(w) + 6
    return TextLine(tuple(out))


def settings(**kw: object) -> OcrSettings:
    return OcrSettings.model_validate({"allow": ALLOW, **kw})


class TestIdentifiers:
    def test_names_ids_and_dates_in_every_common_spelling(self) -> None:
        values = set(collect(header()).values)
        assert ("patient_name", "ZZOCRDOE") in values
        assert ("patient_name", "JOHANNA") in values
        assert ("patient_id", "PID48213907") in values
        assert ("accession", "ACC7731942") in values
        assert ("institution", "MERCYHURST") in values
        for spelling in ("08/29/1951", "29.08.1951", "1951-08-29", "19510829", "29 AUG 1951",
                         "8/29/1951", "08/29/51"):
            assert ("birth_date", normalise(spelling)) in values, spelling
        assert ("date", "20240315") in values

    def test_header_facts_come_from_the_original(self) -> None:
        ids = collect(header())
        assert ids.modality == "US" and ids.burned_in is True

    def test_repr_never_shows_the_values(self) -> None:
        assert leaked(repr(collect(header()))) == []

    def test_a_non_date_gives_no_spellings(self) -> None:
        assert date_spellings("unknown") == set()


class TestClassify:
    def test_a_header_match_is_a_finding_even_at_low_confidence(self) -> None:
        found = classify([line("DOEAJOHANNA", conf=5.0)], collect(header()), settings(),
                         frame=1)
        # "ZZOCRDOE" is not in this word, but "JOHANNA" is: a substring match.
        assert len(found) == 1 and found[0].classes == ("patient_name",)

    def test_ocr_running_words_together_still_matches(self) -> None:
        found = classify([line("ZZOCRDOEAJOHANNAPID48213907DOB08/29/1951")],
                         collect(header()), settings(), frame=1)
        assert found[0].classes == ("birth_date", "patient_id", "patient_name")

    def test_other_confident_text_is_a_finding(self) -> None:
        found = classify([line("Smithfield", "clinic")], collect(header()), settings(), frame=2)
        assert [(f.frame, f.classes) for f in found] == [(2, (OTHER_TEXT,))]

    def test_low_confidence_noise_and_single_characters_are_not(self) -> None:
        lines = [line("xq7", conf=20.0), line("L"), line("R", "-")]
        assert classify(lines, collect(header()), settings(), frame=1) == []

    def test_allowed_text_passes_across_words(self) -> None:
        lines = [line("12.5", "cm"), line("MI", "0.8"), line("TIS", "0.2"), line("60", "dB")]
        assert classify(lines, collect(header()), settings(), frame=1) == []

    def test_an_allow_pattern_does_not_cover_words_its_match_does_not_touch(self) -> None:
        found = classify([line("MI", "0.8", "Smithfield")], collect(header()), settings(),
                         frame=1)
        assert len(found) == 1
        assert found[0].box[0] > 10  # the box starts at the uncovered word, not at "MI"

    def test_header_values_win_over_allow_patterns(self) -> None:
        s = settings(allow=(".*",))
        found = classify([line("PID48213907")], collect(header()), s, frame=1)
        assert found[0].classes == ("patient_id",)

    def test_short_values_match_only_whole_words(self) -> None:
        ds = header()
        ds.PatientName = "LI^WU"
        ids = collect(ds)
        s = settings(min_confidence=100)
        assert classify([line("CLINIC")], ids, s, frame=1) == []
        assert classify([line("Li")], ids, s, frame=1)[0].classes == ("patient_name",)

    def test_the_record_holds_boxes_and_classes_never_text(self) -> None:
        found = classify([line("ZZOCRDOE,", "JOHANNA", "PID48213907", "08/29/1951")],
                         collect(header()), settings(), frame=1)
        record = json.dumps([f.as_dict() for f in found])
        assert leaked(record) == []
        assert set(found[0].as_dict()) == {"frame", "x", "y", "width", "height", "confidence",
                                           "classes", "redacted", "filled"}
        assert leaked(summary(found)) == []

    def test_words_run_together_are_split_for_allow_patterns(self) -> None:
        s = settings(allow=(*ALLOW, r"^Gain$"))
        assert classify([line("Gain60dB12.5cm")], collect(header()), s, frame=1) == []
        assert classify([line("Smithfield12.5cm")], collect(header()), s, frame=1) != []
