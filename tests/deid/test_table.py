"""The committed table is exactly what the generator makes of the standard's data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dcmwatch.deid import table

_ROOT = Path(__file__).resolve().parents[2]
_SOURCE = Path("/work/shared/reference/ps315_annex_e_2024e.json")


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_annex_e", _ROOT / "tools" / "gen_annex_e.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not _SOURCE.exists(), reason="the Annex E JSON is not on this machine")
def test_committed_table_matches_the_generator() -> None:
    """Regenerating from the JSON gives the committed file byte for byte (no hand edits)."""
    entries = json.loads(_SOURCE.read_text(encoding="utf-8"))
    text = _generator().render(entries, "2024e", str(_SOURCE))
    assert text == (_ROOT / "dcmwatch" / "deid" / "table.py").read_text(encoding="utf-8")
    assert len(table.TABLE) + len(table.REPEATING) + 1 == len(entries)


def test_table_shape() -> None:
    assert table.EDITION == "2024e"
    assert table.TABLE[0x00100010][0] == "Z"  # Patient's Name (a pseudonym in dcmwatch)
    assert table.TABLE[0x0020000D] == ("U", (("retain_uids", "K"),))  # Study Instance UID
    assert table.PRIVATE == ("X", (("retain_safe_private", "C"),))
    masks = {(m, v) for m, v, _ in table.REPEATING}
    assert masks == {(0xFF000000, 0x50000000), (0xFF00FFFF, 0x60003000), (0xFF00FFFF, 0x60004000)}
