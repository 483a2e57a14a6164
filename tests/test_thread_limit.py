"""The per-file time limit in threads other than the main one (a Dask worker's task threads)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from dcmwatch.engine import limits
from dcmwatch.errors import NotDicomError, TimeLimitExceeded, TransformError


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a fresh thread; return its value or re-raise what it raised."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def python_sleep(seconds: float) -> str:
    """Sleeps in short steps: Python code the soft limit can interrupt."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.005)
    return "done"


def test_slow_python_in_a_thread_is_stopped_on_time() -> None:
    def run() -> tuple[float, BaseException]:
        t0 = time.monotonic()
        with pytest.raises(TimeLimitExceeded) as info:
            limits.run_limited(0.2, python_sleep, 30)
        return time.monotonic() - t0, info.value

    elapsed, exc = in_thread(run)
    assert 0.15 < elapsed < 3
    assert isinstance(exc, limits.ThreadTimeLimit)
    assert str(exc) == "processing the file took longer than limits.file_seconds"
    assert limits._watcher().armed() == 0


def test_explain_says_time_limit_with_our_message_even_when_wrapped() -> None:
    """A library that catches Exception re-raises its own (the de-identifier: TransformError);
    `limits.explain` still says time_limit, once, and only in the thread that ran out."""

    def wrapping() -> None:
        try:
            python_sleep(30)
        except Exception as exc:
            raise TransformError("cannot de-identify ZZPHI") from exc

    def run() -> list[tuple[str, str]]:
        out = []
        try:
            limits.run_limited(0.1, wrapping)
        except BaseException as exc:
            err = limits.explain(exc)
            out.append((err.reason, str(err)))
        # The next file's failure outside the limit is its own.
        out.append((limits.explain(NotDicomError("not DICOM")).reason, ""))
        return out

    got = in_thread(run)
    assert got[0] == ("time_limit", "processing the file took longer than limits.file_seconds")
    assert got[1] == ("not_dicom", "")


def test_the_flag_is_per_thread() -> None:
    """One thread's limit running out does not make another thread's failure a time limit."""
    fired = threading.Event()
    checked = threading.Event()
    seen: list[str] = []

    def slow() -> None:
        try:
            limits.run_limited(0.05, python_sleep, 30)
        except TimeLimitExceeded:
            limits._alarm.fired = True  # as if a library had re-wrapped it; not explained yet
            fired.set()
            checked.wait(10)

    def other() -> None:
        fired.wait(10)
        seen.append(limits.explain(NotDicomError("x")).reason)
        checked.set()

    threads = [threading.Thread(target=slow), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert seen == ["not_dicom"]


def test_never_fires_after_the_work_returned() -> None:
    """Deadlines that end while the work ends, many times over: each call either returns the
    work's value or raises the limit from inside `run_limited`; no exception ever reaches the
    code after it, and nothing stays armed."""

    def busy(seconds: float) -> str:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
        return "done"

    def run() -> tuple[int, int]:
        returned = stopped = 0
        for i in range(300):
            try:
                assert limits.run_limited(0.002, busy, 0.001 + (i % 5) * 0.0005) == "done"
                returned += 1
            except TimeLimitExceeded:
                stopped += 1
            limits.explain(RuntimeError())  # consume the flag as the batch's boundary does
            busy(0.004)  # a late delivery would surface here, outside any limit
            assert limits._watcher().armed() == 0
        return returned, stopped

    # The watcher needs the GIL to fire: switch threads often, so it does so at all moments.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    try:
        returned, stopped = in_thread(run)
    finally:
        sys.setswitchinterval(interval)
    assert returned + stopped == 300
    assert stopped > 0 and returned > 0  # the deadlines ran out inside the work, and not


def test_disarmed_limit_never_fires_later() -> None:
    def run() -> str:
        value = limits.run_limited(0.2, python_sleep, 0.01)
        python_sleep(0.6)  # long past the deadline and the backstop's grace would not apply
        return value

    assert in_thread(run) == "done"


def test_main_thread_keeps_the_alarm(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the main thread the daemon's SIGALRM limit applies, not the watcher."""
    import signal

    seen: list[object] = []

    def probe() -> None:
        seen.append(signal.getsignal(signal.SIGALRM))
        seen.append(limits._watcher_instance is not None
                    and limits._watcher().armed())

    limits.run_limited(5, probe)
    assert seen[0] is limits._on_alarm
    assert not seen[1]
    t0 = time.monotonic()
    with pytest.raises(TimeLimitExceeded):
        limits.run_limited(0.2, python_sleep, 30)
    assert time.monotonic() - t0 < 3


def test_a_thread_stuck_in_c_code_ends_the_process() -> None:
    """One long `time.sleep` stands in for a decoder that never returns to the interpreter:
    the soft limit cannot reach it, so the backstop ends the process with BACKSTOP_EXIT."""
    script = textwrap.dedent("""
        import threading, time
        from dcmwatch.engine import limits
        t = threading.Thread(target=limits.run_limited, args=(0.2, time.sleep, 30))
        t.start()
        t.join()
        raise SystemExit(0)
    """)
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert res.returncode == limits.BACKSTOP_EXIT
    assert time.monotonic() - t0 < 20
