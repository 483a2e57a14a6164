"""One file's time limit, in whatever runs it: a worker process's main thread or a Dask
worker's task thread. One mechanism with two triggers, one message and one way of saying it.

* **Soft**, at `limits.file_seconds`: `TimeLimitExceeded` is raised in the file's thread at its
  next Python bytecode. In a process's main thread an ITIMER_REAL alarm raises it; elsewhere
  (Dask runs tasks in a thread pool, and Python runs signal handlers in the main thread only) a
  watcher thread raises it with `PyThreadState_SetAsyncExc`. Neither can interrupt C code: a
  decoder looping in C sees it only when it returns to the interpreter.
* **Hard** (the backstop), at `config.backstop_seconds`: a file still inside its limit then is
  stuck in C, and the process ends itself with `BACKSTOP_EXIT`. The engine's crash isolation
  retries the file alone and quarantines it after `workers.max_attempts`; a Dask nanny starts a
  fresh worker and the same isolation applies to the batch it held.

The soft exception must never land after the file's work is done: the watcher raises only while
holding its lock and only in a thread still registered; unregistering takes that lock and clears
a delivery still pending. The one gap CPython leaves (a delivery pending when the work returns is
raised at the next function call, which may be the unregistering itself) is closed in
`run_limited`, which unregisters again in its own `except` and re-raises: the exception then
belongs to the file that ran out of time, never to the code after it.

`explain` turns any per-file failure into the error the outcome reports, for every boundary.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import ParamSpec, TypeVar

from dcmwatch.config import backstop_seconds
from dcmwatch.errors import (
    FATAL,
    DcmwatchError,
    InputError,
    InternalError,
    OutputError,
    TimeLimitExceeded,
    TransientError,
)

P = ParamSpec("P")
T = TypeVar("T")

TIME_LIMIT_MESSAGE = "processing the file took longer than limits.file_seconds"


def run_limited(seconds: float, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, stopped by `TimeLimitExceeded` after `seconds` in any thread."""
    if threading.current_thread() is threading.main_thread():
        with _alarm_limit(seconds):
            return fn(*args, **kwargs)
    watcher = _watcher()
    now = time.monotonic()
    entry = _Entry(threading.get_ident(), now + seconds, now + backstop_seconds(seconds))
    try:
        try:
            watcher.arm(entry)
            return fn(*args, **kwargs)
        finally:
            watcher.disarm(entry)
    except BaseException:
        # Raised late (at the call of `disarm`, before it ran) or not: nothing stays armed and
        # nothing is pending after this line, and no second delivery can come.
        watcher.disarm(entry)
        if entry.fired:
            # A library may have re-wrapped our exception (the de-identifier makes it a
            # TransformError): `explain` still says time_limit, for this thread only.
            _alarm.fired = True
        raise


def explain(exc: BaseException) -> DcmwatchError:
    """What one file's failure was, for every per-file boundary. Transient errors stay
    transient; a time limit that ran out is said as such even when a library re-wrapped our
    exception; a bug (or a decoder's panic, which is a BaseException) becomes `InternalError`
    with its class only. FATAL ones are raised again."""
    if isinstance(exc, FATAL):
        raise exc
    # Said once: a later file's failure outside a limit (a read before it) is its own.
    fired, _alarm.fired = _alarm.fired, False
    if isinstance(exc, TransientError):
        return exc
    if fired:
        return TimeLimitExceeded(TIME_LIMIT_MESSAGE)
    if isinstance(exc, (InputError, OutputError)):
        return exc
    return InternalError(f"internal error ({type(exc).__name__})")


#: Exit status of a worker ended by the backstop (its file ran past the limit inside C code).
BACKSTOP_EXIT = 70


@contextlib.contextmanager
def _alarm_limit(seconds: float) -> Iterator[None]:
    """The main thread's trigger: an ITIMER_REAL alarm, and the per-process backstop thread."""
    _alarm.fired = False
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    _backstop().arm(time.monotonic() + backstop_seconds(seconds))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _backstop().disarm()
        signal.signal(signal.SIGALRM, previous)


class _Alarm(threading.local):
    #: Set when the limit fired: libraries that catch Exception may re-wrap it (the
    #: de-identifier turns it into a TransformError), and the outcome must still say why.
    #: Per thread: several threads of one process are limited independently.
    fired = False


_alarm = _Alarm()


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    _alarm.fired = True
    raise TimeLimitExceeded(TIME_LIMIT_MESSAGE)


