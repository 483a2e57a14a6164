"""Admission by memory: a file starts only when its estimated peak fits beside the files
running, so a burst of large files slows down instead of being killed by the cgroup.

Each file's need is estimated before it is read (`dcmwatch.footprint`: from its size and, for a
file large enough to matter, its first bytes). A batch runs its files one after the other in
one worker, so its need is its largest file's. The budget is `[limits] memory_budget_mb`, or,
when that is 0, half of what the service may use: the cgroup's `memory.max` (systemd's
`MemoryMax=`) when it is set, else the machine's memory. A file whose need exceeds the whole
budget can never run and is quarantined (`too_large_for_budget`) instead of looping.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from dcmwatch import footprint
from dcmwatch.config import Config

#: Below this a file's head is not read: its estimate from the size alone is small anyway.
HEAD_FROM: Final = 1 << 20
HEAD_BYTES: Final = 64 << 10
REASON: Final = "too_large_for_budget"
_CGROUP_MAX: Final = Path("/sys/fs/cgroup/memory.max")


def estimate(path: str, size: int) -> int:
    """Peak bytes processing the file at `path` (`size` bytes) should need. Reads at most
    `HEAD_BYTES`, never follows a link; an unreadable head estimates from the size alone."""
    head = b""
    if size >= HEAD_FROM:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            pass
        else:
            try:
                head = os.read(fd, HEAD_BYTES)
            except OSError:
                head = b""
            finally:
                os.close(fd)
    return footprint.peak_bytes(head, size)


def budget_bytes(config: Config) -> int:
    """The configured budget, or half of what this service may use."""
    if config.limits.memory_budget_mb:
        return config.limits.memory_budget_mb << 20
    return available_bytes() // 2


def available_bytes() -> int:
    """The cgroup's memory.max when it is a number (systemd's MemoryMax=), else MemTotal."""
    try:
        text = _CGROUP_MAX.read_text().strip()
        if text.isdigit():
            return int(text)
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) << 10
    except OSError:
        pass
    return 4 << 30  # unknown: a small gateway's memory
