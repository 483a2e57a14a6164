"""What a test executor has in common with every other: no batches to take back, nothing to
reconfigure or close. A test subclass says only how batches run and finish."""

from __future__ import annotations

from typing import Any

from dcmwatch.config import Config
from dcmwatch.engine.outcome import Batch


class FakeExecutor:
    name = "fake"
    local = False
    slots = 2

    def __init__(self) -> None:
        self.wake: Any = lambda: None

    def cancel_waiting(self) -> list[Batch]:
        return []

    def reconfigure(self, config: Config) -> None:
        return None

    def close(self, *, wait: bool) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name}
