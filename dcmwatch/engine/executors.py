"""Where batches run: the engine's own worker pool or a Dask cluster, behind one interface.

The engine submits a batch and collects whatever finished, woken by the executor's callback; it
never learns which executor it drives. How a lost worker shows up differs, and each executor
says it the same way (`Failure.kind == "crashed"`):

* The pool fails the batches a dead worker held (`BrokenProcessPool`) and keeps the others
  running.
* Dask reschedules a dead worker's tasks by itself and raises `KilledWorker` only for a task
  that was running on `distributed.scheduler.allowed-failures` + 1 dying workers: that batch is
  the suspect, and Dask has already retried it (`Failure.retried`).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dcmwatch.config import Config
from dcmwatch.engine.outcome import Batch, Outcome
from dcmwatch.engine.pool import BrokenProcessPool, Pool
from dcmwatch.errors import FATAL


@dataclass(frozen=True, slots=True)
class Failure:
    kind: Literal["crashed", "error"]
    #: Exception class name (never its message).
    error: str
    #: The executor already reran the batch on other workers before giving up (Dask).
    retried: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    batch: Batch
    outcomes: tuple[Outcome, ...] | None
    failure: Failure | None = None


def _nothing() -> None:
    return None


class Executor(Protocol):
    name: str
    #: Called (from any thread) whenever a batch finishes: the front end's loop wakes up.
    wake: Callable[[], None]
    #: Its workers share this machine's filesystems with the front end (which may then
    #: commit their outputs).
    local: bool

    @property
    def slots(self) -> int:
        """Batches that run at once."""
        ...

    def submit(self, batch: Batch) -> None: ...

    def take_done(self) -> list[Done]:
        """What finished since the last call, without waiting (the wake callback said so)."""
        ...

    def cancel_waiting(self) -> list[Batch]:
        """Batches not started yet, taken back (a stopping daemon returns their files)."""
        ...

    def reconfigure(self, config: Config) -> None: ...

    def close(self, *, wait: bool) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class PoolExecutor:
    """The engine's own worker processes (`pool.Pool`), for the daemon and local backfills."""

    name = "local"
    local = True

    def __init__(self, config: Config, wake: Callable[[], None] = _nothing) -> None:
        self.wake = wake
        self.pool = Pool(config)  # workers start now, not on the first file
        self._inflight: dict[Future[tuple[Outcome, ...]], Batch] = {}
        self._done: deque[Future[tuple[Outcome, ...]]] = deque()

    @property
    def slots(self) -> int:
        return self.pool.size

    def submit(self, batch: Batch) -> None:
        try:
            fut = self.pool.submit(batch)
        except BrokenProcessPool:  # every worker gone at once: start new ones, then submit
            self.pool.replace()
            fut = self.pool.submit(batch)
        self._inflight[fut] = batch
        fut.add_done_callback(self._finished)

    def _finished(self, fut: Future[tuple[Outcome, ...]]) -> None:
        self._done.append(fut)
        self.wake()

    def take_done(self) -> list[Done]:
        out: list[Done] = []
        crashed = False
        while self._done:
            fut = self._done.popleft()
            batch = self._inflight.pop(fut, None)
            if batch is None:
                continue
            try:
                out.append(Done(batch, fut.result()))
            except (BrokenProcessPool, CancelledError):
                crashed = True
                out.append(Done(batch, None, Failure("crashed", "BrokenProcessPool")))
            except BaseException as exc:  # the entry point raised, or a reply did not unpickle
                if isinstance(exc, FATAL):
                    raise
                out.append(Done(batch, None, Failure("error", type(exc).__name__)))
        if crashed:
            self.pool.replace()  # the pool starts a replacement itself; this also counts it
        return out

    def cancel_waiting(self) -> list[Batch]:
        taken = [fut for fut in self._inflight if fut.cancel()]
        return [self._inflight.pop(fut) for fut in taken]

    def reconfigure(self, config: Config) -> None:
        self.pool.replace(config)

    def close(self, *, wait: bool) -> None:
        self.pool.shutdown(wait=wait)

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "workers": self.pool.size, "restarts": self.pool.restarts}

    @property
    def inflight(self) -> int:
        return len(self._inflight)


