"""RSS and CPU of a process tree, read from /proc (Linux), so every contender is measured alike.

RSS is the sum of each process's resident set (shared pages counted once per process, as `ps`
and the issue's target count them). CPU is user + system time from /proc/<pid>/stat: a snapshot
at the start and at the end of a measurement, with workers that live throughout, is exact; a
process that starts or ends in between is counted from the sampler's last look at it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return out


def tree(root: int) -> list[int]:
    """`root` and all its descendants alive now."""
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children(pid))
    return pids


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _role(pid: int, root: int) -> str:
    if pid == root:
        return "main"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read()
    except OSError:
        return f"pid {pid}"
    if b"resource_tracker" in cmd:
        return "resource_tracker"
    return f"worker {pid}"


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages split between the processes sharing them, so a sum
    over a tree is the memory the tree really holds (a sum of RSS counts shared pages N times)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def wait_settled(root: int, processes: int, timeout: float = 30.0) -> None:
    """Wait until the tree has `processes` processes and uses under 20 % of a core: workers
    started and their imports done, so a measurement does not time interpreter start-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = tree(root)
        before = sum(cpu_seconds(p) or 0.0 for p in pids)
        time.sleep(0.25)
        used = sum(cpu_seconds(p) or 0.0 for p in pids) - before
        if len(pids) >= processes and used < 0.05:
            return
    # Silently measuring anyway hid a wrong count (the pool's resource tracker, gone) behind
    # 30 s of waiting per daemon run.
    raise RuntimeError(f"the process tree of {root} did not settle at {processes} processes "
                       f"within {timeout:.0f} s")


@dataclass(slots=True)
class TreeSampler:
    """Samples a tree's summed RSS every `interval` seconds in a thread; tracks CPU per pid."""

    root: int
    interval: float = 0.02
    peak_rss: int = 0
    #: RSS of the tree at `start` (idle, for a daemon that is ready).
    start_rss: int = 0
    #: Peak of the summed PSS, sampled every `pss_every` samples (reading smaps costs more).
    peak_pss: int = 0
    pss_every: int = 10
    #: RSS of each process (by command) when the sum peaked: which process holds the memory.
    peak_by_process: dict[str, int] = field(default_factory=dict)
    _samples: int = 0
    _start_cpu: dict[int, float] = field(default_factory=dict)
    _last_cpu: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeSampler:
        for pid in tree(self.root):
            cpu = cpu_seconds(pid)
            if cpu is not None:
                self._start_cpu[pid] = cpu
        self._sample()
        self.start_rss = self.peak_rss
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        total = 0
        pids = tree(self.root)
        each = {}
        for pid in pids:
            each[pid] = rss_bytes(pid)
            total += each[pid]
            cpu = cpu_seconds(pid)
            if cpu is not None:
                self._last_cpu[pid] = cpu
        if total > self.peak_rss:
            self.peak_rss = total
            self.peak_by_process = {_role(pid, self.root): rss for pid, rss in each.items()}
        if self._samples % self.pss_every == 0:
            self.peak_pss = max(self.peak_pss, sum(pss_bytes(pid) for pid in pids))
        self._samples += 1

    def stop(self) -> TreeSampler:
        self._sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self

    @property
    def cpu(self) -> float:
        """CPU seconds the tree used between `start` and `stop`."""
        return sum(last - self._start_cpu.get(pid, 0.0) for pid, last in self._last_cpu.items())

    @property
    def root_cpu(self) -> float:
        """CPU seconds of the root process alone (the daemon's main process)."""
        return self._last_cpu.get(self.root, 0.0) - self._start_cpu.get(self.root, 0.0)
