"""sd_notify over a real AF_UNIX datagram socket: what systemd would receive."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcmwatch.notify import Notifier, monotonic_usec, watchdog_interval


class Receiver:
    """A datagram socket standing in for systemd's notification socket."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2.0)

    def get(self) -> list[str]:
        return self.sock.recv(65536).decode().split("\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def path_receiver(tmp_path: Path) -> Iterator[tuple[str, Receiver]]:
    path = str(tmp_path / "notify.sock")
    r = Receiver(path)
    yield path, r
    r.close()


@pytest.fixture
def abstract_receiver() -> Iterator[tuple[str, Receiver]]:
    name = f"dcmwatch-test-{secrets.token_hex(6)}"
    r = Receiver(b"\0" + name.encode())
    yield "@" + name, r
    r.close()


class TestNotifier:
    def test_path_socket(self, path_receiver: tuple[str, Receiver]) -> None:
        """A socket file named by an absolute path receives the lines as one datagram."""
        addr, r = path_receiver
        n = Notifier({"NOTIFY_SOCKET": addr})
        assert n.ready("queue 0") is True
        assert r.get() == ["READY=1", "STATUS=queue 0"]

    def test_abstract_socket(self, abstract_receiver: tuple[str, Receiver]) -> None:
        """A leading @ names Linux's abstract namespace (what systemd uses in containers)."""
        addr, r = abstract_receiver
        n = Notifier({"NOTIFY_SOCKET": addr})
        assert n.watchdog() and n.stopping() and n.status("queue 3, processed 9")
        assert r.get() == ["WATCHDOG=1"]
        assert r.get() == ["STOPPING=1"]
        assert r.get() == ["STATUS=queue 3, processed 9"]
        assert n.sent == 3

    def test_reloading_carries_monotonic_usec(self, abstract_receiver: tuple[str, Receiver]) -> None:
        """RELOADING=1 comes with MONOTONIC_USEC from CLOCK_MONOTONIC, as systemd 253+ wants."""
        addr, r = abstract_receiver
        before = monotonic_usec()
        Notifier({"NOTIFY_SOCKET": addr}).reloading()
        lines = r.get()
        assert lines[0] == "RELOADING=1"
        key, value = lines[1].split("=")
        assert key == "MONOTONIC_USEC"
        assert before <= int(value) <= monotonic_usec()

    def test_absent_variable_is_a_no_op(self) -> None:
        """Without NOTIFY_SOCKET nothing is sent, nothing fails, no socket is made."""
        n = Notifier({})
        assert not n.enabled
        assert n.ready() and n.watchdog() and n.stopping()
        assert n._sock is None
        assert n.sent == 0

    def test_missing_socket_is_reported_once_and_never_raises(self, tmp_path: Path) -> None:
        """A socket that is gone: False, one report per broken stretch, and no exception."""
        errors: list[OSError] = []
        n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}, on_error=errors.append)
        assert n.watchdog() is False
        assert n.watchdog() is False
        assert len(errors) == 1
        assert n.failing

    def test_recovers_when_the_socket_comes_back(self, tmp_path: Path) -> None:
        """After a failure the next send tries again; a later failure is reported again."""
        path = tmp_path / "late.sock"
        errors: list[OSError] = []
        n = Notifier({"NOTIFY_SOCKET": str(path)}, on_error=errors.append)
        assert not n.watchdog()
        r = Receiver(str(path))
        try:
            assert n.watchdog()
            assert r.get() == ["WATCHDOG=1"]
            assert not n.failing
        finally:
            r.close()
        path.unlink()
        assert not n.watchdog()
        assert len(errors) == 2

    def test_reporter_that_raises_is_contained(self, tmp_path: Path) -> None:
        """Even a broken error callback cannot raise into the daemon."""

        def boom(_exc: OSError) -> None:
            raise RuntimeError("reporter broke")

        n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}, on_error=boom)
        assert n.stopping() is False

    def test_unsupported_address_is_reported(self) -> None:
        """An address we do not speak (vsock:) is an event, not silence and not a crash."""
        errors: list[OSError] = []
        n = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"}, on_error=errors.append)
        assert n.enabled
        assert n.ready() is False
        assert len(errors) == 1


class TestWatchdogInterval:
    def test_half_the_timeout(self) -> None:
        """Pings at half of WATCHDOG_USEC, as sd_watchdog_enabled(3) advises."""
        assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, 42) == 15.0

    def test_off_without_usec(self) -> None:
        """No WATCHDOG_USEC, zero or garbage: no pings."""
        assert watchdog_interval({}, 42) is None
        assert watchdog_interval({"WATCHDOG_USEC": "0"}, 42) is None
        assert watchdog_interval({"WATCHDOG_USEC": "x"}, 42) is None

    def test_pid_must_be_ours(self) -> None:
        """WATCHDOG_PID names who must ping: another pid means not us."""
        env = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "42"}
        assert watchdog_interval(env, 42) == 0.5
        assert watchdog_interval(env, 43) is None


def test_receiver_sees_datagrams_in_order(abstract_receiver: tuple[str, Receiver]) -> None:
    """Quick sends arrive whole and in order (datagrams are never merged)."""
    addr, r = abstract_receiver
    n = Notifier({"NOTIFY_SOCKET": addr})
    for i in range(5):
        n.status(f"queue {i}")
    got = [r.get()[0] for _ in range(5)]
    assert got == [f"STATUS=queue {i}" for i in range(5)]


def test_a_receiver_that_stops_reading_does_not_block(
    abstract_receiver: tuple[str, Receiver],
) -> None:
    """Its queue fills (max_dgram_qlen); later sends fail quickly instead of blocking forever."""
    addr, _r = abstract_receiver
    errors: list[OSError] = []
    n = Notifier({"NOTIFY_SOCKET": addr}, on_error=errors.append)
    t0 = time.monotonic()
    results = [n.watchdog() for _ in range(1000)]
    assert time.monotonic() - t0 < 60
    assert results[0] is True
    assert False in results
    assert len(errors) >= 1


def test_state_changes_wait_briefly_for_room(abstract_receiver: tuple[str, Receiver]) -> None:
    """READY/STOPPING wait a moment for a full queue, then fail instead of hanging."""
    addr, _r = abstract_receiver
    n = Notifier({"NOTIFY_SOCKET": addr})
    while n.watchdog():
        pass
    t0 = time.monotonic()
    assert n.stopping() is False
    assert 0.3 < time.monotonic() - t0 < 10
