"""The jq recipes of docs/monitoring.md ("Watching it"), run as written against a real daemon's
log: the journalctl block on journald-shaped lines, the log-file block on the `[log] file` the
daemon wrote. Each question with an answer in that log (quarantines, throughput, reasons,
timings, the last heartbeat) must get one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dcmwatch.testing import write_series
from tests.conftest import DaemonProcess, write_config

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq, which the recipes use"),
]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"
#: The recipes whose events a short run has: all but the pauses for disk space and maintenance.
ANSWERED = 5


def _blocks() -> tuple[list[str], list[str]]:
    """The journalctl recipes and the log-file recipes, one command each."""
    text = PAGE.read_text()
    start = text.index("## Watching it")
    section = text[start:text.index("\n## ", start + 1)]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    journal = [line for b in blocks for line in b.splitlines() if line.startswith("journalctl")]
    files = [line for b in blocks for line in b.splitlines() if line.startswith("jq ")]
    return journal, files


def _run(command: str, env: dict[str, str]) -> str:
    res = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True,
                         text=True, timeout=60, check=False, env=env)
    assert res.returncode == 0, (command, res.stderr)
    return res.stdout.strip()


def test_the_jq_recipes_answer_from_a_real_log(tmp_path: Path) -> None:
    """Both blocks as written: every recipe runs, and each with events in the log answers."""
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("[log]\n", '[log]\nfile = "dcmwatch.log"\n'))
    d = DaemonProcess(cfg, tmp_path)
    try:
        d.start()
        for f in write_series(tmp_path / "src", 2, rows=16, columns=16):
            f.rename(d.inbox / f.name)
        (tmp_path / "junk.dcm").write_bytes(b"junk" * 64)
        (tmp_path / "junk.dcm").rename(d.inbox / "junk.dcm")
        d.wait_event("file.processed", count=2)
        d.wait_event("file.quarantined")
        d.wait_event("heartbeat", where=lambda e: e.get("processed", 0) >= 2)
        assert d.stop() == 0
    finally:
        d.kill()
    log = tmp_path / "dcmwatch.log"
    # What `journalctl -o json` prints: each line an entry whose MESSAGE is the line, and a
    # line that is no event (a crash report) for `fromjson?` to skip.
    journald = tmp_path / "journal.json"
    lines = [*log.read_text().splitlines(), "Traceback (most recent call last):"]
    journald.write_text("".join(json.dumps({"MESSAGE": line}) + "\n" for line in lines))

    journal_recipes, file_recipes = _blocks()
    assert len(journal_recipes) == len(file_recipes) == ANSWERED + 1
    env = {"PATH": "/usr/bin:/bin", "LOG": str(log)}
    for i, command in enumerate(journal_recipes):
        out = _run(re.sub(r"^journalctl [^|]*\|", f"cat {journald} |", command), env)
        assert out or i >= ANSWERED, command
    for i, command in enumerate(file_recipes):
        out = _run(command, env)
        assert out or i >= ANSWERED, command
    assert "not_dicom" in _run(file_recipes[2], env)
