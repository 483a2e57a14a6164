"""The commented example rules in config/dcmwatch.toml are valid when uncommented."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from dcmwatch import config as config_mod
from dcmwatch.pixels import MaskAction

EXAMPLE = Path(__file__).parents[1] / "config" / "dcmwatch.toml"


def test_example_rules_parse(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    block = re.search(r"# --- example rules ---\n(.*?)# --- end of example rules ---", text, re.S)
    assert block is not None
    rules = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#")
                      for line in block.group(1).splitlines())
    (tmp_path / "masks").mkdir()
    painted = np.zeros((600, 800), dtype=np.uint8)
    painted[:40, :200] = 255
    Image.fromarray(painted).save(tmp_path / "masks" / "us-800x600.png")
    cfg = tmp_path / "site.toml"
    cfg.write_text(rules)
    config = config_mod.load(cfg)
    assert [r.name for r in config.rules] == ["ct-scanner-a", "us-device-800x600"]
    mask = config.rules[1].actions[0]
    assert isinstance(mask, MaskAction) and mask.file is not None
    assert (mask.file.rows, mask.file.columns) == (600, 800)
