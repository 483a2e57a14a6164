"""Which recognised words are findings, and the PHI-free record of one.

A word matching an identifying value of the original header is always a finding, whatever its
confidence (OCR is least sure about exactly the odd strings names and IDs are). Any other word is
a finding when it is confident (``min_confidence``), has ``min_chars`` letters or digits, and no
``allow`` pattern covers it. A pattern covers a run of consecutive words (pieces, below) of a line
(joined by one space) when its match touches every word of the run: ``12.5 cm`` is covered by
``^\\d+(\\.\\d+)?\\s*cm$`` although OCR returns two words, while ``MI 0.8 SMITH`` leaves
``SMITH`` uncovered by ``^MI\\s*\\d``. Words are first split into pieces at letter/digit
boundaries (``Gain60dB12.5cm`` -> ``Gain 60 dB 12.5 cm``): a word is allowed when each of its
pieces holding a letter or digit is covered; runs are of one to four pieces.

Values are compared normalised (upper case, letters and digits): values of four characters or
more anywhere in a line's concatenated text (OCR often drops the spaces and reads ``^`` as
``A``), shorter ones only as a whole word; a word matching none of them may still nearly match
a name or ID (`dcmwatch.ocr.nearmatch`: a letter or two misread, or a piece of it).

A `Finding` holds a box, a confidence and the classes of header value matched (``text`` when
none did): never the recognised text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dcmwatch.ocr.engines import Box, TextLine, union
from dcmwatch.ocr.identifiers import IdentifyingValues, normalise
from dcmwatch.ocr.nearmatch import near_classes
from dcmwatch.ocr.settings import OcrSettings

__all__ = ["OTHER_TEXT", "Finding", "classify", "flag_lines", "redaction_record", "summary"]

#: The class of a finding that matched no header value.
OTHER_TEXT = "text"
_SUBSTRING_MIN = 4
_MAX_RUN = 4
#: Words split into letter runs, numbers (with decimals) and the rest: OCR often drops the
#: spaces of "Gain 60 dB 12.5 cm", and the allow patterns are written for the spaced form.
_PIECE = re.compile(r"[^\W\d_]+|\d+(?:[.,]\d+)*|[^\s\w]+|_+")
_ALNUM = re.compile(r"[^\W_]")


@dataclass(frozen=True, slots=True)
class Finding:
    #: 1-based frame number the text was read in.
    frame: int
    box: Box
    confidence: float
    #: Classes of header value matched (patient_name, patient_id, birth_date, date, accession,
    #: institution, staff_name) or ("text",).
    classes: tuple[str, ...]
    redacted: bool = False
    #: The region a redaction filled over it (its line's block, padded), on every frame.
    filled: Box | None = None

    def as_dict(self) -> dict[str, Any]:
        x, y, w, h = self.box
        return {"frame": self.frame, "x": x, "y": y, "width": w, "height": h,
                "confidence": round(self.confidence, 1), "classes": list(self.classes),
                "redacted": self.redacted,
                "filled": None if self.filled is None else list(self.filled)}


def classify(
    lines: Sequence[TextLine], ids: IdentifyingValues, settings: OcrSettings, *, frame: int
) -> list[Finding]:
    """The findings among ``lines``: one per line holding any, boxing its offending words."""
    return [f for _, f in flag_lines(lines, ids, settings, frame=frame)]


def flag_lines(
    lines: Sequence[TextLine], ids: IdentifyingValues, settings: OcrSettings, *, frame: int,
    everything: bool = False,
) -> list[tuple[int, Finding]]:
    """(index of the line, its finding) for each line of ``lines`` that holds a finding.

    ``everything`` (policy ``redact_all``): allow patterns are ignored, so any confident text is
    a finding; header values still match at any confidence.
    """
    allow = () if everything else _compiled(settings.allow)
    out: list[tuple[int, Finding]] = []
    for index, line in enumerate(lines):
        words = line.words
        norms = [normalise(w.text) for w in words]
        matched = _header_matches(norms, ids)
        allowed = _allowed(words_text=[w.text for w in words], patterns=allow)
        flagged: list[int] = []
        classes: set[str] = set()
        for i, word in enumerate(words):
            if matched[i]:
                flagged.append(i)
                classes |= matched[i]
            elif (
                word.confidence >= settings.min_confidence
                and len(norms[i]) >= settings.min_chars
                and not allowed[i]
            ):
                flagged.append(i)
                classes.add(OTHER_TEXT)
        if flagged:
            if len(classes) > 1:
                classes.discard(OTHER_TEXT)
            out.append((index, Finding(
                frame=frame,
                box=union([words[i].box for i in flagged]),
                confidence=max(words[i].confidence for i in flagged),
                classes=tuple(sorted(classes)),
            )))
    return out


def _header_matches(norms: list[str], ids: IdentifyingValues) -> list[set[str]]:
    matched: list[set[str]] = [set() for _ in norms]
    starts = []
    pos = 0
    for n in norms:
        starts.append(pos)
        pos += len(n)
    joined = "".join(norms)
    for cls, value in ids.values:
        if len(value) < _SUBSTRING_MIN:
            for i, n in enumerate(norms):
                if n == value:
                    matched[i].add(cls)
            continue
        at = joined.find(value)
        while at >= 0:
            end = at + len(value)
            for i, s in enumerate(starts):
                if s < end and at < s + len(norms[i]):
                    matched[i].add(cls)
            at = joined.find(value, at + 1)
    for i, n in enumerate(norms):
        if not matched[i]:
            matched[i] = near_classes(n, ids.values)
    return matched


def _allowed(*, words_text: list[str], patterns: tuple[re.Pattern[str], ...]) -> list[bool]:
    """Per word: every piece of it with a letter or digit is covered by an allow pattern."""
    if not patterns:
        return [False] * len(words_text)
    pieces: list[tuple[int, str]] = []  # (word index, piece)
    for i, text in enumerate(words_text):
        pieces.extend((i, p) for p in _PIECE.findall(text))
    texts = [p for _, p in pieces]
    covered = [not _ALNUM.search(p) for p in texts]
    n = len(texts)
    for a in range(n):
        for b in range(a, min(a + _MAX_RUN, n)):
            spans = []
            pos = 0
            for t in texts[a : b + 1]:
                spans.append((pos, pos + len(t)))
                pos += len(t) + 1
            run = " ".join(texts[a : b + 1])
            for pattern in patterns:
                m = pattern.search(run)
                if m and all(m.start() < e and s < max(m.end(), m.start() + 1)
                             for s, e in spans):
                    for k in range(a, b + 1):
                        covered[k] = True
                    break
    out = [True] * len(words_text)
    for (i, _), ok in zip(pieces, covered, strict=True):
        out[i] = out[i] and ok
    return out


@lru_cache(maxsize=16)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def summary(findings: Sequence[Finding]) -> str:
    """A PHI-free sentence for error messages: how many boxes, which classes."""
    classes = sorted({c for f in findings for c in f.classes})
    return f"{len(findings)} text region(s) in the pixels (matched: {', '.join(classes)})"


def redaction_record(findings: Sequence[Finding]) -> dict[str, Any] | None:
    """The fields of an ``ocr.redacted`` event (regions filled, their boxes, findings they
    covered), or None when nothing was redacted. Numbers only."""
    regions = sorted({f.filled for f in findings if f.redacted and f.filled is not None})
    if not regions:
        return None
    return {"regions": len(regions), "boxes": [list(r) for r in regions],
            "findings": sum(f.redacted for f in findings)}
