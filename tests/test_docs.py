"""The README and the docs site say what is true: the README stays short and its examples load,
the Debian packages it names are the ones CI installs, every test file the Guarantees page names
exists, the preview images are rendered by the preview code, and the site builds strictly."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dcmwatch import config as config_mod

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: The issue's bound: a newcomer reads the README in ten minutes, then the docs take over.
README_MAX_BYTES = 12_000


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _site_config(page: Path) -> str:
    section = _text(page).split("## A site: two devices, one inbox", 1)[1]
    m = re.search(r"```toml\n(.*?)```", section, flags=re.S)
    assert m is not None, page
    return m.group(1)


def test_readme_is_short() -> None:
    assert len(README.read_bytes()) <= README_MAX_BYTES


def test_readme_keeps_the_two_quick_start_commands() -> None:
    """The daemon on its embedded default, and the tests: the two commands a newcomer types."""
    text = _text(README)
    assert re.search(r"^pip install \. && dcmwatch run\s", text, re.M)
    assert re.search(r"^pip install -e '\.\[test\]' && python -m pytest\s", text, re.M)


def test_readme_names_the_debian_packages_ci_installs() -> None:
    """The README's apt-get line and .ci/run's package list are the same set."""
    ci = _text(ROOT / ".ci" / "run")
    block = re.search(r"packages=\((.*?)\n\s*\)", ci, flags=re.S)
    assert block is not None
    installed = {word for line in block.group(1).splitlines()
                 for word in line.split("#")[0].split()}
    readme = re.search(r"sudo apt-get install (.*?)\n```", _text(README), flags=re.S)
    assert readme is not None
    named = set(shlex.split(readme.group(1).replace("\\\n", " ")))
    assert named == installed


def test_the_site_config_loads_and_is_the_same_on_both_pages(tmp_path: Path) -> None:
    """README and Getting started show one configuration, and `check-config` would pass it."""
    text = _site_config(README)
    assert text == _site_config(DOCS / "getting-started.md")
    cfg = tmp_path / "site.toml"
    cfg.write_text(text)
    config = config_mod.load(cfg)
    assert [r.name for r in config.rules] == ["ct-main", "us-cardio"]
    assert config.pixels.burned_in_annotation == "require-mask"
    res = subprocess.run([sys.executable, "-m", "dcmwatch", "check-config", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert res.returncode == 0, res.stderr


def test_readme_links_into_docs_exist() -> None:
    links = re.findall(r"\]\((docs/[^)#]+)", _text(README))
    assert len(links) >= 10
    missing = [link for link in links if not (ROOT / link).is_file()]
    assert missing == []


_TEST_REF = re.compile(r"`((?:tests/[\w/]+\.py|…)(?:::[\w:]+)?)")


def test_every_test_the_guarantees_page_names_exists() -> None:
    """Each `tests/...py` exists, and each `::Class::test` in it (`…` means the file of the
    reference before) is defined there."""
    refs = _TEST_REF.findall(_text(DOCS / "guarantees.md"))
    assert len(refs) >= 40
    current: Path | None = None
    missing = []
    for ref in refs:
        path, _, names = ref.partition("::")
        if path != "…":
            current = ROOT / path
        assert current is not None, ref
        if not current.is_file():
            missing.append(ref)
            continue
        source = _text(current)
        missing += [f"{ref} ({name})" for name in names.split("::") if name
                    and not re.search(rf"^\s*(?:def|class) {re.escape(name)}\b", source, re.M)]
    assert missing == []


def _previews() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_pixel_previews", ROOT / "tools" / "gen_pixel_previews.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_preview_script_renders_every_image_the_page_shows(tmp_path: Path) -> None:
    """The script runs `dcmwatch preview` on synthetic data; each image the pixel-rules page
    shows is one it writes (and is committed), and the masked ones carry the red outline."""
    from PIL import Image

    written = {p.name: p for p in _previews().render(tmp_path)}
    shown = re.findall(r"\]\(img/pixels/([\w-]+\.png)\)", _text(DOCS / "pixel-rules.md"))
    assert shown and set(shown) == set(written)
    for name in shown:
        assert (DOCS / "img" / "pixels" / name).is_file(), name
        with Image.open(written[name]) as fresh, Image.open(DOCS / "img" / "pixels" / name) as kept:
            assert fresh.size == kept.size
            red = (255, 0, 0) in {c for _, c in fresh.convert("RGB").getcolors(1 << 24) or []}
        assert red == ("mask" in name or "rules" in name), name


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="needs the docs extra (pip install -e '.[docs]')")
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """What CI runs: a broken link, an unknown anchor or a page left out of the nav fails."""
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                          "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=False,
                         env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").is_file()
