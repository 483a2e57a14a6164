"""sd_notify from a real `python -m dcmwatch run`: the datagrams systemd would receive."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dcmwatch.testing import write_series
from tests.conftest import DaemonProcess, outputs, write_config

pytestmark = pytest.mark.integration

SMALL = {"rows": 64, "columns": 64}


class NotifySocket:
    """systemd's side of $NOTIFY_SOCKET: an abstract datagram socket and a reader thread."""

    def __init__(self) -> None:
        self.name = f"@dcmwatch-test-{secrets.token_hex(8)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + self.name[1:].encode())
        self.sock.settimeout(0.1)
        self.got: list[tuple[float, list[str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.got.append((time.monotonic(), data.decode().split("\n")))

    def messages(self, since: float = 0.0) -> list[list[str]]:
        with self._lock:
            return [lines for t, lines in self.got if t >= since]

    def count(self, line: str, since: float = 0.0) -> int:
        return sum(line in m for m in self.messages(since))

    def wait(self, pred: Callable[[list[str]], bool], what: str, daemon: DaemonProcess,
             timeout: float = 30.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages():
                if pred(m):
                    return m
            if daemon.proc is not None and daemon.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {what} datagram; got {self.messages()}\n"
                             + daemon.log_text()[-3000:])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    n = NotifySocket()
    yield n
    n.close()


def systemd_daemon(tmp_path: Path, notify: NotifySocket, stall_seconds: float = 300.0,
                   watchdog_usec: int = 1_000_000) -> DaemonProcess:
    # The per-file time limit and its backstop (1.5 x, at least +1 s) must act before the
    # stall window (a config rule): keep them under it.
    limits = f"[limits]\nfile_seconds = {min(60.0, stall_seconds / 3):.3f}\n"
    cfg = write_config(tmp_path, limits)
    cfg.write_text(cfg.read_text().replace(
        "[workers]\ncount = 2\n", f"[workers]\ncount = 2\nstall_seconds = {stall_seconds}\n"))
    env = {"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": str(watchdog_usec)}
    return DaemonProcess(cfg, tmp_path, env=env)


def is_ready(m: list[str]) -> bool:
    return "READY=1" in m


def worker_pids(daemon_pid: int) -> list[int]:
    """The pool's worker processes: the daemon's children running `dcmwatch.engine.pool`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == daemon_pid and b"dcmwatch.engine.pool" in cmdline:
            out.append(int(entry.name))
    return out


class TestLifecycle:
    def test_ready_status_watchdog_reload_stopping(self, tmp_path: Path,
                                                    notify: NotifySocket) -> None:
        """READY=1 with a STATUS, STATUS updates with counts, WATCHDOG=1 about every half
        WATCHDOG_USEC, RELOADING=1 + MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 on
        SIGTERM."""
        d = systemd_daemon(tmp_path, notify)
        try:
            d.start(wait_ready=False)
            ready = notify.wait(is_ready, "READY", d)
            assert any(line.startswith("STATUS=queue ") for line in ready)
            write_series(d.inbox, 5, **SMALL)
            d.wait_outputs(5)
            notify.wait(lambda m: any("processed 5," in x for x in m), "STATUS processed 5", d)

            t0 = time.monotonic()
            time.sleep(3.0)
            pings = notify.count("WATCHDOG=1", since=t0)
            assert 3 <= pings <= 8, pings  # 1 s timeout: a ping about every 0.5 s, never > 1 s

            assert d.proc is not None
            n_ready = notify.count("READY=1")
            d.proc.send_signal(signal.SIGHUP)
            d.wait_event("config.reloaded")
            reloading = notify.wait(lambda m: "RELOADING=1" in m, "RELOADING", d)
            usec = [x for x in reloading if x.startswith("MONOTONIC_USEC=")]
            assert len(usec) == 1 and int(usec[0].split("=")[1]) > 0
            notify.wait(lambda _m: notify.count("READY=1") > n_ready, "READY after reload", d)
            msgs = notify.messages()
            first_reloading = next(i for i, m in enumerate(msgs) if "RELOADING=1" in m)
            assert any("READY=1" in m for m in msgs[first_reloading + 1:])

            assert d.stop() == 0
            # Sent before the exit, but the reader thread may not have it yet (`wait` gives up
            # at once on an exited daemon): poll, then allow a moment for a second one.
            deadline = time.monotonic() + 10
            while notify.count("STOPPING=1") == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            assert notify.count("STOPPING=1") == 1
            assert d.wait_event("notify.ready")[0]["watchdog_s"] == 0.5
            assert "notify.failed" not in d.log_text()
        finally:
            d.kill()

    def test_ready_does_not_wait_for_the_startup_scan(self, tmp_path: Path,
                                                       notify: NotifySocket) -> None:
        """Hundreds of files waiting at start: READY comes first, the files afterwards."""
        d = systemd_daemon(tmp_path, notify)
        n = 250
        write_series(d.inbox, n, **SMALL)
        try:
            d.start(wait_ready=False)
            notify.wait(is_ready, "READY", d)
            done_at_ready = len(list(d.outbox.rglob("*.dcm")))
            assert done_at_ready < n
            d.wait_outputs(n, timeout=120)
            assert d.stop() == 0
        finally:
            d.kill()

    def test_no_notify_socket_no_trouble(self, daemon: DaemonProcess) -> None:
        """Without NOTIFY_SOCKET the daemon runs as before and logs nothing about systemd."""
        daemon.start()
        write_series(daemon.inbox, 2, **SMALL)
        daemon.wait_outputs(2)
        assert daemon.stop() == 0
        names = {e.get("event") for e in daemon.events()}
        assert "notify.ready" not in names
        assert "notify.failed" not in names


class TestWatchdog:
    def test_wedged_workers_stop_the_pings(self, tmp_path: Path, notify: NotifySocket) -> None:
        """Workers stopped (SIGSTOP) with files queued: after stall_seconds the pings stop and
        watchdog.unhealthy names the check; SIGCONT: files finish, pings resume."""
        d = systemd_daemon(tmp_path, notify, stall_seconds=2.0)
        stopped: list[int] = []
        try:
            d.start()
            notify.wait(is_ready, "READY", d)
            assert d.proc is not None
            deadline = time.monotonic() + 30
            while len(worker_pids(d.proc.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            workers = worker_pids(d.proc.pid)
            assert len(workers) == 2, workers
            t0 = time.monotonic()
            time.sleep(1.6)
            assert notify.count("WATCHDOG=1", since=t0) >= 2  # healthy while idle

            for pid in workers:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            write_series(d.inbox, 10, **SMALL)
            unhealthy = d.wait_event("watchdog.unhealthy", timeout=30)
            assert unhealthy[0]["check"] == "workers"
            assert unhealthy[0]["inflight"] > 0
            time.sleep(0.3)  # a ping sent just before may still be in the reader's hands
            t1 = time.monotonic()
            time.sleep(2.5)
            assert notify.count("WATCHDOG=1", since=t1) == 0
            assert any(x.startswith("STATUS=UNHEALTHY (workers)")
                       for m in notify.messages() for x in m)

            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
            stopped.clear()
            # The files the stopped workers held have outlived their time limit: they
            # are quarantined as time_limit when the workers wake; the rest come out.
            deadline = time.monotonic() + 60
            while (len(outputs(d.outbox)) + len(list(d.quarantine.glob("*.dcm"))) < 10
                   and time.monotonic() < deadline):
                time.sleep(0.1)
            assert len(outputs(d.outbox)) + len(list(d.quarantine.glob("*.dcm"))) == 10
            assert {e["reason"] for e in d.events() if e.get("event") == "file.quarantined"} \
                <= {"time_limit", "worker_crashed"}
            d.wait_event("watchdog.healthy", timeout=30)
            t2 = time.monotonic()
            time.sleep(1.6)
            assert notify.count("WATCHDOG=1", since=t2) >= 2
            assert len(d.wait_event("watchdog.unhealthy")) == 1  # logged once per transition
            assert d.stop() == 0
        finally:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
            d.kill()
