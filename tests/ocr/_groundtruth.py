"""The redaction oracle: which patient-data tokens an output still shows, by ground truth.

Never OCR. The generator (`dcmwatch.testing.groundtruth`) knows which pixels carry each token;
pydicom (not the guard's renderer) decodes the input and the output. A glyph pixel is *kept*
when its stored value in the output equals the input's and a pixel next to it that carries no
glyph is unchanged too: the stroke still stands against its own background. A filled region
keeps nothing, even where the fill happens to equal the text's value (dark text, darkest fill):
the background around the stroke changed, so there is no contrast left to read. A token is
readable when it keeps half of its glyph pixels or more, on any frame.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset

from dcmwatch.testing.groundtruth import Case
from dcmwatch.testing.synth import to_bytes

#: Token classes a redaction must remove (the issue's: name, ID, birth date).
MUST_GO = frozenset({"patient_name", "patient_id", "birth_date"})
#: A token keeping at least this share of its glyph pixels is readable.
READABLE = 0.5
#: Distance (pixels) within which a stroke's background is looked for.
_REACH = 2


def frames_of(ds: Dataset) -> npt.NDArray[np.int64]:
    """(frames, rows, columns, samples) stored values, decoded by pydicom from written bytes."""
    again = pydicom.dcmread(io.BytesIO(to_bytes(ds)))
    arr = np.asarray(again.pixel_array, dtype=np.int64)
    samples = int(again.SamplesPerPixel)
    frames = int(again.get("NumberOfFrames", 1) or 1)
    return arr.reshape(frames, int(again.Rows), int(again.Columns), samples)


def kept_shares(case: Case, output: Dataset) -> list[tuple[str, float]]:
    """(class, share of glyph pixels kept on its worst frame) of each token that must go."""
    before = frames_of(case.dataset)
    after = frames_of(output)
    unchanged = np.all(before == after, axis=-1)  # (frames, rows, columns)
    ink = case.text_mask()
    out = []
    for token in case.tokens:
        if token.cls not in MUST_GO or not token.mask.any():
            continue
        worst = 0.0
        for same in unchanged:
            background_kept = _near(same & ~ink)
            kept = token.mask & same & background_kept
            worst = max(worst, float(kept.sum()) / float(token.mask.sum()))
        out.append((token.cls, worst))
    return out


def readable(case: Case, output: Dataset) -> list[str]:
    """Classes of the tokens that must go and are still readable in ``output``."""
    return [cls for cls, share in kept_shares(case, output) if share >= READABLE]


def _near(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Pixels within `_REACH` (Chebyshev) of a True pixel of ``mask``."""
    rows, columns = mask.shape
    padded = np.pad(mask, _REACH)
    out = np.zeros_like(mask)
    for dy in range(2 * _REACH + 1):
        for dx in range(2 * _REACH + 1):
            out |= padded[dy : dy + rows, dx : dx + columns]
    return out
