"""sd_notify: tell systemd we are ready, how we are doing, that we are alive, that we stop.

The protocol is one datagram of `KEY=value` lines to the AF_UNIX socket named by `$NOTIFY_SOCKET`
(a path, or an abstract name written with a leading `@`). It is small enough to speak directly:
no dependency, and no C library whose failure modes we would have to learn.

Two promises shape this module. Without `$NOTIFY_SOCKET` (a terminal, a test, another service
manager) everything is a no-op. And nothing here ever raises into the daemon: systemd going away
must not stop de-identification, so a failed send is reported once to `on_error` (the daemon logs
it as an event) and retried at the next call. Nor does a send block the main loop: pings and
STATUS never wait for room in a full queue, and the rare state changes wait `SEND_TIMEOUT` at most.

The environment is passed in, never read here: only the CLI reads `os.environ`.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Callable, Mapping

__all__ = ["Notifier", "monotonic_usec", "watchdog_interval"]

OnError = Callable[[OSError], None]

#: Longest a send may wait for room in systemd's queue before it counts as failed.
SEND_TIMEOUT = 0.5


def _address(value: str) -> str | bytes | None:
    """`@name` is Linux's abstract namespace (a leading NUL byte); `/path` a socket file."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock: and anything newer: not spoken here, so not pretended to be


def watchdog_interval(env: Mapping[str, str], pid: int) -> float | None:
    """Seconds between `WATCHDOG=1` pings (half the timeout, as sd_watchdog_enabled advises), or
    None when systemd expects none, or expects them from another process (`WATCHDOG_PID`)."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and (not owner.isdigit() or int(owner) != pid):
        return None
    return int(usec) / 1e6 / 2


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: what `RELOADING=1` must carry in `MONOTONIC_USEC=`."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    def __init__(self, env: Mapping[str, str], on_error: OnError | None = None) -> None:
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = _address(raw) if raw else None
        #: Set but unusable (an unknown address family): the first send reports it.
        self._bad_address = bool(raw) and self.address is None
        self._on_error = on_error
        self._sock: socket.socket | None = None
        #: True after a failure until a send succeeds again: one event per broken stretch.
        self.failing = False
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None or self._bad_address

    def notify(self, *lines: str, wait: bool = False) -> bool:
        """Send `KEY=value` lines as one datagram. True if sent (or nothing to send to).

        `wait`: may wait up to `SEND_TIMEOUT` for room in the receiver's queue (the rare state
        changes); otherwise a full queue fails at once (pings and STATUS: another comes soon).
        """
        if not self.enabled:
            return True
        try:
            if self.address is None:
                raise OSError(0, "unsupported NOTIFY_SOCKET address")  # noqa: TRY301 - one path for every failure
            if self._sock is None:
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
                # A receiver that does not read fills its queue (net.unix.max_dgram_qlen) and a
                # blocking send would stall the main loop with it. The kernel's own send timeout,
                # not Python's (which retries a refused MSG_DONTWAIT send until it expires).
                sec = int(SEND_TIMEOUT)
                usec = int((SEND_TIMEOUT - sec) * 1e6)
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                                      struct.pack("@ll", sec, usec))
            flags = 0 if wait else socket.MSG_DONTWAIT
            self._sock.sendto("\n".join(lines).encode(), flags, self.address)
        except OSError as exc:
            self._close()
            if not self.failing:
                self.failing = True
                self._report(exc)
            return False
        except Exception as exc:  # a notification must never end the daemon
            self._close()
            if not self.failing:
                self.failing = True
                self._report(OSError(0, type(exc).__name__))
            return False
        self.failing = False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []), wait=True)

    def reloading(self) -> bool:
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", wait=True)

    def stopping(self) -> bool:
        return self.notify("STOPPING=1", wait=True)

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        self._close()

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _report(self, exc: OSError) -> None:
        if self._on_error is None:
            return
        with contextlib.suppress(Exception):  # a failing reporter must not break the daemon
            self._on_error(exc)
