"""Masks loaded from .npy and PNG files: read and checked once at config load, exact at run."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcmwatch import config as config_mod
from dcmwatch.errors import ConfigError, TransformError
from dcmwatch.pixels import MaskGeometryError, PixelSettings
from dcmwatch.pixels.maskfile import pack, unpack
from dcmwatch.pixels.settings import MaskAction

from ._support import decode, roundtrip, step_for, synthetic

ROWS, COLUMNS = 12, 16


def _bitmap() -> np.ndarray:
    """An irregular shape: a triangle plus one lone pixel."""
    bitmap = np.tri(ROWS, COLUMNS, -4, dtype=bool)
    bitmap[0, COLUMNS - 1] = True
    return bitmap


def _config(root: Path, file: str, match: str = "") -> config_mod.Config:
    cfg = root / "site.toml"
    cfg.write_text(
        '[[rules]]\nname = "us"\n'
        + (f"[rules.match]\n{match}\n" if match else "")
        + f'[[rules.actions]]\ntype = "mask"\nfile = "{file}"\nfill = 7\n'
    )
    return config_mod.load(cfg)


def _image(rows: int = ROWS, columns: int = COLUMNS) -> object:
    pixels = np.arange(rows * columns, dtype=np.uint16).reshape(1, rows, columns, 1) + 100
    return synthetic(pixels, bits_stored=12)


def _write_png(path: Path, array: np.ndarray, mode: str = "L") -> None:
    Image.fromarray(array).convert(mode).save(path, format="PNG")


class TestLoad:
    @pytest.mark.parametrize("kind", ["png-L", "png-1", "png-RGB", "npy-bool", "npy-uint8"])
    def test_formats_load_to_the_same_bitmap(self, kind: str, tmp_path: Path) -> None:
        """Paths are relative to the config file; every format gives the painted pixels."""
        folder = tmp_path / "masks"
        folder.mkdir()
        bitmap = _bitmap()
        if kind.startswith("png"):
            name = "us.png"
            _write_png(folder / name, bitmap.astype(np.uint8) * 255, kind.split("-")[1])
        else:
            name = "us.npy"
            np.save(folder / name, bitmap if kind == "npy-bool" else bitmap.astype(np.uint8))
        config = _config(tmp_path, f"masks/{name}")
        action = config.rules[0].actions[0]
        assert isinstance(action, MaskAction) and action.file is not None
        assert (action.file.rows, action.file.columns) == (ROWS, COLUMNS)
        assert np.array_equal(action.file.bitmap(), bitmap)
        assert action.file.path == str(folder / name)

    def test_config_pickles_and_dumps_the_path(self, tmp_path: Path) -> None:
        """The mask travels with the config to workers; check-config shows the path only."""
        np.save(tmp_path / "m.npy", _bitmap())
        config = _config(tmp_path, "m.npy")
        again = pickle.loads(pickle.dumps(config))
        assert again == config and hash(again.rules) == hash(config.rules)
        dumped = config_mod.effective(config)["rules"][0]["actions"][0]
        assert dumped["file"] == str(tmp_path / "m.npy")

    def test_pack_roundtrip(self) -> None:
        bitmap = np.random.default_rng(1).random((7, 13)) > 0.5
        assert np.array_equal(unpack(pack(bitmap), 7, 13), bitmap)


class TestLoadErrors:
    """Every unusable mask file is a ConfigError naming the config file, the key and the mask."""

    def _error(self, tmp_path: Path, file: str, match: str = "") -> str:
        with pytest.raises(ConfigError) as info:
            _config(tmp_path, file, match)
        message = str(info.value)
        assert message.startswith(f"{tmp_path / 'site.toml'}: rules[0].actions[0].mask")
        return message

    def test_missing(self, tmp_path: Path) -> None:
        message = self._error(tmp_path, "masks/none.png")
        assert "mask.file" in message and "none.png" in message and "No such file" in message

    def test_not_two_dimensional(self, tmp_path: Path) -> None:
        np.save(tmp_path / "m.npy", np.ones((2, 3, 4), dtype=bool))
        assert "2-D" in self._error(tmp_path, "m.npy")

    def test_not_binary(self, tmp_path: Path) -> None:
        _write_png(tmp_path / "m.png", np.arange(ROWS * COLUMNS, dtype=np.uint8).reshape(ROWS, -1))
        assert "not binary" in self._error(tmp_path, "m.png")

    def test_nonzero_pair_is_not_binary(self, tmp_path: Path) -> None:
        np.save(tmp_path / "m.npy", np.full((4, 4), 3, dtype=np.uint8) - np.eye(4, dtype=np.uint8))
        assert "not binary" in self._error(tmp_path, "m.npy")

    def test_empty(self, tmp_path: Path) -> None:
        np.save(tmp_path / "m.npy", np.zeros((4, 4), dtype=np.uint8))
        assert "covers no pixel" in self._error(tmp_path, "m.npy")

    def test_unreadable_png(self, tmp_path: Path) -> None:
        (tmp_path / "m.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        assert "m.png" in self._error(tmp_path, "m.png")

    def test_pickled_npy_is_refused(self, tmp_path: Path) -> None:
        np.save(tmp_path / "m.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        assert "m.npy" in self._error(tmp_path, "m.npy")

    def test_other_suffix(self, tmp_path: Path) -> None:
        (tmp_path / "m.bmp").write_bytes(b"BM")
        assert ".npy or .png" in self._error(tmp_path, "m.bmp")

    def test_match_names_another_geometry(self, tmp_path: Path) -> None:
        np.save(tmp_path / "m.npy", _bitmap())
        with pytest.raises(ConfigError) as info:
            _config(tmp_path, "m.npy", f"Rows = {ROWS + 1}")
        assert "rules[0].actions" in str(info.value) and "Rows" in str(info.value)

    def test_match_with_the_geometry_is_fine(self, tmp_path: Path) -> None:
        np.save(tmp_path / "m.npy", _bitmap())
        config = _config(tmp_path, "m.npy", f"Rows = {ROWS}\nColumns = [{COLUMNS}, 99]")
        assert config.rules[0].match["Rows"] == ROWS


class TestApply:
    def test_fill_inside_exact_outside(self, tmp_path: Path) -> None:
        """The painted pixels get the fill, every other pixel keeps its value; the file is
        not needed at run time (the pure core never opens it)."""
        _write_png(tmp_path / "m.png", _bitmap().astype(np.uint8) * 255)
        config = _config(tmp_path, "m.png")
        (tmp_path / "m.png").unlink()
        ds = _image()
        before = decode(ds)
        out = roundtrip(step_for(config.rules)(ds))
        after = decode(out)[0, :, :, 0]
        bitmap = _bitmap()
        assert (after[bitmap] == 7).all()
        assert np.array_equal(after[~bitmap], before[0, :, :, 0][~bitmap])
        assert out.BurnedInAnnotation == "NO"

    def test_file_joins_the_shapes(self, tmp_path: Path) -> None:
        np.save(tmp_path / "m.npy", _bitmap())
        cfg = tmp_path / "site.toml"
        cfg.write_text('[[rules]]\nname = "u"\n[[rules.actions]]\ntype = "mask"\n'
                       'file = "m.npy"\nrects = [[10, 10, 2, 2]]\nfill = 7\n')
        after = decode(roundtrip(step_for(config_mod.load(cfg).rules)(_image())))[0, :, :, 0]
        assert (after[_bitmap()] == 7).all() and (after[10:12, 10:12] == 7).all()

    @pytest.mark.parametrize(("rows", "columns"), [(ROWS, COLUMNS + 1), (ROWS + 1, COLUMNS)])
    def test_other_geometry_is_quarantined(self, tmp_path: Path, rows: int, columns: int) -> None:
        """An image of another size: TransformError with reason mask_geometry, never unmasked."""
        np.save(tmp_path / "m.npy", _bitmap())
        step = step_for(_config(tmp_path, "m.npy").rules, PixelSettings())
        with pytest.raises(MaskGeometryError) as info:
            step(_image(rows, columns))
        assert isinstance(info.value, TransformError)
        assert info.value.reason == "mask_geometry"
        assert f"{rows} x {columns}" in str(info.value)

    def test_one_rule_per_geometry(self, tmp_path: Path) -> None:
        """Several geometries of one device: one rule each, chosen by Rows/Columns."""
        np.save(tmp_path / "small.npy", _bitmap())
        np.save(tmp_path / "big.npy", np.ones((ROWS + 2, COLUMNS), dtype=bool))
        cfg = tmp_path / "site.toml"
        cfg.write_text(
            f'[[rules]]\nname = "small"\n[rules.match]\nRows = {ROWS}\n'
            '[[rules.actions]]\ntype = "mask"\nfile = "small.npy"\nfill = 7\n'
            f'[[rules]]\nname = "big"\n[rules.match]\nRows = {ROWS + 2}\n'
            '[[rules.actions]]\ntype = "mask"\nfile = "big.npy"\nfill = 9\n'
        )
        step = step_for(config_mod.load(cfg).rules)
        assert (decode(roundtrip(step(_image(ROWS + 2))))[0] == 9).all()
        assert (decode(roundtrip(step(_image())))[0, :, :, 0][_bitmap()] == 7).all()
