"""Masks that cannot silently miss: a shape outside the image is refused, at load or at run time.

The oracle for "inside" is a ground-truth pixel map drawn pixel by pixel on a canvas larger than
any image tested, never `dcmwatch.pixels.geometry` itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dcmwatch import cli
from dcmwatch import config as config_mod
from dcmwatch.errors import ConfigError
from dcmwatch.pixels import MaskOutsideImageError, PixelRule, PixelSettings, render_preview
from tests.conftest import write_config

from ._support import decode, read, roundtrip, rule, step_for, synthetic

#: Three rules; the third pins 64 x 64 and its second rectangle reaches column 70.
RULES = """
[[rules]]
name = "any-size"
[[rules.actions]]
type = "mask"
rects = [[0, 0, 10, 10]]

[[rules]]
name = "us"
[rules.match]
Modality = "US"
[[rules.actions]]
type = "window"
center = 40
width = 400

[[rules]]
name = "device-64"
[rules.match]
Rows = 64
Columns = 64
[[rules.actions]]
type = "mask"
rects = [[0, 0, 64, 8], [60, 56, 10, 8]]
"""


def _load_error(tmp_path: Path, rules: str) -> str:
    with pytest.raises(ConfigError) as info:
        config_mod.load(write_config(tmp_path, rules))
    return str(info.value)


def _mask_rule(match: dict[str, Any], **mask: Any) -> dict[str, Any]:
    return {"name": "r", "match": match, "actions": [{"type": "mask", **mask}]}


def _locations(data: dict[str, Any]) -> list[tuple[int | str, ...]]:
    with pytest.raises(ValidationError) as info:
        PixelRule.model_validate(data)
    return [e["loc"] for e in info.value.errors(include_url=False)]


class TestConfigLoad:
    def test_rect_outside_the_matched_geometry_names_file_and_key(self, tmp_path: Path) -> None:
        """The error names the config file and rules[2].actions[0].rects[1], nothing else."""
        message = _load_error(tmp_path, RULES)
        assert message.startswith(f"{tmp_path / 'dcmwatch.toml'}: rules[2].actions[0].rects[1]: ")
        assert "Columns 64 x Rows 64" in message
        assert len(message.splitlines()) == 1

    def test_check_config_reports_it(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """check-config exits 2 with the same message and prints no configuration."""
        cfg = write_config(tmp_path, RULES)
        assert cli.main(["check-config", "--config", str(cfg)], env={}) == 2
        out, err = capsys.readouterr()
        assert "rules[2].actions[0].rects[1]" in err and str(cfg) in err
        assert out == ""

    def test_the_same_rule_inside_loads_and_check_config_passes(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Moved inside (x + width = Columns exactly), the configuration is accepted."""
        cfg = write_config(tmp_path, RULES.replace("[60, 56, 10, 8]", "[54, 56, 10, 8]"))
        assert cli.main(["check-config", "--config", str(cfg)], env={}) == 0
        assert json.loads(capsys.readouterr().out)["rules"][2]["name"] == "device-64"

    @pytest.mark.parametrize(
        ("match", "mask", "loc"),
        [
            ({"Rows": 480, "Columns": 640}, {"circles": [[630, 240, 20]]}, "circles"),
            ({"Rows": 480, "Columns": 640}, {"polygons": [[[0, 0], [641, 0], [0, 9]]]},
             "polygons"),
            ({"Rows": 480}, {"rects": [[0, 470, 5, 11]]}, "rects"),  # only Rows pinned
            ({"Rows": "480", "Columns": "640"}, {"rects": [[0, 470, 5, 11]]}, "rects"),
            ({"Rows": [480, 600], "Columns": 800}, {"rects": [[0, 500, 5, 5]]}, "rects"),
            ({"Rows": 100, "Columns": 400}, {"fractions": True, "circles": [[0.1, 0.5, 0.5]]},
             "circles"),
            ({}, {"circles": [[3, 50, 4]]}, "circles"),  # left of column 0 in every image
        ],
    )
    def test_every_shape_kind_is_checked(
        self, match: dict[str, Any], mask: dict[str, Any], loc: str
    ) -> None:
        """Circles, polygons, fraction circles; one pinned side; sizes as strings or lists."""
        assert _locations(_mask_rule(match, **mask)) == [("actions", 0, loc, 0)]

    @pytest.mark.parametrize(
        ("match", "mask"),
        [
            ({"Rows": 480, "Columns": 640}, {"rects": [[0, 0, 640, 480]]}),
            ({"Rows": 480, "Columns": 640}, {"circles": [[320, 240, 240]]}),
            ({"Rows": "4*", "Columns": 640}, {"rects": [[0, 470, 5, 20]]}),  # a glob: unknown
            ({"Modality": "US"}, {"rects": [[5000, 5000, 10, 10]]}),  # checked at run time
            ({"Rows": 100, "Columns": 400}, {"fractions": True, "circles": [[0.5, 0.5, 0.5]]}),
        ],
    )
    def test_what_may_fit_loads(self, match: dict[str, Any], mask: dict[str, Any]) -> None:
        """Shapes that fit, or whose image size the match does not pin, load."""
        PixelRule.model_validate(_mask_rule(match, **mask))

    def test_mask_file_against_the_match_names_the_file_key(self, tmp_path: Path) -> None:
        """A mask file whose shape contradicts the matched Rows is refused at ...file."""
        np.save(tmp_path / "m.npy", np.ones((8, 8), dtype=bool))
        message = _load_error(tmp_path, (
            '[[rules]]\nname = "f"\n[rules.match]\nRows = 9\n'
            '[[rules.actions]]\ntype = "mask"\nfile = "m.npy"\n'))
        assert "rules[0].actions[0].file: " in message and "Rows = [9]" in message


