"""Detection on images the guard was not tuned on: the independent ground-truth generator.

`dcmwatch.testing.groundtruth` draws with system fonts (DejaVu, Liberation, FreeFont), 12-28 px,
over flat, speckle and anatomy-like backgrounds, in both polarities and every pixel format. One
image per condition (36 per engine, seeds not chosen by result) goes through the pipeline's real
entry point with the default ``[ocr]`` settings: detected means quarantined for burned-in text.
Before the preprocessing views, text over speckle was missed in most images.

The same backgrounds without text must not be quarantined: a guard that fires on everything
is no guard. The full per-condition table is `benchmarks/bench_ocr.py`'s.
"""

from __future__ import annotations

import pytest

from dcmwatch.errors import InputError
from dcmwatch.ocr.errors import BurnedInTextError
from dcmwatch.pipeline import process_bytes
from dcmwatch.testing.groundtruth import CONDITIONS, make_case
from dcmwatch.testing.synth import to_bytes

from ._support import ENGINES, make_config

#: Seeds of the sample: fixed, and not the ones the preprocessing was developed on (0-9).
SEED = 1000


def _quarantined(data: bytes, engine: str) -> bool:
    try:
        process_bytes(data, make_config(engine))
    except BurnedInTextError:
        return True
    except InputError as exc:  # a timeout or an engine failure is not a detection
        pytest.fail(f"quarantined for {exc.reason}, not for text")
    return False


@pytest.mark.parametrize("engine", ENGINES)
def test_every_condition_is_detected(engine: str) -> None:
    """Each background x polarity x pixel format: the banner's image is quarantined. One image
    per condition keeps this under a minute per engine, so a single miss among the 36 is
    tolerated (a thin mono font over pixel-sized speckle is the known weak spot; the bench's
    table holds the rates). Before the cleaned views, ten or more were missed."""
    missed = []
    for i, condition in enumerate(CONDITIONS):
        case = make_case(SEED + i, condition)
        if not _quarantined(to_bytes(case.dataset), engine):
            assert case.layout is not None
            missed.append(f"{condition.name} ({case.layout.font} {case.layout.size} px)")
    assert len(missed) <= 1, missed


@pytest.mark.parametrize("engine", ENGINES)
def test_text_free_backgrounds_are_not_quarantined(engine: str) -> None:
    """Flat, speckle and anatomy-like frames of both polarities, without text, pass."""
    kinds = {(c.background, c.polarity): c for c in CONDITIONS}
    fired = [
        c.name for i, c in enumerate(kinds.values())
        if _quarantined(to_bytes(make_case(SEED + i, c, text=False).dataset), engine)
    ]
    assert fired == []
