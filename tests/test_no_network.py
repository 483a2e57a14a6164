"""The tests never reach for the network: pydicom's test data is named exactly or listed from
its bundled folder, never looked up with a wildcard (which tries to download)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent
LOOKUP = re.compile(r"get_testdata_files\s*\(")


def test_no_test_looks_up_pydicom_data_with_a_wildcard() -> None:
    """No test module calls `get_testdata_files` (every call takes a pattern)."""
    offenders = [str(p.relative_to(TESTS)) for p in sorted(TESTS.rglob("*.py"))
                 if p.name != Path(__file__).name and LOOKUP.search(p.read_text())]
    assert offenders == []