class TestRunTime:
    def test_preview_refuses_too(self) -> None:
        """`dcmwatch preview` shows what the daemon would do: refuse, naming the shape."""
        rules = [rule([{"type": "mask", "rects": [[0, 0, 8, 8]], "circles": [[120, 64, 10]]}])]
        with pytest.raises(MaskOutsideImageError, match=r"circles\[0\]"):
            render_preview(read("CT_small.dcm"), rules, PixelSettings())

    def test_keep_inside_region_outside_is_refused(self) -> None:
        """A field of view reaching past the image is refused like any other mask."""
        step = step_for([rule([{"type": "mask", "circles": [[70, 64, 64]], "keep_inside": True}])])
        with pytest.raises(MaskOutsideImageError):
            step(read("CT_small.dcm"))


#: Image sizes and rectangles overlapping them, reaching past them, or lying beyond them.
geometries = st.tuples(st.integers(1, 24), st.integers(1, 24))
rectangles = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(1, 30),
                       st.integers(1, 30))


def _ground_truth(rows: int, columns: int, rect: tuple[int, int, int, int]
                  ) -> tuple[bool, np.ndarray[Any, Any]]:
    """(whether every pixel of the rectangle exists in the image, the image's pixels it has),
    drawn pixel by pixel on a canvas larger than image and rectangle."""
    x, y, w, h = rect
    canvas = np.zeros((64, 64), dtype=bool)
    for r in range(y, y + h):
        for c in range(x, x + w):
            canvas[r, c] = True
    image = canvas[:rows, :columns]
    return int(image.sum()) == w * h, image


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(geometry=geometries, rect=rectangles)
    def test_config_load_accepts_iff_inside(
        self, geometry: tuple[int, int], rect: tuple[int, int, int, int]
    ) -> None:
        """With Rows and Columns pinned, a rectangle loads exactly when all its pixels exist."""
        rows, columns = geometry
        inside, _ = _ground_truth(rows, columns, rect)
        data = _mask_rule({"Rows": rows, "Columns": columns}, rects=[list(rect)])
        if inside:
            PixelRule.model_validate(data)
        else:
            assert _locations(data) == [("actions", 0, "rects", 0)]

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(geometry=geometries, rect=rectangles, seed=st.integers(0, 2**16))
    def test_run_time_accepts_iff_inside_and_fills_exactly(
        self, geometry: tuple[int, int], rect: tuple[int, int, int, int], seed: int
    ) -> None:
        """Unpinned, the image decides: outside raises mask_outside_image; inside, the fill
        lands on exactly the rectangle's pixels and every other pixel keeps its value."""
        rows, columns = geometry
        inside, truth = _ground_truth(rows, columns, rect)
        pixels = np.random.default_rng(seed).integers(1, 4096, (1, rows, columns, 1))
        ds = synthetic(pixels.astype(np.uint16), bits_stored=12)
        before = decode(ds)[0, :, :, 0]
        step = step_for([rule([{"type": "mask", "rects": [list(rect)], "fill": 0}])])
        if not inside:
            with pytest.raises(MaskOutsideImageError) as info:
                step(ds)
            assert info.value.reason == "mask_outside_image"
            return
        after = decode(roundtrip(step(ds)))[0, :, :, 0]
        assert np.array_equal(after == 0, truth)
        assert np.array_equal(after[~truth], before[~truth])