#: For `--local-cluster`; `config/dask.yaml` holds the same for a real cluster's scheduler and
#: workers, with the reasons (a test keeps the two equal).
LOCAL_CLUSTER_CONFIG = {
    "distributed.scheduler.worker-saturation": 1.0,
    "distributed.scheduler.work-stealing": False,
    "distributed.scheduler.active-memory-manager.start": False,
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    # glibc's dynamic mmap threshold, not a 128 KiB one: no page faults per CT slice.
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}


class DaskExecutor:
    """A Dask distributed client: on a running scheduler, or on a `LocalCluster` it starts.

    The configuration (with the key) travels with each task: use a `tls://` scheduler address
    (Dask's TLS settings) off a trusted network, since the key crosses the wire.
    """

    name = "dask"
    local = False

    def __init__(self, config: Config, wake: Callable[[], None] = _nothing, *,
                 address: str | None = None, local_workers: int | None = None) -> None:
        import dask  # noqa: PLC0415 - the [cluster] extra, only for cluster runs
        from distributed import Client, LocalCluster  # noqa: PLC0415

        # Dask's INFO lines (workers joining, dashboard) would each become a library.warning.
        logging.getLogger("distributed").setLevel(logging.WARNING)

        self._config = config
        self.wake = wake
        self._cluster: Any = None
        if local_workers is not None:
            # Read when the scheduler, nannies and workers start: only our cluster gets them.
            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                    n_workers=local_workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address="127.0.0.1:0",
                )
            self._client: Any = Client(self._cluster)  # type: ignore[no-untyped-call]
        else:
            self._client = Client(address)  # type: ignore[no-untyped-call]
        # Import the core on every worker now, not inside the first batches.
        self._client.run(_warm)
        info = self._client.scheduler_info()
        self._slots: int = max(1, sum(w.get("nthreads", 1) for w in info["workers"].values()))
        self._workers = len(info["workers"])
        self._lock = threading.Lock()
        self._batches: dict[str, Batch] = {}
        self._done: deque[Any] = deque()

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def client(self) -> Any:
        return self._client

    def submit(self, batch: Batch) -> None:
        from dcmwatch.engine.work import run_on_dask  # noqa: PLC0415

        key = f"dcmwatch-batch-{uuid.uuid4().hex}"
        with self._lock:
            self._batches[key] = batch
        fut = self._client.submit(run_on_dask, batch, self._config, key=key, pure=False)
        fut.add_done_callback(self._finished)

    def _finished(self, fut: Any) -> None:  # in the client's thread
        self._done.append(fut)
        self.wake()

    def take_done(self) -> list[Done]:
        from distributed import KilledWorker  # noqa: PLC0415

        out: list[Done] = []
        while self._done:
            fut = self._done.popleft()
            with self._lock:
                batch = self._batches.pop(fut.key)
            try:
                out.append(Done(batch, fut.result().outcomes))
            except KilledWorker:
                out.append(Done(batch, None, Failure("crashed", "KilledWorker", retried=True)))
            except Exception as exc:
                out.append(Done(batch, None, Failure("error", type(exc).__name__)))
            finally:
                fut.release()
        return out

    def cancel_waiting(self) -> list[Batch]:
        return []  # a backfill's inputs stay where they are: nothing to give back

    def reconfigure(self, config: Config) -> None:
        self._config = config

    def close(self, *, wait: bool) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def describe(self) -> dict[str, Any]:
        link = getattr(self._client, "dashboard_link", None)
        return {"engine": self.name, "workers": self._workers, "threads": self._slots,
                "scheduler": self._client.scheduler.address, "dashboard": link}


def _warm() -> None:
    import dcmwatch.engine.work  # noqa: F401, PLC0415 - pydicom, numpy, the core
