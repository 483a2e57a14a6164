"""Images with burned-in patient text and the ground truth of which pixels carry it.

An independent check of the burned-in text guard: the guard was tuned on
`dcmwatch.testing.banners` (Pillow's bundled font over an ultrasound fan), so a detection rate
measured there says little about images it has never seen. This generator shares no drawing code
with it. It draws with system TrueType fonts (DejaVu, Liberation and FreeFont; Debian packages
``fonts-dejavu-core fonts-liberation fonts-freefont-ttf``), 12-28 px, one line or a block of
lines anywhere in the image, light on dark or dark on light, over a flat background, speckle or
anatomy-like texture, in every pixel format the guard renders.

Each token (a name part, the ID, the birth date, an accession number, a label) is drawn on its
own layer, so the case knows exactly which pixels carry which value: a `Token` holds its class
and a boolean map of its glyph pixels. Detection and redaction can then be judged against that
map rather than against what another OCR pass happens to read. The header carries the same
identifying values, so a finding can match them.

Everything follows from ``(seed, condition)``: the same arguments give the same case.

    case = make_case(7, Condition("speckle", "dark-on-light", "MONOCHROME1", 16))
    case.dataset, case.tokens, case.phi_mask()
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels.processing import convert_color_space
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
)

__all__ = [
    "CONDITIONS",
    "FONTS",
    "PHI_CLASSES",
    "Case",
    "Condition",
    "Layout",
    "Token",
    "font_path",
    "make_case",
]

Background = Literal["flat", "speckle", "anatomy"]
Polarity = Literal["light-on-dark", "dark-on-light"]
Photometric = Literal["MONOCHROME2", "MONOCHROME1", "RGB", "YBR_FULL"]
Mask = npt.NDArray[np.bool_]

#: Font files the cases are drawn with, by the name a table prints.
FONTS: Final = {
    "DejaVuSans": "DejaVuSans.ttf",
    "DejaVuSansMono": "DejaVuSansMono.ttf",
    "DejaVuSerif": "DejaVuSerif.ttf",
    "LiberationSans": "LiberationSans-Regular.ttf",
    "LiberationMono": "LiberationMono-Regular.ttf",
    "LiberationSerif": "LiberationSerif-Regular.ttf",
    "FreeSans": "FreeSans.ttf",
    "FreeMono": "FreeMono.ttf",
}
_FONT_DIRS: Final = ("/usr/share/fonts", "/usr/local/share/fonts")
#: Font sizes (pixels per em) the cases use, both ends included.
SIZE_RANGE: Final = (12, 28)
#: Token classes that are patient data; every other token is ``text`` (labels, device words).
PHI_CLASSES: Final = frozenset({"patient_name", "patient_id", "birth_date", "accession"})

_FAMILIES: Final = ("MARLOWE", "OKONJO", "HALVORSEN", "PETRAKIS", "VANTERPOOL", "DUBROVSKY",
                    "ABERNATHY", "KOWALCZYK", "FERREIRA", "LINDQVIST", "NAKAMURA", "OYELARAN")
_GIVENS: Final = ("BEATRIX", "LEOPOLD", "TATIANA", "AUGUSTIN", "MIRELLA", "DESMOND", "ROSALIND",
                  "CORNELIUS", "ISOLDE", "FREDERIK", "ANTONELLA", "BARNABY")
_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                  "DEC")
#: Device words a banner carries beside the patient's: text, but no patient data.
_DEVICE_WORDS: Final = ("Abdomen", "Cardiac", "Probe", "Harmonic", "Vascular", "Thyroid",
                        "Renal", "Obstetric")


@dataclass(frozen=True, slots=True)
class Condition:
    """What a detection rate is reported per: background, polarity and pixel format."""

    background: Background = "flat"
    polarity: Polarity = "light-on-dark"
    photometric: Photometric = "MONOCHROME2"
    bits: Literal[8, 16] = 8
    frames: int = 1

    @property
    def name(self) -> str:
        frames = f" x{self.frames}" if self.frames > 1 else ""
        return f"{self.background}/{self.polarity}/{self.photometric}-{self.bits}{frames}"


_BACKGROUNDS: Final[tuple[Background, ...]] = ("flat", "speckle", "anatomy")
_POLARITIES: Final[tuple[Polarity, ...]] = ("light-on-dark", "dark-on-light")
_FORMATS: Final[tuple[tuple[Photometric, Literal[8, 16], int], ...]] = (
    ("MONOCHROME2", 8, 1),
    ("MONOCHROME2", 16, 1),
    ("MONOCHROME1", 8, 1),
    ("MONOCHROME1", 16, 3),
    ("RGB", 8, 1),
    ("YBR_FULL", 8, 2),
)
#: Every background x polarity x pixel format (multi-frame among them).
CONDITIONS: Final = tuple(
    Condition(bg, pol, ph, bits, frames)
    for bg, pol, (ph, bits, frames) in itertools.product(
        _BACKGROUNDS, _POLARITIES, _FORMATS)
)


@dataclass(frozen=True, slots=True, eq=False)
class Token:
    """One drawn word and the pixels that carry it."""

    text: str
    #: ``patient_name``, ``patient_id``, ``birth_date``, ``accession`` or ``text``.
    cls: str
    #: 0-based line of the banner block.
    line: int
    #: (rows, columns) map of the pixels its glyphs cover (any ink), the same on every frame.
    mask: Mask = field(repr=False)

    @property
    def phi(self) -> bool:
        return self.cls in PHI_CLASSES


@dataclass(frozen=True, slots=True)
class Layout:
    """The drawing choices a seed made, for breakdowns of a rate (never needed to judge one)."""

    font: str
    size: int
    lines: int
    #: (x, y) of the block's top-left corner.
    origin: tuple[int, int]
    rows: int
    columns: int


@dataclass(frozen=True, slots=True, eq=False)
class Case:
    dataset: Dataset
    tokens: tuple[Token, ...]
    condition: Condition
    layout: Layout | None

    def phi_mask(self) -> Mask:
        """Pixels of every patient-data token (empty for a case without text)."""
        rows, columns = int(self.dataset.Rows), int(self.dataset.Columns)
        out = np.zeros((rows, columns), dtype=bool)
        for token in self.tokens:
            if token.phi:
                out |= token.mask
        return out

    def text_mask(self) -> Mask:
        """Pixels of every token, patient data or not."""
        rows, columns = int(self.dataset.Rows), int(self.dataset.Columns)
        out = np.zeros((rows, columns), dtype=bool)
        for token in self.tokens:
            out |= token.mask
        return out


@dataclass(frozen=True, slots=True)
class _Patient:
    family: str
    given: str
    patient_id: str
    birth_date: str  # YYYYMMDD
    accession: str


def make_case(seed: int, condition: Condition, *, text: bool = True) -> Case:
    """The case for ``seed`` under ``condition``; ``text=False`` gives the same kind of image
    with nothing written on it (for false-positive rates)."""
    # Separate streams, so the same seed gives the same background and header with or without
    # text, and a test can compare the two images pixel by pixel.
    streams = np.random.SeedSequence([seed, _condition_index(condition)]).spawn(3)
    pick, paint, write = (np.random.default_rng(s) for s in streams)
    rows, columns = ((480, 640), (600, 800), (512, 512), (384, 512))[int(pick.integers(4))]
    patient = _patient(pick)
    frames = [_background(paint, condition, rows, columns) for _ in range(condition.frames)]
    tokens: tuple[Token, ...] = ()
    layout = None
    if text:
        lines = _banner_lines(pick, patient)
        font = sorted(FONTS)[int(pick.integers(len(FONTS)))]
        size = int(pick.integers(SIZE_RANGE[0], SIZE_RANGE[1] + 1))
        if _width(lines, font, size) + 4 > columns:  # a long one-line banner becomes a block
            lines = _split(lines[0])
        tokens, origin, ink = _draw(pick, lines, font, size, rows, columns)
        layout = Layout(font, size, len(lines), origin, rows, columns)
        level = _text_level(pick, condition)
        frames = [f * (1 - ink) + level * ink for f in frames]
    ds = _dataset(write, condition, frames, patient, seed)
    return Case(ds, tokens, condition, layout)


def _condition_index(condition: Condition) -> int:
    try:
        return CONDITIONS.index(condition)
    except ValueError:
        return len(CONDITIONS) + hash(condition.name) % 10_000


def _patient(rng: np.random.Generator) -> _Patient:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    prefix = "".join(letters[int(i)] for i in rng.integers(len(letters), size=2))
    digits = "".join(str(int(d)) for d in rng.integers(10, size=7))
    year = int(rng.integers(1930, 2015))
    month = int(rng.integers(1, 13))
    day = int(rng.integers(1, 29))
    return _Patient(
        family=_FAMILIES[int(rng.integers(len(_FAMILIES)))],
        given=_GIVENS[int(rng.integers(len(_GIVENS)))],
        patient_id=f"{prefix}{digits}",
        birth_date=f"{year:04d}{month:02d}{day:02d}",
        accession=f"A{int(rng.integers(10**6, 10**7))}",
    )


def _name_tokens(rng: np.random.Generator, p: _Patient) -> list[tuple[str, str]]:
    family, given = p.family, p.given
    style = int(rng.integers(5))
    name = "patient_name"
    if style == 0:
        return [(f"{family}^{given}", name)]
    if style == 1:
        return [(f"{family},", name), (given, name)]
    if style == 2:
        return [(given.title(), name), (family.title(), name)]
    if style == 3:
        return [(f"{family.title()},", name), (given.title(), name)]
    return [(family, name), (given, name)]


def _date_text(rng: np.random.Generator, date: str) -> str:
    y, m, d = date[:4], date[4:6], date[6:]
    month = _MONTHS[int(m) - 1]
    spellings = (f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{y}-{m}-{d}", f"{y}{m}{d}",
                 f"{d} {month} {y}", f"{d}-{month.title()}-{y}", f"{int(m)}/{int(d)}/{y}")
    return spellings[int(rng.integers(len(spellings)))]


def _banner_lines(rng: np.random.Generator, p: _Patient) -> list[list[tuple[str, str]]]:
    """Lines of (word, class): a one-line banner or a block of two to four lines."""
    name = _name_tokens(rng, p)
    dob = [(w, "birth_date") for w in _date_text(rng, p.birth_date).split()]
    pid = [(p.patient_id, "patient_id")]
    labelled = bool(rng.integers(2))
    if labelled:
        name = [("Name:", "text"), *name]
        pid = [("ID:", "text"), *pid]
        dob = [("DOB:", "text"), *dob]
    lines = [name, pid, dob]
    if rng.integers(3) == 0:
        return [[*name, *pid, *dob]]
    if rng.integers(2):
        lines.append([("Acc:", "text"), (p.accession, "accession")])
    if rng.integers(2):
        lines.append([(_DEVICE_WORDS[int(rng.integers(len(_DEVICE_WORDS)))], "text")])
    order = rng.permutation(len(lines))
    return [lines[int(i)] for i in order]


def _split(line: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """A one-line banner as a block: a new line at each change from one value's class to
    another's (labels stay with the value they precede)."""
    out: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    last = ""
    for word, cls in line:
        starts = cls != "text" and last not in ("", "text", cls)
        if (starts or (cls == "text" and last not in ("", "text"))) and current:
            out.append(current)
            current = []
        current.append((word, cls))
        last = cls
    out.append(current)
    return out


