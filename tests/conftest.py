"""Shared fixtures: configurations on temporary folders, and the daemon as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property tests assert behaviour, not speed: no per-example deadline (a loaded CI machine would
# turn a slow example into a flaky failure); speed targets live in benchmarks/.
settings.register_profile("dcmwatch", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("dcmwatch")

KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def write_config(root: Path, extra: str = "") -> Path:
    """A config for a test: its folders under `root`, a fixed key, fast timings."""
    key = root / "secret.key"
    key.write_text(KEY_HEX + "\n")
    key.chmod(0o600)
    cfg = root / "dcmwatch.toml"
    cfg.write_text(
        f"""
[paths]
inbox = "inbox"
outbox = "outbox"
quarantine = "quarantine"
state = "state"

[watch]
settle_seconds = 1.0

[workers]
count = 2

[log]
format = "json"
level = "debug"

[schedule]
rescan_seconds = 5
heartbeat_seconds = 2

[deid]
key_file = "secret.key"
{extra}
"""
    )
    return cfg


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path)


class DaemonProcess:
    """`python -m dcmwatch run` on a test's folders, with its JSON log lines at hand."""

    def __init__(self, config: Path, root: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.root = root
        #: Added to the daemon's environment (NOTIFY_SOCKET, WATCHDOG_USEC …).
        self.extra_env = env or {}
        self.inbox = root / "inbox"
        self.outbox = root / "outbox"
        self.quarantine = root / "quarantine"
        self.state = root / "state"
        self.log_path = root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_fh: Any = None

    def start(self, wait_ready: bool = True) -> DaemonProcess:
        # A restart appends to the same log: readiness is this run's, not the last one's.
        before = self.mark()
        self._log_fh = self.log_path.open("ab")
        systemd = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DCMWATCH") and k not in systemd}
        env.update(self.extra_env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dcmwatch", "run", "--config", str(self.config)],
            stdout=self._log_fh, stderr=self._log_fh, cwd=self.root, env=env,
        )
        if wait_ready:
            self.wait_event("daemon.started", timeout=30, after=before)
            self.wait_event("inbox.rescan", timeout=30, after=before)
        return self

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"event": "<not json>", "line": line})
        return out

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def mark(self) -> int:
        """How many log lines there are now: `wait_event(after=...)` then looks only later.

        Events from the daemon's threads are not ordered with what the test did unless the test
        waited for them: a heartbeat that satisfies a predicate may predate the test's last
        step, so a test that asserts on "the next" event marks the log first.
        """
        return len(self.events()) if self.log_path.exists() else 0

    def wait_event(self, name: str, *, count: int = 1, timeout: float = 20.0,
                   where: Callable[[dict[str, Any]], bool] = lambda e: True,
                   after: int = 0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            got = [e for e in self.events()[after:] if e.get("event") == name and where(e)]
            if len(got) >= count:
                return got
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) waiting for {name}:\n"
                                     + self.log_text()[-4000:])
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count} x {name}:\n"
                                     + self.log_text()[-4000:])
            time.sleep(0.05)

    def wait_outputs(self, n: int, timeout: float = 30.0) -> list[Path]:
        deadline = time.monotonic() + timeout
        while True:
            outs = outputs(self.outbox)
            if len(outs) >= n:
                return outs
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(outs)} of {n} outputs:\n" + self.log_text()[-4000:])
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self._log_fh is not None:
                self._log_fh.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def outputs(folder: Path) -> list[Path]:
    """Visible .dcm files under `folder` (temp files are hidden)."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*.dcm") if not p.name.startswith("."))


@pytest.fixture
def daemon(tmp_path: Path, config_file: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(config_file, tmp_path)
    yield d
    d.kill()


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Logging is the one global: each test starts from structlog's defaults."""
    import logging

    import structlog

    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
    logging.captureWarnings(False)
