"""The three contenders, each run as its own process tree and measured the same way.

* floor: `benchmarks.floor` (plain pydicom in a pool), timed between its `ready` and its result;
* process: `dcmwatch process` as a user runs it, timed whole (interpreter and pool start-up
  included: that is what a batch costs);
* daemon: `dcmwatch run`, timed from the first rename into the inbox to the `file.processed`
  event of the last file (logged once the output is durable and the input removed).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from benchmarks.procs import TreeSampler, wait_settled

KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


@dataclass(frozen=True, slots=True)
class Rules:
    """The pixel work of the benchmark configuration: one rectangle mask and a HU threshold."""

    rect: tuple[int, int, int, int] = (0, 0, 200, 40)
    hu_below: float = -500.0
    fill_hu: float = -1000.0

    def toml(self) -> str:
        x, y, w, h = self.rect
        return f"""
[[rules]]
name = "bench-ct"
[rules.match]
Modality = "CT"
[[rules.actions]]
type = "hu_threshold"
below = {self.hu_below}
fill_hu = {self.fill_hu}
[[rules.actions]]
type = "mask"
rects = [[{x}, {y}, {w}, {h}]]
"""


def write_config(root: Path, workers: int, rules: Rules) -> Path:
    """A production-shaped configuration: full Basic Profile (no options), the rules, durable
    writes (always on), JSON logs at info, default prefetch and queue."""
    root.mkdir(parents=True, exist_ok=True)
    key = root / "secret.key"
    key.write_text(KEY_HEX + "\n")
    key.chmod(0o600)
    cfg = root / "dcmwatch.toml"
    cfg.write_text(
        f"""
[paths]
inbox = "inbox"
outbox = "outbox"
quarantine = "quarantine"
state = "state"

[workers]
count = {workers}

[log]
format = "json"
level = "info"

[deid]
key_file = "secret.key"
{rules.toml()}"""
    )
    return cfg


@dataclass(slots=True)
class Result:
    """One measured run. Rates are over `seconds`; CPU is the whole tree's user + system."""

    name: str
    workers: int
    files: int
    bytes: int
    seconds: float
    cpu: float
    peak_rss: int
    latencies_ms: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    peak_pss: int = 0

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_file(self) -> float:
        return self.cpu * 1000 / self.files if self.files else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
        return ordered[index]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "workers": self.workers, "files": self.files,
            "bytes": self.bytes, "seconds": round(self.seconds, 4),
            "files_per_s": round(self.files_per_s, 1), "mb_per_s": round(self.mb_per_s, 1),
            "latency_p50_ms": self.percentile(50), "latency_p99_ms": self.percentile(99),
            "peak_rss_mb": round(self.peak_rss / 2**20, 1),
            "peak_pss_mb": round(self.peak_pss / 2**20, 1),
            "cpu_ms_per_file": round(self.cpu_ms_per_file, 2), **self.extra,
        }


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCMWATCH")}
    # The benchmark package and the dcmwatch under test come from the harness's own tree.
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    return env


def quiesce() -> None:
    """Write back what earlier phases left dirty (the generated corpus, the last contender's
    outputs) before a contender starts: otherwise the kernel's flusher threads write it back
    during the next run, on the same two cores, and whichever contender runs next pays for the
    one before (the floor ran 434-587 files/s depending on what preceded it)."""
    os.sync()
    time.sleep(0.5)


