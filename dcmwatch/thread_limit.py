"""The per-file time limit in any thread: a Dask worker runs its tasks in a thread pool, where
`job.time_limit`'s SIGALRM cannot reach (Python runs signal handlers in the main thread only).

`run_limited` takes the main thread's alarm where it can (a pool process, the daemon's workers:
that path is unchanged) and otherwise registers the calling thread with one watcher thread per
process, which enforces two deadlines:

* Soft, at `limits.file_seconds`: `TimeLimitExceeded` is raised in the limited thread with
  `PyThreadState_SetAsyncExc`. Like the alarm's Python-level handler, it takes effect at the
  thread's next bytecode boundary, so it **cannot interrupt C code**: a decoder looping in C,
  or one long `time.sleep`, sees it only when it returns to the interpreter.
* Hard (the backstop), at `config.backstop_seconds`: a thread still inside its limit then is
  stuck in C, and the watcher ends the whole process with `job.BACKSTOP_EXIT`. A Dask nanny
  starts a fresh worker and Dask reruns the batch; a file that does it again is found by the
  driver's batch splitting (`KilledWorker`) and quarantined as `killed_worker`.

The exception must never land after the file's work is done: the watcher raises only while
holding the lock and only in a thread still registered; unregistering takes that lock and
clears a delivery still pending. The one gap CPython leaves (a delivery pending when the work
returns is raised at the next function call, which may be the unregistering itself) is closed
in `run_limited`, which unregisters again in its own `except` and re-raises: the exception then
belongs to the file that ran out of time, never to the code after it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from dcmwatch import job
from dcmwatch.config import backstop_seconds
from dcmwatch.errors import TimeLimitExceeded

P = ParamSpec("P")
T = TypeVar("T")


class ThreadTimeLimit(TimeLimitExceeded):
    """What the watcher raises in a limited thread. `PyThreadState_SetAsyncExc` takes a class
    and instantiates it without arguments: the default message is ours, so free of PHI."""

    def __init__(self, message: str = job._TIME_LIMIT_MESSAGE) -> None:
        super().__init__(message)


def run_limited(seconds: float, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, stopped by `TimeLimitExceeded` after `seconds` in any thread."""
    if threading.current_thread() is threading.main_thread():
        with job.time_limit(seconds):
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
            # TransformError): `job.explain` still says time_limit, for this thread only.
            job._alarm.fired = True
        raise


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
                        os._exit(job.BACKSTOP_EXIT)  # stuck in C: the worker ends, see above
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
