"""docs/configuration.md is generated from the configuration models: it must be what the generator
renders today, describe every key, and show defaults the loader really accepts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dcmwatch import config as config_mod
from dcmwatch import docs_config

PAGE = Path(__file__).parents[1] / "docs" / "configuration.md"
_SECTION = re.compile(r"^## `\[(\w+)\]`$")
_ROW = re.compile(r"^\| `(\w+)` \| (.*?) \| (.*?) \| (.*?) \| (.*) \|$")


def test_the_committed_page_is_what_the_models_render() -> None:
    """Regenerate and compare: a key added, removed or re-described without
    `python -m dcmwatch.docs_config > docs/configuration.md` fails here."""
    assert PAGE.read_text(encoding="utf-8") == docs_config.render(), (
        "docs/configuration.md is stale: run `python -m dcmwatch.docs_config > "
        "docs/configuration.md` and commit it"
    )


def test_the_module_prints_the_page() -> None:
    """The command the page's header names is the one that writes it."""
    out = subprocess.run([sys.executable, "-m", "dcmwatch.docs_config"], capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout == PAGE.read_text(encoding="utf-8")


def test_every_key_has_a_description() -> None:
    """A key documented by its name alone tells an operator nothing."""
    bare = [f"{k.table} {k.name}" for k in docs_config.all_keys() if not k.description.strip()]
    assert bare == []


def test_every_model_key_is_on_the_page() -> None:
    """Walk the model independently of the generator: each section's keys appear in its table."""
    documented = _page_rows()
    for name, field in config_mod.Config.model_fields.items():
        if field.exclude or name == "rules":
            continue
        model = field.annotation
        assert isinstance(model, type)
        expected = {k for k, f in model.model_fields.items() if not f.exclude}
        if name == "pixels":
            expected.discard("max_pixel_bytes")  # refused in TOML: limits.max_pixel_bytes
        assert set(documented[name]) == expected, name


def _page_rows() -> dict[str, dict[str, str]]:
    """``{section: {key: default cell}}`` for each `[section]` table of the page."""
    rows: dict[str, dict[str, str]] = {}
    section = None
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        m = _SECTION.match(line)
        if m:
            section = m.group(1)
            rows[section] = {}
            continue
        if line.startswith("#"):
            section = None
        r = _ROW.match(line)
        if r and section is not None:
            rows[section][r.group(1)] = r.group(3)
    return rows


@pytest.mark.parametrize("section", ["watch", "workers", "queue", "output", "limits", "log",
                                     "schedule", "metrics", "deid", "pixels", "ocr"])
def test_documented_defaults_load_as_the_defaults(section: str, tmp_path: Path) -> None:
    """Each default the page shows, pasted into a config file as written, is accepted by the
    loader and equals what an empty file gives: the page's values are real TOML, not prose."""
    rows = _page_rows()[section]
    assert rows
    empty = config_mod.parse("", source="empty.toml", base=tmp_path)
    lines = [f"[{section}]"]
    for key, default in rows.items():
        m = re.fullmatch(r"`(.*)`(?: \(\d+ [GM]iB\))?", default)
        if m:
            lines.append(f"{key} = {m.group(1)}")
    assert len(lines) > 1
    loaded = config_mod.parse("\n".join(lines) + "\n", source="page.toml", base=tmp_path)
    assert getattr(loaded, section) == getattr(empty, section)