def run_floor(root: Path, inputs: Sequence[Path], workers: int, rules: Rules,
              name: str = "floor", *, durable: bool = False) -> Result:
    quiesce()
    root.mkdir(parents=True, exist_ok=True)
    listing = root / "inputs.txt"
    listing.write_text("".join(f"{p}\n" for p in inputs))
    x, y, w, h = rules.rect
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.floor", "--workers", str(workers),
         "--rect", f"{x},{y},{w},{h}", "--out", str(root / "out"), str(listing),
         *(["--durable"] if durable else [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(),
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the floor did not start")
        sampler = TreeSampler(proc.pid).start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        sampler.stop()
        proc.stdin.write("bye\n")
        proc.stdin.flush()
        if proc.wait(60) != 0 or not line:
            raise RuntimeError("the floor failed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    got = json.loads(line)
    shutil.rmtree(root / "out", ignore_errors=True)
    return Result(name, workers, got["files"], got["bytes"], got["seconds"], sampler.cpu,
                  sampler.peak_rss, peak_pss=sampler.peak_pss)


def run_process(root: Path, folder: Path, n_files: int, n_bytes: int, workers: int,
                rules: Rules) -> Result:
    """`dcmwatch process` over a folder, as a user runs it."""
    cfg = write_config(root, workers, rules)
    quiesce()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with (root / "process.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dcmwatch", "process", "--config", str(cfg), str(folder)],
            stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=root,
        )
        sampler = TreeSampler(proc.pid).start()
        code = proc.wait()
        seconds = time.perf_counter() - t0
        sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if code != 0:
        raise RuntimeError(f"dcmwatch process exited {code}; see {root / 'process.log'}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shutil.rmtree(root / "outbox", ignore_errors=True)
    return Result("dcmwatch process", workers, n_files, n_bytes, seconds, cpu,
                  sampler.peak_rss, peak_pss=sampler.peak_pss)


def _timestamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


class DaemonRun:
    """`dcmwatch run` on a benchmark folder, its JSON log followed incrementally.

    Only the events the harness needs are parsed (a substring test first), so that following
    20,000 files costs the harness little CPU on a machine the daemon shares.
    """

    WANTED = ("daemon.started", "inbox.rescan", "file.received", "file.processed",
              "file.quarantined",
              "file.retry", "worker.crashed", "daemon.stopped")

    def __init__(self, root: Path, workers: int, rules: Rules) -> None:
        self.root = root
        self.config = write_config(root, workers, rules)
        self.inbox = root / "inbox"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.log_path = root / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_wall = 0.0
        self.events: dict[str, list[dict[str, Any]]] = {name: [] for name in self.WANTED}
        self._fh: TextIO | None = None
        self._partial = ""

    def start(self) -> DaemonRun:
        log = self.log_path.open("wb")
        self.spawned_wall = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dcmwatch", "run", "--config", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=self.root,
        )
        log.close()
        self._fh = self.log_path.open("r", errors="replace")
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def follow(self) -> None:
        assert self._fh is not None
        chunk = self._fh.read()
        if not chunk:
            return
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            for name in self.WANTED:
                if f'"{name}"' in line:
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        break
                    if event.get("event") in self.events:
                        self.events[event["event"]].append(event)
                    break

    def count(self, name: str) -> int:
        return len(self.events[name])

    def wait(self, until: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.follow()
            if until():
                return
            if self.count("file.quarantined"):
                raise RuntimeError(f"a benchmark file was quarantined; see {self.log_path}")
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited waiting for {what}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}; see {self.log_path}")
            time.sleep(0.02)

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from spawn to `daemon.started`; also waits for the first rescan to finish."""
        self.wait(lambda: self.count("daemon.started") > 0, timeout, "daemon.started")
        self.wait(lambda: self.count("inbox.rescan") > 0, timeout, "inbox.rescan")
        return _timestamp(self.events["daemon.started"][0]) - self.spawned_wall

    def wait_processed(self, n: int, timeout: float) -> None:
        self.wait(lambda: self.count("file.processed") >= n, timeout, f"{n} processed files")

    def last_processed_wall(self) -> float:
        return max(_timestamp(e) for e in self.events["file.processed"])

    def latencies(self) -> list[float]:
        """The daemon's own `latency_ms`: from its first sight of each file."""
        return [float(e["latency_ms"]) for e in self.events["file.processed"]
                if e.get("latency_ms") is not None]

    def drop_latencies(self, dropped: Sequence[float]) -> list[float]:
        """Drop → durable output, measured by the harness: the i-th file renamed into the
        inbox is the i-th claimed (events arrive in rename order and the intake is first in,
        first out), and its `file.processed` timestamp is when its output was durable. This
        includes what the daemon cannot see: the delay before the kernel's event reaches it."""
        received = [e["claim_id"] for e in self.events["file.received"]]
        if len(received) != len(dropped):
            raise RuntimeError(f"{len(received)} claims for {len(dropped)} drops; see "
                               f"{self.log_path}")
        done = {e["claim_id"]: _timestamp(e) for e in self.events["file.processed"]}
        return [(done[claim] - t) * 1000 for claim, t in zip(received, dropped, strict=True)]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def stage_copies(inputs: Sequence[Path], stage: Path) -> list[Path]:
    """Fresh copies of the inputs (the daemon consumes what it takes), flushed to disk so the
    kernel's write-back does not compete with the measured run."""
    stage.mkdir(parents=True, exist_ok=True)
    out = []
    for src in inputs:
        dst = stage / src.name
        shutil.copyfile(src, dst)
        out.append(dst)
    os.sync()
    return out


def drop(staged: Sequence[Path], inbox: Path, rate: float | None = None) -> list[float]:
    """Rename the staged files into the inbox (as an MTA or storescp would), all at once or at
    `rate` files per second. Returns the wall time of each rename."""
    t0 = time.monotonic()
    times = []
    for i, src in enumerate(staged):
        if rate is not None:
            due = t0 + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        times.append(time.time())
        os.rename(src, inbox / src.name)
    return times


def run_daemon(root: Path, inputs: Sequence[Path], n_bytes: int, workers: int, rules: Rules,
               *, name: str = "daemon e2e", rate: float | None = None,
               timeout: float = 300.0) -> Result:
    """Start the daemon on an empty inbox, drop the files in, time until the last is durable."""
    staged = stage_copies(inputs, root / "stage")
    quiesce()
    run = DaemonRun(root, workers, rules).start()
    try:
        ready_s = run.wait_ready()
        # main + workers, imports done
        wait_settled(run.pid, workers + 1)
        sampler = TreeSampler(run.pid).start()
        dropped = drop(staged, run.inbox, rate)
        run.wait_processed(len(staged), timeout)
        sampler.stop()
        seconds = run.last_processed_wall() - dropped[0]
        own = Result("", 0, 0, 0, 0.0, 0.0, 0, run.latencies())
        result = Result(name, workers, len(staged), n_bytes, seconds, sampler.cpu,
                        sampler.peak_rss, run.drop_latencies(dropped),
                        {"ready_s": round(ready_s, 3),
                         "daemon_latency_p50_ms": own.percentile(50) or 0.0,
                         "daemon_latency_p99_ms": own.percentile(99) or 0.0,
                         "main_cpu_ms_per_file": round(sampler.root_cpu * 1000 / len(staged), 2),
                         "idle_rss_mb": round(sampler.start_rss / 2**20)},
                        peak_pss=sampler.peak_pss)
        if rate is not None:
            result.extra["offered_files_per_s"] = round(rate, 1)
    finally:
        run.stop()
    shutil.rmtree(root / "outbox", ignore_errors=True)
    return result


def run_burst(root: Path, n: int, corpus_files: Sequence[Path], n_bytes: int, workers: int,
              rules: Rules, timeout: float = 600.0) -> Result:
    """`n` files already waiting in the inbox when the daemon starts (after an outage):
    time to ready, time to drain, peak RSS while they wait."""
    run = DaemonRun(root, workers, rules)
    assert len(corpus_files) == n
    old = time.time() - 3600  # they have waited: complete by age, no settling
    for path in corpus_files:
        os.utime(path, (old, old))
    quiesce()
    run.start()
    sampler = TreeSampler(run.pid, interval=0.05).start()
    try:
        ready_s = run.wait_ready(timeout=120)
        started = run.events["daemon.started"][0]
        run.wait_processed(n, timeout)
        sampler.stop()
        seconds = run.last_processed_wall() - run.spawned_wall
        result = Result("daemon burst", workers, n, n_bytes, seconds, sampler.cpu,
                        sampler.peak_rss, run.latencies(),
                        {"ready_s": round(ready_s, 3),
                         "startup_ms": float(started.get("startup_ms") or 0.0),
                         **{f"peak_rss_mb[{k}]": round(v / 2**20)
                            for k, v in sampler.peak_by_process.items()
                            if not k.startswith("worker")},
                         "peak_rss_mb[workers]": round(sum(
                             v for k, v in sampler.peak_by_process.items()
                             if k.startswith("worker")) / 2**20)},
                        peak_pss=sampler.peak_pss)
    finally:
        run.stop()
    shutil.rmtree(root / "outbox", ignore_errors=True)
    return result
