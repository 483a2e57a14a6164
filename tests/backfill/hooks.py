"""Test-only stand-ins for files that kill, hang or stall a worker, on either executor.

A real poison file (a crash in a C decoder, a memory blow-up, a decoder looping in C) cannot be
produced on demand. These hooks make `pipeline.process_bytes` of a file holding a marker kill
its process (`kill`), run on in Python (`slow`: the soft limit can stop it) or sit in one C call
(`stuck`: only the backstop can). They reach the workers from the test — a Dask worker plugin,
or the pool's entry point swapped for `run_in_pool` with the marker in the environment — so no
production code carries a "kill me" switch.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from dcmwatch import pipeline
from dcmwatch.config import Config
from dcmwatch.engine import work
from dcmwatch.engine.outcome import Batch, Outcome

#: "<marker>:<action>" for the pool's workers, which inherit the test's environment.
ENV = "DCMWATCH_TEST_HOOK"
POISON_MARKER = b"DCMWATCH-TEST-POISON"
SLOW_MARKER = b"DCMWATCH-TEST-SLOW"
STUCK_MARKER = b"DCMWATCH-TEST-STUCK"


def install(marker: bytes, action: str) -> None:
    original = getattr(pipeline.process_bytes, "__wrapped__", pipeline.process_bytes)

    def process_bytes(data: bytes, config: Config) -> Any:
        if marker in data:
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif action == "slow":
                for _ in range(6000):
                    time.sleep(0.01)
            else:  # one C call the soft limit cannot reach: in a main thread, not even SIGALRM
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
                time.sleep(60)
        return original(data, config)

    process_bytes.__wrapped__ = original  # type: ignore[attr-defined]
    pipeline.process_bytes = process_bytes  # type: ignore[assignment]


def uninstall() -> None:
    pipeline.process_bytes = getattr(pipeline.process_bytes, "__wrapped__",
                                     pipeline.process_bytes)


def run_in_pool(batch: Batch) -> tuple[Outcome, ...]:
    """`Pool.target` in the tests: the hook from the environment, then the real entry point."""
    marker, _, action = os.environ.get(ENV, "").partition(":")
    if marker and not hasattr(pipeline.process_bytes, "__wrapped__"):
        install(marker.encode(), action)
    return work.run_in_pool(batch)
