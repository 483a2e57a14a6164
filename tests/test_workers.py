"""The worker pool: files in, outcomes out; a dead worker fails only what it held; reloads;
no helper process beyond the workers themselves."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import CancelledError, Future, wait
from pathlib import Path

import pydicom
import pytest

from dcmwatch import config as config_mod
from dcmwatch.engine.outcome import Batch, Outcome, WorkItem
from dcmwatch.engine.pool import DEPTH, BrokenProcessPool, Pool
from dcmwatch.testing import write_series
from tests.conftest import write_config


def _started(pool: Pool) -> Pool:
    deadline = time.monotonic() + 60
    while pool.ready() < pool.size:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.05)
    return pool


def _batch(path: str, claim_id: str, config: config_mod.Config) -> Batch:
    return Batch((WorkItem(path, claim_id),), str(config.paths.outbox))


def _tasks(tmp_path: Path, n: int, config: config_mod.Config) -> list[Batch]:
    src = tmp_path / "src"
    write_series(src, n, rows=32, columns=32)
    work = tmp_path / "work"
    work.mkdir()
    tasks = []
    for i, path in enumerate(sorted(src.iterdir())):
        shutil.copyfile(path, work / f"c{i}.dcm")
        tasks.append(_batch(str(work / f"c{i}.dcm"), f"c{i}", config))
    return tasks


@pytest.fixture
def config(tmp_path: Path) -> config_mod.Config:
    cfg = config_mod.load(write_config(tmp_path))
    return cfg.with_secret(b"k" * 32)


def test_files_go_through_and_come_out(tmp_path: Path, config: config_mod.Config) -> None:
    pool = _started(Pool(config))
    try:
        futs = [pool.submit(t) for t in _tasks(tmp_path, 6, config)]
        outcomes = [f.result(timeout=60)[0] for f in futs]
    finally:
        pool.shutdown(wait=True)
    assert [o.status for o in outcomes] == ["processed"] * 6
    assert {o.claim_id for o in outcomes} == {f"c{i}" for i in range(6)}
    assert len({o.worker for o in outcomes}) == 2  # both workers took files
    assert all((config.paths.outbox / o.output).is_file() for o in outcomes)


def test_a_killed_worker_fails_only_what_it_held(tmp_path: Path,
                                                 config: config_mod.Config) -> None:
    """The other worker's files complete; a new worker takes the dead one's place, so later
    files still run on two."""
    pool = _started(Pool(config))
    try:
        pool.submit(_tasks(tmp_path, 1, config)[0]).result(timeout=60)
        victim, survivor = pool.pids()
        os.kill(victim, signal.SIGSTOP)  # it holds whatever it is sent, and never answers
        futs = [pool.submit(_batch(str(tmp_path / "work" / "c0.dcm"), f"x{i}", config))
                for i in range(2 * DEPTH)]
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        wait(futs, timeout=60)
        broken = [f for f in futs if isinstance(f.exception(), BrokenProcessPool)]
        done = [f for f in futs if f.exception() is None]
        assert len(broken) == DEPTH and len(done) == DEPTH
        assert {f.result()[0].worker for f in done} == {survivor}
        deadline = time.monotonic() + 30
        while len(pool.pids()) < 2 or victim in pool.pids():
            assert time.monotonic() < deadline, "no worker replaced the dead one"
            time.sleep(0.05)
        assert survivor in pool.pids()
    finally:
        pool.shutdown(wait=True)


def test_a_reload_applies_the_worker_count_and_the_new_config(
        tmp_path: Path, config: config_mod.Config) -> None:
    pool = Pool(config)
    try:
        first = pool.submit(_tasks(tmp_path, 1, config)[0]).result(timeout=60)[0]
        old = set(pool.pids())
        new = config.model_copy(update={
            "workers": config.workers.model_copy(update={"count": 3}),
            "deid": config.deid.model_copy(update={"pseudonym_prefix": "SITEB"}),
        })
        pool.replace(new)
        assert pool.size == 3
        task = _batch(str(tmp_path / "work" / "c0.dcm"), "again", config)
        second = pool.submit(task).result(timeout=60)[0]
        assert second.worker not in old  # only new workers take new files
        deadline = time.monotonic() + 30
        while set(pool.pids()) & old:  # the old ones retire once idle
            assert time.monotonic() < deadline, "the old workers did not retire"
            time.sleep(0.05)
        assert len(pool.pids()) == 3
        assert first.output == second.output  # the same file: the second write replaced it
        patient = pydicom.dcmread(config.paths.outbox / second.output).PatientID
        assert str(patient).startswith("SITEB")  # the new workers have the new config
        pool.replace()  # after a crash: same size, nothing to add
        assert len(pool.pids()) == 3
    finally:
        pool.shutdown(wait=True)


def test_shutdown_cancels_what_no_worker_holds(tmp_path: Path,
                                               config: config_mod.Config) -> None:
    pool = _started(Pool(config))
    pids = pool.pids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # nothing finishes: the rest must wait in the parent
    try:
        task = _tasks(tmp_path, 1, config)[0]
        futs: list[Future[tuple[Outcome, ...]]] = [
            pool.submit(_batch(task.items[0].source, f"x{i}", config))
                                           for i in range(2 * DEPTH + 3)]
        time.sleep(1.0)  # time to start and take their share
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    pool.shutdown(wait=True)
    cancelled = [f for f in futs if f.cancelled()]
    assert len(cancelled) == 3
    assert all(f.result()[0].status == "processed" for f in futs if not f.cancelled())
    with pytest.raises(CancelledError):
        cancelled[0].result()
    assert all(_gone(pid) for pid in pids)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_no_process_but_the_workers(tmp_path: Path) -> None:
    """No multiprocessing resource tracker (15 MB) or any other helper: the children of a
    process running a pool are exactly its workers."""
    cfg = write_config(tmp_path)
    code = (
        "import os, subprocess, sys\n"
        "from dcmwatch import config\n"
        "from dcmwatch.engine.pool import Pool\n"
        f"pool = Pool(config.load({str(cfg)!r}).with_secret(b'k' * 32))\n"
        "kids = subprocess.run(['pgrep', '-P', str(os.getpid())], capture_output=True,\n"
        "                      text=True).stdout.split()\n"
        "print(sorted(int(k) for k in kids if k) == sorted(pool.pids()), len(pool.pids()))\n"
        "pool.shutdown(wait=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == ["True", "2"]
