"""The liveness check behind WATCHDOG=1, and what Supervision sends, with a fake clock."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from dcmwatch.supervision import Liveness, Snapshot, Supervision, Verdict, status_text


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


IDLE = Snapshot(queue=0, inflight=0, completed=0, processed=0, quarantined=0,
                observer_alive=True)
BUSY = replace(IDLE, queue=10, inflight=4)


class TestLiveness:
    def test_idle_is_healthy_forever(self) -> None:
        """Nothing in flight and nothing queued: no progress is needed."""
        clock = Clock()
        live = Liveness(clock)
        clock.t += 10_000
        assert live.check(IDLE, 5.0).healthy

    def test_busy_without_progress_fails_after_stall(self) -> None:
        """Files in flight and none finished for stall_seconds: the workers check fails."""
        clock = Clock()
        live = Liveness(clock)
        assert live.check(BUSY, 5.0).healthy
        clock.t += 4.9
        assert live.check(BUSY, 5.0).healthy
        clock.t += 0.2
        v = live.check(BUSY, 5.0)
        assert v == Verdict(healthy=False, check="workers", stalled_s=pytest.approx(5.1))

    def test_progress_keeps_it_healthy(self) -> None:
        """A busy pool that keeps finishing files stays healthy however long it is busy."""
        clock = Clock()
        live = Liveness(clock)
        for i in range(100):
            clock.t += 3.0
            assert live.check(replace(BUSY, completed=i), 5.0).healthy

    def test_recovers_when_files_finish_again(self) -> None:
        """After a stall, one finished file makes it healthy again."""
        clock = Clock()
        live = Liveness(clock)
        live.check(BUSY, 1.0)
        clock.t += 2
        assert not live.check(BUSY, 1.0).healthy
        assert live.check(replace(BUSY, completed=1), 1.0).healthy

    def test_dead_observer_fails(self) -> None:
        """A dead observer thread fails the check even when idle."""
        v = Liveness(Clock()).check(replace(IDLE, observer_alive=False), 5.0)
        assert v.healthy is False
        assert v.check == "observer"


def test_status_text_is_human_and_numeric() -> None:
    """STATUS= reads like the issue's example and flags an unhealthy daemon."""
    snap = replace(IDLE, queue=12, processed=3401, quarantined=2)
    assert status_text(snap, Verdict(True)) == (
        "queue 12, in flight 0, processed 3401, quarantined 2"
    )
    assert status_text(snap, Verdict(False, "workers")).startswith("UNHEALTHY (workers): queue 12")


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **kw: Any) -> None:
        self.events.append((event, kw))

    warning = error = info

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


@pytest.fixture
def receiver() -> Iterator[tuple[str, socket.socket]]:
    name = f"dcmwatch-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.setblocking(False)
    yield "@" + name, sock
    sock.close()


def drain(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536).decode())
        except BlockingIOError:
            return out


class TestSupervision:
    def test_pings_only_while_healthy_and_logs_each_transition_once(
        self, receiver: tuple[str, socket.socket]
    ) -> None:
        """WATCHDOG=1 at half the timeout while healthy; a stall stops the pings and logs
        watchdog.unhealthy once; progress brings back the pings and watchdog.healthy."""
        addr, sock = receiver
        clock, log = Clock(), Log()
        sup = Supervision({"NOTIFY_SOCKET": addr, "WATCHDOG_USEC": "2000000"}, log, pid=1,
                          clock=clock)
        assert sup.interval == 1.0
        snap = BUSY

        def run(seconds: float) -> list[str]:
            end = clock.t + seconds
            while clock.t < end:
                clock.t += 0.25
                sup.tick(lambda: snap, 2.5)
            return [d for d in drain(sock) if d == "WATCHDOG=1"]

        assert len(run(2.9)) == 3  # t = 0.25, 1.25, 2.25
        assert len(run(5.0)) == 0  # stalled since 2.5 s after the first look
        assert log.names().count("watchdog.unhealthy") == 1
        ((_, fields),) = [e for e in log.events if e[0] == "watchdog.unhealthy"]
        assert fields["check"] == "workers"
        snap = replace(BUSY, completed=1)
        assert len(run(2.0)) == 2
        assert log.names().count("watchdog.healthy") == 1

    def test_no_pings_without_watchdog_usec(self, receiver: tuple[str, socket.socket]) -> None:
        """systemd did not ask for a watchdog: STATUS yes, WATCHDOG never."""
        addr, sock = receiver
        clock = Clock()
        sup = Supervision({"NOTIFY_SOCKET": addr}, Log(), pid=1, clock=clock)
        for i in range(40):
            clock.t += 0.25
            sup.tick(lambda i=i: replace(IDLE, processed=i), 60.0)  # type: ignore[misc]
        got = drain(sock)
        assert "WATCHDOG=1" not in got
        assert any(d.startswith("STATUS=queue 0") for d in got)

    def test_status_sent_only_when_changed(self, receiver: tuple[str, socket.socket]) -> None:
        """An unchanged STATUS is not resent every few seconds."""
        addr, sock = receiver
        clock = Clock()
        sup = Supervision({"NOTIFY_SOCKET": addr}, Log(), pid=1, clock=clock)
        sup.ready(IDLE)
        for _ in range(40):
            clock.t += 0.25
            sup.tick(lambda: IDLE, 60.0)
        assert drain(sock) == ["READY=1\nSTATUS=queue 0, in flight 0, processed 0, quarantined 0"]

    def test_lifecycle_messages(self, receiver: tuple[str, socket.socket]) -> None:
        """RELOADING=1 (with MONOTONIC_USEC), READY=1 after it, STOPPING=1."""
        addr, sock = receiver
        sup = Supervision({"NOTIFY_SOCKET": addr}, Log(), pid=1, clock=Clock())
        sup.reloading()
        sup.reloaded()
        sup.stopping()
        got = drain(sock)
        assert got[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert got[1:] == ["READY=1", "STOPPING=1"]

    def test_send_failure_is_an_event(self, tmp_path: Any) -> None:
        """A notification socket that is gone is logged as notify.failed, once."""
        log = Log()
        sup = Supervision({"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "500000"},
                          log, pid=1, clock=Clock())
        sup.ready(IDLE)
        sup.stopping()
        assert log.names().count("notify.failed") == 1
