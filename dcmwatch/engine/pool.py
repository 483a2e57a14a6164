"""The engine's own worker processes, each fed batches through its own socket.

Processes, not threads: a file costs a few milliseconds of pure-Python CPU (parsing, the
de-identifier's walk, writing), and threads would share one core under the GIL (the benchmarks
show the scaling). Workers are fresh interpreters (`python -c`), never forks: the parent runs
threads (observer, scheduler) and forking a threaded process is unsafe. Each receives the
configuration once; per batch only its paths and its outcomes travel.

Why not `concurrent.futures.ProcessPoolExecutor`, which this replaced (measured in
`benchmarks/README.md`):

* Its one shared call queue is refilled by two threads of the parent (the executor's manager
  and the queue's feeder) after each result. With both cores busy running workers the parent
  is scheduled late, and the workers ran dry at full load. Here each
  worker holds up to `DEPTH` tasks in its own socket, so it starts the next file without
  waiting for the parent, and one thread reads results and sends the next task.
* Its queues are guarded by named semaphores, and those start multiprocessing's resource
  tracker, one more process on the daemon's memory budget. A socket with one writer and one
  reader needs no lock.
* A worker that dies fails only the tasks it held (`BrokenProcessPool`); the others keep
  running, and `replace()` starts a new one in its place.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from dcmwatch.config import Config
from dcmwatch.engine import work
from dcmwatch.engine.outcome import Batch, Outcome

__all__ = ["DEPTH", "BrokenProcessPool", "Pool", "WorkerError", "worker_main"]

#: Tasks sent ahead to one worker: the one it runs and the next, so it never waits for the
#: parent between two files. The rest wait in the parent, where they can still be cancelled.
DEPTH = 2

#: What a worker process runs first: the parent's import path, then `worker_main`.
_BOOT = (
    "import sys\n"
    "from multiprocessing.connection import Connection\n"
    "conn = Connection(int(sys.argv[1]))\n"
    "sys.path[:] = conn.recv()\n"
    "from dcmwatch.engine.pool import worker_main\n"
    "worker_main(conn)\n"
)
_READY = "ready"
#: How long `shutdown(wait=True)` waits for workers to finish what they hold.
STOP_TIMEOUT_S = 30.0

Reply = tuple[Outcome, ...]
Run = Callable[[Batch], Reply]


class WorkerError(RuntimeError):
    """The batch's entry point raised instead of returning outcomes: a bug. Carries the class
    name only (a message may quote a tag value)."""


@dataclass(frozen=True, slots=True)
class _Raised:
    name: str


def worker_main(conn: Connection) -> None:
    """A worker process: the configuration, then tasks until None or the parent is gone."""
    config, target = conn.recv()
    run = _resolve(target)
    work.init_worker(config)
    conn.send(_READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if task is None:
            return
        try:
            reply: object = run(task)
        except Exception as exc:  # run_in_pool makes every per-file failure an outcome
            reply = _Raised(type(exc).__name__)
        conn.send(reply)


def _resolve(target: str) -> Run:
    module, _, name = target.partition(":")
    run: Run = getattr(importlib.import_module(module), name)
    return run


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    conn: Connection
    #: Futures of the tasks sent to it, in the order sent (and answered).
    sent: deque[Future[Reply]] = field(default_factory=deque)
    ready: bool = False
    #: After a reload: it finishes what it holds and takes nothing new.
    retiring: bool = False
    #: Its socket failed: nothing more is sent; the reader sees it go.
    broken: bool = False

    @property
    def live(self) -> bool:
        """Running or starting, and staying: it will take work."""
        return not self.retiring and not self.broken

    @property
    def takes_work(self) -> bool:
        return self.ready and self.live


class Pool:
    #: What workers run for each task (`module:function`); the profiler swaps in a wrapper.
    target = "dcmwatch.engine.work:run_in_pool"

    def __init__(self, config: Config) -> None:
        self.size = config.workers.count
        self.restarts = 0
        self._config = config
        self._lock = threading.Lock()
        self._waiting: deque[tuple[Future[Reply], Batch]] = deque()
        self._workers: list[_Worker] = []
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        with self._lock:
            self._fill_up()
        self._reader = threading.Thread(target=self._read, name="dcmwatch-pool", daemon=True)
        self._reader.start()

    # -- the parent's side ---------------------------------------------------------------------
    def submit(self, task: Batch) -> Future[Reply]:
        fut: Future[Reply] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            if not any(w.live for w in self._workers):
                raise BrokenProcessPool("no worker process is running")
            self._waiting.append((fut, task))
            self._dispatch()
        return fut

    def replace(self, config: Config | None = None) -> None:
        """Workers in place of dead ones; with `config` (a reload), a new set, the old ones
        finishing what they hold first (a reload may change how many)."""
        with self._lock:
            if config is not None:
                self._config = config
                self.size = config.workers.count
                for w in self._workers:
                    if not w.retiring:
                        w.retiring = True
                        self._send(w, None)
            self._fill_up()
            self.restarts += 1
        self._wake()

    def shutdown(self, *, wait: bool) -> None:
        """Cancel what no worker holds yet, let the workers finish what they hold, and stop
        them; with `wait`, until they have exited."""
        with self._lock:
            self._closed = True
            waiting = [fut for fut, _ in self._waiting]
            self._waiting.clear()
            for w in self._workers:
                w.retiring = True
                self._send(w, None)
        for fut in waiting:
            fut.cancel()
        self._wake()
        if not wait:
            return  # they finish on their own, or die with us (PR_SET_PDEATHSIG)
        self._reader.join(STOP_TIMEOUT_S)
        if self._reader.is_alive():  # one is stuck (SIGSTOP, a hung disk): not for ever
            for worker in self._snapshot():
                worker.proc.kill()
            self._reader.join()

    def ready(self) -> int:
        """How many workers have started (imports done, configuration loaded)."""
        return sum(1 for w in self._snapshot() if w.takes_work)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._snapshot()]

    def _snapshot(self) -> list[_Worker]:
        with self._lock:
            return list(self._workers)

    # -- under the lock ------------------------------------------------------------------------
    def _fill_up(self) -> None:
        live = sum(1 for w in self._workers if w.live)
        for _ in range(self.size - live):
            self._workers.append(self._spawn(self._config))

    def _spawn(self, config: Config) -> _Worker:
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen(  # noqa: S603 - our interpreter, our code
                [sys.executable, "-c", _BOOT, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        worker = _Worker(proc, Connection(ours.detach()))
        # The configuration may be large (mask arrays): sent by a thread of its own, so that
        # a child still starting up cannot block the caller on a full socket.
        threading.Thread(target=self._hello, args=(worker, config, self.target),
                         name="dcmwatch-pool-start", daemon=True).start()
        return worker

    @staticmethod
    def _hello(worker: _Worker, config: Config, target: str) -> None:
        with contextlib.suppress(OSError):  # it died at once: the reader sees it go
            worker.conn.send(sys.path)
            worker.conn.send((config, target))

    def _dispatch(self) -> None:
        while self._waiting:
            ready = [w for w in self._workers if w.takes_work and len(w.sent) < DEPTH]
            if not ready:
                return
            worker = min(ready, key=lambda w: len(w.sent))
            fut, task = self._waiting.popleft()
            if not fut.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            worker.sent.append(fut)
            self._send(worker, task)

    def _send(self, worker: _Worker, message: object) -> None:
        if worker.broken:
            return
        try:
            worker.conn.send(message)
        except OSError:  # it died; what it holds fails when the reader sees it go
            worker.broken = True

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- the reader thread ---------------------------------------------------------------------
    def _read(self) -> None:
        while True:
            with self._lock:
                if self._closed and not self._workers:
                    break
                conns = {w.conn: w for w in self._workers}
            for ready in wait([*conns, self._wake_r]):
                if ready is self._wake_r:
                    self._wake_r.recv(4096)
                    continue
                assert isinstance(ready, Connection)
                worker = conns[ready]
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    self._lost(worker)
                    continue
                self._received(worker, message)
        self._wake_r.close()
        self._wake_w.close()

    def _received(self, worker: _Worker, message: object) -> None:
        with self._lock:
            if message == _READY:
                worker.ready = True
                self._dispatch()
                return
            fut = worker.sent.popleft()
            self._dispatch()
        if isinstance(message, _Raised):
            fut.set_exception(WorkerError(f"the worker raised {message.name}"))
        else:
            fut.set_result(message)  # type: ignore[arg-type]

    def _lost(self, worker: _Worker) -> None:
        """A worker's socket closed: it exited (retired, or died). Its tasks fail; so do the
        waiting ones if no worker is left to run them (the caller replaces the pool)."""
        with self._lock:
            self._workers.remove(worker)
            failed = list(worker.sent)
            worker.sent.clear()
            if worker.ready and not worker.retiring and not self._closed:
                # Died at work (or idle: killed, OOM): a new one now, so the pool never
                # shrinks unseen. One that died starting up is not restarted here (it would
                # loop); the caller's `replace()` after the failed tasks does that.
                self._fill_up()
            orphans: list[Future[Reply]] = []
            if not any(w.live for w in self._workers):
                orphans = [fut for fut, _ in self._waiting]
                self._waiting.clear()
        worker.conn.close()
        try:
            worker.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its socket but lives on: not ours to keep
            worker.proc.kill()
            worker.proc.wait()
        for fut in failed:
            fut.set_exception(BrokenProcessPool("a worker process died"))
        for fut in orphans:
            if fut.set_running_or_notify_cancel():
                fut.set_exception(BrokenProcessPool("no worker process is running"))
