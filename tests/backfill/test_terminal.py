"""`dcmwatch process` at a real terminal (tmux, read back as a person sees it): the bar, each
quarantine as one readable line above it, no JSON, and a summary table at the end."""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcmwatch.testing import write_series
from tests.conftest import write_config

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="needs tmux: a real terminal to read the screen from")

WHEN = r"\d\d:\d\d:\d\d"


def _screen_after(command: str, cwd: Path, timeout: float = 90.0) -> str:
    """Run `command` in a detached 160x50 tmux session; the whole screen and scrollback once
    it printed its exit code."""
    sock = f"dcmwatch-test-{secrets.token_hex(4)}"
    tmux = ["tmux", "-L", sock]
    script = f"cd {shlex.quote(str(cwd))} && {command}; echo DONE-EXIT=$?; sleep 600"
    subprocess.run([*tmux, "new-session", "-d", "-x", "160", "-y", "50", script], check=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-S", "-500"],
                                    capture_output=True, text=True, check=True).stdout
            if "DONE-EXIT=" in screen or time.monotonic() > deadline:
                return screen
            time.sleep(0.3)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)


def test_process_on_a_terminal_shows_bar_lines_and_summary(tmp_path: Path) -> None:
    """Quarantines are whole lines of their own (not glued to the bar), no JSON reaches the
    screen, and the run ends with a table: processed, quarantined by reason, failed, files/s."""
    cfg = write_config(tmp_path)
    src = tmp_path / "src"
    write_series(src, 6, rows=16, columns=16)
    for i in range(3):
        (src / f"junk{i}.dcm").write_bytes(b"junk" * 50)
    command = shlex.join([sys.executable, "-m", "dcmwatch", "process", "--config", str(cfg),
                          str(src)])
    screen = _screen_after(command, tmp_path)
    lines = screen.splitlines()
    assert "DONE-EXIT=1" in screen, screen
    assert not [ln for ln in lines if '{"' in ln], screen
    quarantined = [ln for ln in lines if "file.quarantined" in ln]
    assert len(quarantined) == 3, screen
    assert all(re.match(rf"{WHEN} warning +file\.quarantined .*reason=not_dicom", ln)
               for ln in quarantined), quarantined

    def row(name: str) -> str:
        found = [ln for ln in lines if re.search(rf"│ *{re.escape(name)} *│", ln)]
        assert len(found) == 1, (name, screen)
        return found[0].split("│")[2].strip()

    assert row("processed") == "6"
    assert row("quarantined") == "3"
    assert row("not_dicom") == "3"
    assert row("failed") == "0"
    assert float(row("files/s")) > 0


def test_a_line_after_the_bar_closed_still_reaches_the_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A run that aborts after its bar closed (Driver.run's finally) must still say why: the
    abort line goes to the same terminal, not nowhere."""
    from dcmwatch.backfill.report import Reporter

    reporter = Reporter(None, bar=True)
    reporter.close()
    reporter.show("backfill.aborted reason=engine")
    assert "backfill.aborted reason=engine" in capsys.readouterr().err
