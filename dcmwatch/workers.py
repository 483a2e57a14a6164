"""The process pool that runs `job.run`, and how it is replaced when a worker dies.

Processes, not threads: a file costs a few milliseconds of pure-Python CPU (parsing, the
de-identifier's walk, writing), and threads would share one core under the GIL (the benchmarks
show the scaling). Workers are started with the *spawn* method: the parent runs threads
(observer, scheduler) and forking a threaded process is unsafe. Each worker receives the
configuration once, through the initializer; per file only a `Task` and an `Outcome` travel.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from dcmwatch import job
from dcmwatch.config import Config

__all__ = ["BrokenProcessPool", "Pool"]


class Pool:
    def __init__(self, config: Config) -> None:
        self.size = config.workers.count
        self._config = config
        self._executor = self._new()
        self.restarts = 0

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=job.init_worker,
            initargs=(self._config,),
        )

    def submit(self, task: job.Task) -> Future[job.Outcome]:
        return self._executor.submit(job.run, task)

    def replace(self, config: Config | None = None) -> None:
        """A new pool (after a worker died, or with a reloaded config); the old one drains."""
        old = self._executor
        if config is not None:
            self._config = config
            self.size = config.workers.count  # a reload may change how many
        self._executor = self._new()
        self.restarts += 1
        old.shutdown(wait=False, cancel_futures=False)

    def warm(self) -> None:
        """Start the worker processes now, not on the first file (which would wait ~0.5 s for
        interpreters to start and import pydicom). Does not wait for them."""
        for _ in range(self.size):
            self._executor.submit(_noop)

    def shutdown(self, *, wait: bool) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)


def _noop() -> None:
    return None