def _width(lines: list[list[tuple[str, str]]], font_name: str, size: int) -> int:
    from PIL import ImageFont  # noqa: PLC0415 - test-only dependency

    font = ImageFont.truetype(str(font_path(font_name)), size)
    space = font.getlength(" ")
    return int(np.ceil(max(sum(font.getlength(w) for w, _ in line) + space * (len(line) - 1)
                           for line in lines)))


def _draw(
    rng: np.random.Generator, lines: list[list[tuple[str, str]]], font_name: str, size: int,
    rows: int, columns: int,
) -> tuple[tuple[Token, ...], tuple[int, int], npt.NDArray[np.float64]]:
    """Each word on its own layer at its place in the block; the block anywhere it fits.

    Returns the tokens, the block's corner and the coverage (0..1, anti-aliased edges kept) of
    all of them, which is how much of the text level each pixel takes."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415 - test-only dependency

    font = ImageFont.truetype(str(font_path(font_name)), size)
    space = font.getlength(" ")
    ascent, descent = font.getmetrics()
    pitch = round((ascent + descent) * 1.15)
    widths = [sum(font.getlength(w) for w, _ in line) + space * (len(line) - 1)
              for line in lines]
    block_w, block_h = int(np.ceil(max(widths))), pitch * len(lines)
    if block_w + 4 > columns:
        raise ValueError("banner wider than the image")
    x0 = int(rng.integers(2, max(columns - block_w - 2, 3)))
    y0 = int(rng.integers(2, max(rows - block_h - 2, 3)))
    tokens = []
    ink = np.zeros((rows, columns), dtype=np.float64)
    for index, line in enumerate(lines):
        x = float(x0)
        y = y0 + index * pitch
        for word, cls in line:
            layer = Image.new("L", (columns, rows), 0)
            ImageDraw.Draw(layer).text((x, y), word, fill=255, font=font)
            coverage = np.asarray(layer)
            tokens.append(Token(word, cls, index, coverage > 0))
            ink = np.maximum(ink, coverage / 255.0)
            x += font.getlength(word) + space
    return tuple(tokens), (x0, y0), ink


def _text_level(rng: np.random.Generator, condition: Condition) -> float:
    if condition.polarity == "light-on-dark":
        return float(rng.uniform(0.8, 1.0))
    return float(rng.uniform(0.0, 0.15))


def _background(
    rng: np.random.Generator, condition: Condition, rows: int, columns: int
) -> npt.NDArray[np.float64]:
    """0..1 display values of one frame, dark for light text and light for dark text."""
    if condition.background == "flat":
        level = rng.uniform(0.0, 0.25)
        base = np.full((rows, columns), level)
    elif condition.background == "speckle":
        base = np.clip(rng.gamma(2.0, 0.12, size=(rows, columns)), 0, 0.6)
    else:
        base = _anatomy(rng, rows, columns)
    if condition.polarity == "dark-on-light":
        base = 1.0 - base
    return np.asarray(base, dtype=np.float64)


def _anatomy(rng: np.random.Generator, rows: int, columns: int) -> npt.NDArray[np.float64]:
    """Smooth organ-like blobs modulated by speckle, 0..0.6: structure at every scale."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    field_ = np.zeros((rows, columns))
    for _ in range(int(rng.integers(3, 7))):
        cy, cx = rng.uniform(0, rows), rng.uniform(0, columns)
        sy, sx = rng.uniform(0.05, 0.3) * rows, rng.uniform(0.05, 0.3) * columns
        field_ += rng.uniform(0.3, 1.0) * np.exp(-(((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2))
    field_ = field_ / max(float(field_.max()), 1e-6)
    # Real speckle comes in grains a few pixels wide: noise drawn at half resolution, enlarged.
    grains = rng.gamma(4.0, 0.25, size=((rows + 1) // 2, (columns + 1) // 2))
    speckle = np.repeat(np.repeat(grains, 2, axis=0), 2, axis=1)[:rows, :columns]
    speckle = (speckle + np.roll(speckle, 1, axis=0) + np.roll(speckle, 1, axis=1)) / 3
    return np.clip(0.05 + 0.5 * field_ * speckle, 0, 0.6)


def _dataset(
    rng: np.random.Generator, condition: Condition, frames: list[npt.NDArray[np.float64]],
    p: _Patient, seed: int,
) -> Dataset:
    ds = Dataset()
    count = len(frames)
    modality = ("US", "US", "SC", "OT")[int(rng.integers(4))]
    if modality == "US":
        sop = UltrasoundMultiFrameImageStorage if count > 1 else UltrasoundImageStorage
    else:
        sop = SecondaryCaptureImageStorage
    uid = UID(f"1.2.826.0.1.3680043.8.498.7101.{_condition_index(condition)}.{seed}")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop, uid
    ds.StudyInstanceUID = f"{uid}.1"
    ds.SeriesInstanceUID = f"{uid}.2"
    ds.Modality = modality
    ds.PatientName = f"{p.family}^{p.given}"
    ds.PatientID = p.patient_id
    ds.PatientBirthDate = p.birth_date
    ds.AccessionNumber = p.accession
    ds.StudyDate = "20250611"
    # A claim the guard must not rely on: sometimes absent, sometimes wrong.
    claim = ("YES", "NO", None)[int(rng.integers(3))]
    if claim is not None:
        ds.BurnedInAnnotation = claim
    rows, columns = frames[0].shape
    ds.Rows, ds.Columns = rows, columns
    stack = np.stack(frames)
    colour = condition.photometric in ("RGB", "YBR_FULL")
    if colour:
        _colour_pixels(ds, rng, stack, condition)
    else:
        _grey_pixels(ds, rng, stack, condition)
    if count > 1:
        ds.NumberOfFrames = count
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = 33.3
    return ds


def _grey_pixels(
    ds: Dataset, rng: np.random.Generator, stack: npt.NDArray[np.float64], condition: Condition
) -> None:
    stored = 8 if condition.bits == 8 else (12, 16)[int(rng.integers(2))]
    top = (1 << stored) - 1
    values = np.rint(stack * top)
    if condition.photometric == "MONOCHROME1":  # stored bright = displayed dark
        values = top - values
    dtype = np.uint8 if condition.bits == 8 else np.uint16
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = condition.photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = condition.bits, stored, stored - 1
    ds.PixelRepresentation = 0
    if condition.bits == 16 and rng.integers(2):
        # A window covering the range the display values were scaled to, as a viewer shows it.
        ds.WindowCenter = f"{top / 2 + 0.5:.1f}"
        ds.WindowWidth = f"{top + 1}"
    ds.PixelData = np.ascontiguousarray(values.astype(dtype)).tobytes()


def _colour_pixels(
    ds: Dataset, rng: np.random.Generator, stack: npt.NDArray[np.float64], condition: Condition
) -> None:
    # Text and background take different tints, as device overlays do (yellow or green text).
    tint = np.array(((1.0, 1.0, 1.0), (1.0, 0.95, 0.4), (0.55, 1.0, 0.55),
                     (0.85, 0.9, 1.0))[int(rng.integers(4))])
    rgb = np.clip(stack[..., None] * tint, 0, 1)
    values = np.rint(rgb * 255).astype(np.uint8)
    if condition.photometric == "YBR_FULL":
        values = np.stack([convert_color_space(f, "RGB", "YBR_FULL") for f in values])
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = condition.photometric
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(values).tobytes()


def font_path(name: str) -> Path:
    """The TrueType file of ``name`` (a key of `FONTS`); `FileNotFoundError` names the package."""
    found = _font_files().get(FONTS[name])
    if found is None:
        raise FileNotFoundError(
            f"font {FONTS[name]} not found under {', '.join(_FONT_DIRS)}: install "
            "fonts-dejavu-core fonts-liberation fonts-freefont-ttf")
    return found


@lru_cache(maxsize=1)
def _font_files() -> dict[str, Path]:
    wanted = set(FONTS.values())
    out: dict[str, Path] = {}
    for folder in _FONT_DIRS:
        for path in _walk(Path(folder)):
            if path.name in wanted and path.name not in out:
                out[path.name] = path
    return out


def _walk(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from folder.rglob("*.ttf")
