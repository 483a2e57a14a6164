"""Where batches run: the in-process pool or a Dask cluster, behind one small interface.

The driver submits a batch and waits for whichever finishes next; it never learns which engine
it drives. How a lost worker shows up differs, and each engine says what it means:

* Dask reschedules a dead worker's tasks by itself and raises `KilledWorker` only for a task
  that was running on `distributed.scheduler.allowed-failures` + 1 dying workers: that batch is
  the suspect (`Failure.kind == "killed"`).
* A local pool that loses a process breaks as a whole: every batch in flight fails, the
  innocent with the guilty (`"crashed"`); the driver retries them and only a single file that
  keeps crashing is declared poison.
"""

from __future__ import annotations

import logging
import multiprocessing
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dcmwatch import job
from dcmwatch.backfill.batch import Batch, FileResult, run_local, run_remote
from dcmwatch.config import Config


@dataclass(frozen=True, slots=True)
class Failure:
    kind: Literal["killed", "crashed", "error"]
    #: Exception class name (never its message).
    error: str


@dataclass(frozen=True, slots=True)
class Done:
    batch: Batch
    results: list[FileResult] | None
    failure: Failure | None = None


class Engine(Protocol):
    name: str
    #: Batches that run at once (worker threads); the default window is twice this.
    slots: int

    def submit(self, batch: Batch) -> None: ...

    def wait(self) -> list[Done]:
        """Block until at least one submitted batch is done; return those that are."""
        ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class LocalEngine:
    """Today's spawn pool (`workers.count` processes), running batches instead of files."""

    name = "local"

    def __init__(self, config: Config) -> None:
        self._config = config
        self.slots = config.workers.count
        self._executor = self._new()
        # Start the processes now (interpreter + pydicom import), not on the first batches,
        # so that the run's throughput measures the work.
        for fut in [self._executor.submit(_noop) for _ in range(self.slots)]:
            fut.result()
        self._inflight: dict[Future[list[FileResult]], tuple[Batch, ProcessPoolExecutor]] = {}
        self.restarts = 0

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.slots, mp_context=multiprocessing.get_context("spawn"),
            initializer=job.init_worker, initargs=(self._config,),
        )

    def submit(self, batch: Batch) -> None:
        fut = self._executor.submit(run_local, batch)
        self._inflight[fut] = (batch, self._executor)

    def wait(self) -> list[Done]:
        done, _ = wait(list(self._inflight), return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            batch, executor = self._inflight.pop(fut)
            try:
                out.append(Done(batch, fut.result()))
            except BrokenProcessPool:
                if executor is self._executor:  # replace once per breakage
                    self._executor = self._new()
                    self.restarts += 1
                    executor.shutdown(wait=False, cancel_futures=True)
                out.append(Done(batch, None, Failure("crashed", "BrokenProcessPool")))
            except Exception as exc:
                out.append(Done(batch, None, Failure("error", type(exc).__name__)))
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "workers": self.slots}


#: For `--local-cluster`; `config/dask.yaml` holds the same for a real cluster's scheduler and
#: workers, with the reasons (a test keeps the two equal). Measured with bench_cluster.py: a
#: LocalCluster's CPU per file went from 1.1x to 1.0x the pool's.
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


class DaskEngine:
    """A Dask distributed client: on a running scheduler, or on a `LocalCluster` it starts.

    The configuration (with the key) travels with each task: a few kilobytes against a batch
    of megabytes, and no state on the workers that a restart could lose. Use a `tls://`
    scheduler address (Dask's TLS settings) off a trusted network: the key crosses the wire.
    """

    name = "dask"

    def __init__(self, config: Config, *, address: str | None = None,
                 local_workers: int | None = None) -> None:
        import dask  # noqa: PLC0415 - the [cluster] extra, only for cluster runs
        from distributed import Client, LocalCluster, as_completed  # noqa: PLC0415

        # Dask's INFO lines (workers joining, dashboard) would each become a library.warning.
        logging.getLogger("distributed").setLevel(logging.WARNING)

        self._config = config
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
        self.slots = max(1, sum(w.get("nthreads", 1) for w in info["workers"].values()))
        self._workers = len(info["workers"])
        self._as_completed: Any = as_completed()  # type: ignore[no-untyped-call]
        self._batches: dict[str, Batch] = {}

    @property
    def client(self) -> Any:
        return self._client

    def submit(self, batch: Batch) -> None:
        key = f"dcmwatch-batch-{uuid.uuid4().hex}"
        fut = self._client.submit(run_remote, batch, self._config, key=key, pure=False)
        self._batches[key] = batch
        self._as_completed.add(fut)

    def wait(self) -> list[Done]:
        from distributed import KilledWorker  # noqa: PLC0415

        fut = next(self._as_completed)
        batch = self._batches.pop(fut.key)
        try:
            return [Done(batch, list(fut.result().results))]
        except KilledWorker:
            return [Done(batch, None, Failure("killed", "KilledWorker"))]
        except Exception as exc:
            return [Done(batch, None, Failure("error", type(exc).__name__))]
        finally:
            fut.release()

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def describe(self) -> dict[str, Any]:
        link = getattr(self._client, "dashboard_link", None)
        return {"engine": self.name, "workers": self._workers, "threads": self.slots,
                "scheduler": self._client.scheduler.address, "dashboard": link}


def _noop() -> None:
    return None


def _warm() -> None:
    import dcmwatch.backfill.batch  # noqa: F401, PLC0415 - pydicom, numpy, the core
