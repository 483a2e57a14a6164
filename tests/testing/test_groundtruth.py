"""The ground-truth generator: deterministic, its maps mark exactly the pixels the text changed,
and its header carries the values its PHI tokens spell.

The pixel checks decode with pydicom's own ``pixel_array`` (not the guard's renderer): the maps
must agree with the stored bytes, whatever the guard later makes of them.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pydicom
import pytest
from pydicom.pixels.processing import convert_color_space

from dcmwatch.testing.groundtruth import (
    CONDITIONS,
    FONTS,
    PHI_CLASSES,
    SIZE_RANGE,
    Condition,
    font_path,
    make_case,
)
from dcmwatch.testing.synth import to_bytes


def _display(ds: pydicom.Dataset) -> np.ndarray:
    """Frames as 0..1 display values, decoded by pydicom from the written bytes."""
    ds = pydicom.dcmread(io.BytesIO(to_bytes(ds)))
    arr = ds.pixel_array.astype(np.float64)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames == 1:
        arr = arr[None]
    if ds.PhotometricInterpretation == "YBR_FULL":
        arr = np.stack([convert_color_space(f.astype(np.uint8), "YBR_FULL", "RGB") for f in arr])
        arr = arr.astype(np.float64)
    top = (1 << int(ds.BitsStored)) - 1
    arr = arr / top
    if ds.PhotometricInterpretation == "MONOCHROME1":
        arr = 1 - arr
    return arr


def _norm(text: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", text.upper())


class TestDeterminism:
    def test_same_seed_same_case(self) -> None:
        """A seed and a condition give byte-identical pixels and the same tokens."""
        a, b = make_case(3, CONDITIONS[7]), make_case(3, CONDITIONS[7])
        assert a.dataset.PixelData == b.dataset.PixelData
        assert [t.text for t in a.tokens] == [t.text for t in b.tokens]
        assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a.tokens, b.tokens, strict=True))

    def test_seeds_and_conditions_differ(self) -> None:
        """Different seeds give different patients and layouts."""
        ids = {make_case(s, CONDITIONS[0]).dataset.PatientID for s in range(8)}
        assert len(ids) == 8


class TestGroundTruth:
    @pytest.mark.parametrize("condition", CONDITIONS[:12:2] + CONDITIONS[12::5],
                             ids=lambda c: c.name)
    def test_maps_mark_the_pixels_the_text_changed(self, condition: Condition) -> None:
        """Against the same image drawn without text, the pixels that changed lie inside the
        union of the token maps, and nearly every map pixel changed (the few that did not are
        anti-aliased edges too faint to change a stored value)."""
        with_text = _display(make_case(11, condition).dataset)
        without = _display(make_case(11, condition, text=False).dataset)
        case = make_case(11, condition)
        changed = np.abs(with_text - without) > 1e-9
        if changed.ndim == 4:  # colour: any channel
            changed = changed.any(axis=-1)
        ink = case.text_mask()
        assert ink.any()
        for frame in changed:
            assert not (frame & ~ink).any()
            assert frame[ink].mean() > 0.8

    def test_token_maps_are_per_token(self) -> None:
        """Each token has glyph pixels of its own; maps of different tokens barely touch."""
        case = make_case(5, CONDITIONS[0])
        total = sum(int(t.mask.sum()) for t in case.tokens)
        union = int(case.text_mask().sum())
        assert all(t.mask.any() for t in case.tokens)
        assert union >= 0.97 * total

    def test_header_carries_what_the_phi_tokens_spell(self) -> None:
        """Name parts, ID, birth date and accession drawn are those of the header."""
        for seed in range(12):
            case = make_case(seed, CONDITIONS[seed % len(CONDITIONS)])
            ds = case.dataset
            by_class: dict[str, str] = {}
            for t in case.tokens:
                by_class[t.cls] = by_class.get(t.cls, "") + _norm(t.text)
            assert set(by_class) - {"text"} <= PHI_CLASSES
            family, given = str(ds.PatientName).split("^")
            assert by_class["patient_name"] in (family + given, given + family)
            assert by_class["patient_id"] == ds.PatientID
            year = ds.PatientBirthDate[:4]
            assert year in by_class["birth_date"]
            if "accession" in by_class:
                assert by_class["accession"] == ds.AccessionNumber

    def test_no_text_means_no_tokens(self) -> None:
        case = make_case(2, CONDITIONS[3], text=False)
        assert case.tokens == ()
        assert not case.phi_mask().any()


class TestVariety:
    def test_every_font_is_installed(self) -> None:
        """CI installs fonts-dejavu-core fonts-liberation fonts-freefont-ttf."""
        for name in FONTS:
            assert font_path(name).is_file()

    def test_cases_span_fonts_sizes_and_blocks(self) -> None:
        layouts = [make_case(s, c).layout for s in range(4) for c in CONDITIONS]
        assert all(layout is not None for layout in layouts)
        fonts = {x.font for x in layouts if x}
        sizes = [x.size for x in layouts if x]
        lines = {x.lines for x in layouts if x}
        assert fonts == set(FONTS)
        assert min(sizes) <= SIZE_RANGE[0] + 1
        assert max(sizes) >= SIZE_RANGE[1] - 1
        assert 1 in lines
        assert max(lines) >= 3

    def test_every_format_is_produced(self) -> None:
        seen = set()
        for c in CONDITIONS:
            ds = make_case(0, c).dataset
            seen.add((ds.PhotometricInterpretation, int(ds.BitsAllocated),
                      int(ds.get("NumberOfFrames", 1) or 1) > 1))
        assert {p for p, _, _ in seen} == {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL"}
        assert {b for _, b, _ in seen} == {8, 16}
        assert {m for _, _, m in seen} == {True, False}
