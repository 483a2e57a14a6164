"""The ``[ocr]`` section: which images the burned-in text guard reads, with what, and what then.

Validated once at load like every section: an ``allow`` entry that is not a regular expression,
an engine that is not installed (when the guard is enabled) or a modality that cannot be one are
errors naming the key (``ocr.allow[1]``), not surprises in a worker at 3 a.m.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["DEFAULT_MODALITIES", "TESSDATA_CANDIDATES", "OcrSettings", "find_tessdata"]

#: Modalities whose images commonly carry a burned-in banner (ultrasound, secondary capture,
#: other, angiography, endoscopy, projection X-ray, photographs, scanned documents). Never CT/MR:
#: their annotations live in overlays and headers, and OCR on every slice would stall a scanner.
DEFAULT_MODALITIES = ("US", "SC", "OT", "XA", "ES", "DX", "CR", "XC", "DOC")

#: Where Debian's tesseract-ocr package (and others) put the language data.
TESSDATA_CANDIDATES = (
    "/usr/share/tesseract-ocr/5/tessdata",
    "/usr/share/tesseract-ocr/4.00/tessdata",
    "/usr/share/tessdata",
    "/usr/local/share/tessdata",
)

_MODALITY = re.compile(r"^[A-Z0-9_]{1,16}$")
_ENGINE_MODULES = {"tesseract": "tesserocr", "rapidocr": "rapidocr_onnxruntime"}
_ENGINE_PACKAGES = {"tesseract": "tesserocr", "rapidocr": "rapidocr-onnxruntime"}


def find_tessdata(configured: str | None) -> Path | None:
    """The tessdata folder holding ``eng.traineddata``: the configured one, else a known place."""
    candidates = (configured,) if configured else TESSDATA_CANDIDATES
    for folder in candidates:
        if folder and (Path(folder) / "eng.traineddata").is_file():
            return Path(folder)
    return None


class OcrSettings(BaseModel):
    """Off by default: OCR costs about a second per image and needs an engine installed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Read images for burned-in text before they are written.
    enabled: bool = False
    #: tesseract (libtesseract in-process, Debian's language data) or rapidocr (models inside
    #: the wheel); either must be installed when the guard is enabled.
    engine: Literal["tesseract", "rapidocr"] = "tesseract"
    #: Images of these modalities are read.
    modalities: tuple[str, ...] = DEFAULT_MODALITIES
    #: Also read any image whose original header says (0028,0301) Burned In Annotation = YES.
    when_burned_in_annotation: bool = True
    #: Frames of a multi-frame image to read: "first", "all", or N spread evenly (first and last
    #: included).
    frames: Literal["first", "all"] | Annotated[int, Field(ge=1, le=100_000)] = "first"
    #: quarantine: the file stops (reason burned_in_text); redact: every block of lines holding
    #: a finding is filled, the result checked by another reading (text left: quarantine,
    #: burned_in_text_remains) and the file goes on; redact_all: the same, with allow patterns
    #: ignored (any confident text is a finding); flag: the file goes on unchanged and an
    #: `ocr.finding` event is logged.
    policy: Literal["quarantine", "redact", "redact_all", "flag"] = "quarantine"
    #: Text recognised below this confidence (0..100) is noise, unless it matches a header value.
    #: Tesseract reads speckle as 2-3 letter words at up to ~70: the default stays above that.
    min_confidence: Annotated[float, Field(ge=0, le=100)] = 75.0
    #: Text with fewer letters and digits than this is not a finding on its own (an "L"/"R"
    #: orientation marker); header values always are.
    min_chars: Annotated[int, Field(ge=1, le=64)] = 2
    #: Regular expressions (Python syntax, searched case-insensitively against one word or a run
    #: of words of a line) for benign overlay text such as measurements. Header values always win.
    allow: tuple[str, ...] = ()
    #: At least this many pixels around each redacted block (and suggested mask rectangle);
    #: blocks get half a line height above and below and a line height at the sides anyway.
    pad: Annotated[int, Field(ge=0, le=256)] = 4
    #: Wall-clock limit for reading one image; beyond it the file is quarantined (ocr_timeout).
    time_limit_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    #: Tesseract's language data folder; empty: the first of TESSDATA_CANDIDATES that has eng.
    tessdata: str | None = None
    #: Tesseract languages ("eng", "eng+deu").
    languages: Annotated[str, Field(pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")] = "eng"

    @field_validator("modalities")
    @classmethod
    def _modalities(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for i, m in enumerate(v):
            value = m.strip().upper()
            if not _MODALITY.match(value):
                raise ValueError(f"[{i}] {m!r} is not a DICOM modality (A-Z, 0-9, _; 1-16 chars)")
            out.append(value)
        return tuple(out)

    @field_validator("allow")
    @classmethod
    def _allow_compiles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for i, pattern in enumerate(v):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"[{i}] is not a regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _engine_installed(self) -> Self:
        if not self.enabled:
            return self
        module = _ENGINE_MODULES[self.engine]
        if importlib.util.find_spec(module) is None:
            raise ValueError(
                f"engine {self.engine!r} is enabled but not installed "
                f"(pip install {_ENGINE_PACKAGES[self.engine]})"
            )
        if self.engine == "tesseract":
            folder = find_tessdata(self.tessdata)
            if folder is None:
                raise ValueError(
                    "engine 'tesseract' needs eng.traineddata: install tesseract-ocr "
                    "(apt-get install tesseract-ocr) or set ocr.tessdata"
                )
            for lang in self.languages.split("+"):
                if not (folder / f"{lang}.traineddata").is_file():
                    raise ValueError(f"languages: no {lang}.traineddata in {folder}")
        return self

    def reads(self, modality: str, burned_in: bool) -> bool:
        """Whether an image of this modality (and original Burned In Annotation) is read."""
        if not self.enabled:
            return False
        return modality.strip().upper() in self.modalities or (
            burned_in and self.when_burned_in_annotation
        )
