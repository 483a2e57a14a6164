"""The worker's step: outputs durable by default, or left pending for the daemon's I/O threads."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dcmwatch import config as config_mod
from dcmwatch import store
from dcmwatch.engine import limits, work
from dcmwatch.testing import ct_series_bytes


def _setup(tmp_path: Path) -> tuple[config_mod.Config, Path]:
    cfg = config_mod.parse('[paths]\noutbox = "out"\n', source="t", base=tmp_path)
    src = tmp_path / "in.dcm"
    src.write_bytes(ct_series_bytes(1, rows=16, columns=16)[0])
    return cfg.with_secret(b"k" * 32), src


def test_default_writes_the_output_durably(tmp_path: Path) -> None:
    cfg, src = _setup(tmp_path)
    out = work.process_file(str(src), "c1", cfg, allow_hardlinks=True)
    assert out.status == "processed" and out.pending is None
    assert (cfg.paths.outbox / out.output).is_file()


def test_defer_sync_leaves_a_hidden_temp_until_committed(tmp_path: Path) -> None:
    cfg, src = _setup(tmp_path)
    out = work.process_file(str(src), "c2", cfg, allow_hardlinks=True, defer_commit=True)
    assert out.status == "processed" and out.pending is not None
    tmp, dest = (Path(p) for p in out.pending)
    assert dest == (cfg.paths.outbox / out.output).resolve()
    assert tmp.is_file() and tmp.name.startswith(".") and not dest.exists()
    store.commit(tmp, dest)
    assert dest.is_file() and not tmp.exists()
    assert src.exists()  # the worker never removes its input


def test_an_output_folder_linked_out_of_the_outbox_is_refused(tmp_path: Path) -> None:
    """A study folder in the outbox that is a symbolic link elsewhere: the file is not
    written there (it fails as an output error), however many files the worker saw before."""
    cfg, src = _setup(tmp_path)
    first = work.process_file(str(src), "c3", cfg, allow_hardlinks=True)
    assert first.status == "processed"
    study = (cfg.paths.outbox / first.output).parents[1]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    moved = tmp_path / "moved"
    study.rename(moved)
    study.symlink_to(outside, target_is_directory=True)
    work._proven.clear()  # a new worker: the folder was proven before it became a link
    again = work.process_file(str(src), "c4", cfg, allow_hardlinks=True)
    assert again.status == "quarantined" and again.reason == "output"
    assert list(outside.rglob("*")) == []


def test_the_backstop_acts_within_its_poll_interval() -> None:
    """Arming costs an assignment per file; the watcher still sees a passed deadline."""
    code = ("import time\nfrom dcmwatch.engine import limits\n"
            "limits._backstop().arm(time.monotonic() + 0.2)\ntime.sleep(5)\n")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], timeout=30, check=False)
    elapsed = time.monotonic() - t0
    assert proc.returncode == limits.BACKSTOP_EXIT
    assert elapsed < 4.0