class _Backstop:
    """One thread per process that ends it if an armed deadline passes.

    It looks every `POLL_S` rather than being woken: arming is per file, and notifying a
    waiting thread for each costs lock and GIL hand-offs on every file. A backstop that acts a
    quarter of a second late still acts."""

    POLL_S = 0.25

    def __init__(self) -> None:
        self._deadline: float | None = None
        threading.Thread(target=self._watch, name="dcmwatch-backstop", daemon=True).start()

    def arm(self, deadline: float) -> None:
        self._deadline = deadline

    def disarm(self) -> None:
        self._deadline = None

    def _watch(self) -> None:
        while True:
            time.sleep(self.POLL_S)
            deadline = self._deadline  # one read: arm and disarm replace it whole
            if deadline is not None and time.monotonic() >= deadline:
                os._exit(BACKSTOP_EXIT)


_backstop_instance: _Backstop | None = None


def _backstop() -> _Backstop:
    global _backstop_instance  # noqa: PLW0603 - one watcher thread per process, made on first use
    if _backstop_instance is None:
        _backstop_instance = _Backstop()
    return _backstop_instance


class ThreadTimeLimit(TimeLimitExceeded):
    """What the watcher raises in a limited thread. `PyThreadState_SetAsyncExc` takes a class
    and instantiates it without arguments: the default message is ours, so free of PHI."""

    def __init__(self, message: str = TIME_LIMIT_MESSAGE) -> None:
        super().__init__(message)


@dataclass(eq=False, slots=True)
class _Entry:
    ident: int
    deadline: float
    backstop: float
    #: Set by the watcher, under its lock, when it raised the soft limit in this thread.
    fired: bool = False


#: `PyThreadState_SetAsyncExc(thread id, exception class)`, called with the GIL held. Our own
#: prototypes: `ctypes.pythonapi`'s shared function object is left as other code expects it.
_set_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi))
#: The same function with a NULL exception: clears a delivery still pending.
_clear_async_exc = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi))


class _Watcher:
    """One thread per process holding the deadlines of the threads inside a limit.

    A limited thread touches only C-implemented primitives here (a plain `Lock`, whose `with`
    runs no Python frame, dict operations, `SimpleQueue.put`): an exception delivered while it
    arms or disarms still releases the lock and leaves nothing half-done. (A `Condition`'s
    Python-level `notify`/`__exit__` could be interrupted holding the lock.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kicks: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._armed: dict[int, _Entry] = {}
        #: When the watcher wakes next (None: when kicked). A file's limit ends after the one
        #: being watched in the usual case, so arming it wakes nobody: no thread switch per
        #: file.
        self._next_wake: float | None = None
        threading.Thread(target=self._watch, name="dcmwatch-thread-limit", daemon=True).start()

    def arm(self, entry: _Entry) -> None:
        with self._lock:
            self._armed[entry.ident] = entry
            if self._next_wake is None or entry.deadline < self._next_wake:
                self._kicks.put(None)

    def disarm(self, entry: _Entry) -> None:
        """Idempotent; once the entry is gone the watcher cannot fire for it."""
        with self._lock:
            if self._armed.get(entry.ident) is entry:
                del self._armed[entry.ident]
            if entry.fired:
                # CPython 3.11 leaves its "async exception" flag set after a clear, so every
                # thread takes the eval loop's slow path until the next delivery: a rare cost
                # (the limit fired as the file finished), never a wrong exception.
                _clear_async_exc(entry.ident, None)

    def armed(self) -> int:
        with self._lock:
            return len(self._armed)

    def _watch(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                wake: float | None = None
                for entry in self._armed.values():
                    if now >= entry.backstop:
                        os._exit(BACKSTOP_EXIT)  # stuck in C: the worker ends, see above
                    if not entry.fired and now >= entry.deadline:
                        entry.fired = True
                        _set_async_exc(entry.ident, ThreadTimeLimit)
                    due = entry.backstop if entry.fired else entry.deadline
                    wake = due if wake is None else min(wake, due)
                self._next_wake = wake
            with contextlib.suppress(queue.Empty):
                self._kicks.get(timeout=None if wake is None else max(0.0, wake - now))


_watcher_instance: _Watcher | None = None
_watcher_made = threading.Lock()


def _watcher() -> _Watcher:
    global _watcher_instance  # noqa: PLW0603 - one watcher thread per process, made on first use
    if _watcher_instance is None:
        with _watcher_made:
            if _watcher_instance is None:
                _watcher_instance = _Watcher()
    return _watcher_instance
