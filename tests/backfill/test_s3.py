"""Backfills from and to S3, against a real S3 server on 127.0.0.1: SeaweedFS (tests/seaweed.py).

The backfill reaches it exactly as it would reach AWS or MinIO: through s3fs, with the endpoint
and credentials from the standard AWS environment variables. The first run uses
`--local-cluster 2`, so this is also the end-to-end test of that flag."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import pipeline
from dcmwatch.backfill.driver import identity
from dcmwatch.testing.synth import find_markers
from tests.backfill.conftest import N_FILES, Bucket, journal_rows, load_config, tree
from tests.conftest import write_config

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("s3fs")
DASK_YAML = str(Path(__file__).parents[2] / "config" / "dask.yaml")


def _run(cfg: Path, root: Path, bucket: str, *extra: str) -> tuple[int, dict[str, Any], bytes]:
    cmd = [sys.executable, "-m", "dcmwatch", "process", "--config", str(cfg),
           f"s3://{bucket}/incoming", "--outbox", f"s3://{bucket}/deid",
           "--quarantine", f"s3://{bucket}/quarantine", "--local-cluster", "2",
           "--batch-files", "4", *extra]
    res = subprocess.run(cmd, capture_output=True, timeout=180, cwd=root, env=os.environ.copy(),
                         check=False)
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith(b"{")]
    summary = next((e for e in events if e["event"] == "process.finished"), {})
    return res.returncode, summary, res.stdout + res.stderr


def test_s3_source_and_destination_with_resume(tmp_path: Path, s3: Bucket, corpus: Path) -> None:
    """Listing (nested prefix), processing (outputs byte-identical to the core's), a bad and
    an empty object quarantined to S3, and a rerun that only does the objects added since."""
    config = load_config(tmp_path)
    cfg = write_config(tmp_path)
    fs, bucket = s3.fs, s3.name
    files = sorted(p for p in (corpus / "p1").rglob("*") if p.is_file())[:24]
    first, later = files[:20], files[20:]
    for p in first:
        fs.pipe_file(f"{bucket}/incoming/sub/{p.name}", p.read_bytes())
    fs.pipe_file(f"{bucket}/incoming/junk.dcm", b"not dicom" * 20)
    fs.pipe_file(f"{bucket}/incoming/empty.dcm", b"")

    code, summary, logs = _run(cfg, tmp_path, bucket)
    assert code == 1, logs[-3000:]  # the junk and the empty objects are quarantined
    assert (summary["processed"], summary["quarantined"], summary["failed"]) == (20, 2, 0)
    assert summary["quarantine_reasons"] == {"empty": 1, "not_dicom": 1}
    expected = {}
    for p in first:
        out = pipeline.process_bytes(p.read_bytes(), config)
        expected[out.relpath] = out.data
    got = {k[len(f"{bucket}/deid/"):]: fs.cat_file(k) for k in fs.find(f"{bucket}/deid")}
    assert got == expected
    junk_id = identity(config.key(), f"s3://{bucket}/incoming/junk.dcm")
    sidecar = json.loads(fs.cat_file(f"{bucket}/quarantine/{junk_id}.json"))
    assert sidecar["reason"] == "not_dicom"
    assert fs.cat_file(f"{bucket}/quarantine/{junk_id}.dcm") == b"not dicom" * 20
    empty_id = identity(config.key(), f"s3://{bucket}/incoming/empty.dcm")
    assert json.loads(fs.cat_file(f"{bucket}/quarantine/{empty_id}.json"))["reason"] == "empty"
    assert fs.cat_file(f"{bucket}/quarantine/{empty_id}.dcm") == b""
    assert len(fs.find(f"{bucket}/incoming")) == 22  # inputs untouched
    assert s3.endpoint.secret_key.encode() not in logs

    for p in later:
        fs.pipe_file(f"{bucket}/incoming/sub/{p.name}", p.read_bytes())
    code, summary, logs = _run(cfg, tmp_path, bucket, "--resume")
    assert code == 0, logs[-3000:]
    assert (summary["processed"], summary["skipped"]) == (len(later), 22)
    assert len(fs.find(f"{bucket}/deid")) == len(files)


@pytest.fixture
def dask_pair(tmp_path: Path, s3: Bucket) -> Iterator[str]:
    """A `dask scheduler` and one `dask worker` (one process, two threads) as subprocesses on
    127.0.0.1, every port chosen by the OS, the dashboards off, with the settings the systemd
    units give them (DASK_CONFIG=config/dask.yaml); the worker inherits the AWS variables
    that point at the S3 server. Yields the scheduler's address once the worker has joined;
    both process groups are ended afterwards."""
    folder = tmp_path / "dask"
    folder.mkdir()
    scheduler_file = folder / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        with (folder / f"{name}.log").open("wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dask", name, *args], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=folder, env={**os.environ, "DASK_CONFIG": DASK_YAML},
                start_new_session=True))

    def logs() -> str:
        return "\n".join((folder / f"{n}.log").read_text(errors="replace")[-2000:]
                         for n in ("scheduler", "worker") if (folder / f"{n}.log").exists())

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert procs[0].poll() is None, logs()
            assert time.monotonic() < deadline, logs()
            time.sleep(0.05)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        start("worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
              "--nworkers", "1", "--nthreads", "2", "--no-dashboard",
              "--local-directory", str(folder))
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            settings = client.run(dask.config.get, "distributed.worker.profile.enabled")
            assert list(settings.values()) == [False], logs()  # config/dask.yaml was read
        yield address
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            # The nanny's worker process is in its group: kill whatever is left of it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _process(cfg: Path, *args: str) -> tuple[int, list[dict[str, Any]], bytes]:
    """`dcmwatch process` as a subprocess: exit code, its JSON events, all it printed."""
    res = subprocess.run([sys.executable, "-m", "dcmwatch", "process", "--config", str(cfg),
                          *args], capture_output=True, timeout=120, cwd=cfg.parent,
                         env=os.environ.copy(), check=False)
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith(b"{")]
    return res.returncode, events, res.stdout + res.stderr


def _event(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [e for e in events if e["event"] == name]
    assert len(found) == 1, [e["event"] for e in events]
    return found[0]


def test_scheduler_and_worker_from_s3_to_s3_match_a_local_run(
    tmp_path: Path, s3: Bucket, corpus: Path, dask_pair: str
) -> None:
    """200 CT slices from an `s3://` prefix to an `s3://` outbox on a real scheduler and worker:
    the outputs are byte-identical to a local `dcmwatch process` of the same files into a
    folder, the journal names each output with its sha256, and `--resume` skips every input
    without writing an object again."""
    fs, bucket = s3.fs, s3.name
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    assert len(files) == N_FILES
    fs.pipe({f"{bucket}/incoming/{p.relative_to(corpus)}": p.read_bytes() for p in files})

    local = tmp_path / "local"
    local.mkdir()
    code, events, logs = _process(write_config(local), str(corpus))
    assert code == 0, logs[-3000:]
    assert _event(events, "process.finished")["processed"] == N_FILES
    expected = tree(local / "outbox")
    assert len(expected) == N_FILES

    remote = tmp_path / "remote"
    remote.mkdir()
    cfg = write_config(remote)
    args = (s3.url("incoming"), "--outbox", s3.url("deid"), "--quarantine",
            s3.url("quarantine"), "--cluster", dask_pair, "--batch-files", "8")
    code, events, logs = _process(cfg, *args)
    assert code == 0, logs[-3000:]
    started, summary = _event(events, "backfill.started"), _event(events, "process.finished")
    assert (started["engine"], started["already_done"]) == ("dask", 0)
    assert (summary["processed"], summary["quarantined"], summary["failed"],
            summary["skipped"]) == (N_FILES, 0, 0, 0)
    prefix = f"{bucket}/deid/"
    got = {k[len(prefix):]: fs.cat_file(k) for k in fs.find(prefix)}
    assert got == expected
    assert not fs.exists(f"{bucket}/quarantine")
    rows = journal_rows(remote / "state" / "backfill.sqlite")
    assert len(rows) == N_FILES
    for _ident, outcome, output, sha, _reason in rows:
        assert outcome == "processed"
        assert hashlib.sha256(got[output]).hexdigest() == sha
    written = {k: fs.info(k)["LastModified"] for k in fs.find(prefix)}
    assert find_markers(logs) == []
    assert s3.endpoint.secret_key.encode() not in logs

    code, events, logs = _process(cfg, *args, "--resume")
    assert code == 0, logs[-3000:]
    started, summary = _event(events, "backfill.started"), _event(events, "process.finished")
    assert started["already_done"] == N_FILES
    assert (summary["processed"], summary["skipped"], summary["batches"]) == (0, N_FILES, 0)
    assert not [e for e in events if e["event"].startswith("file.")]
    fs.invalidate_cache()
    assert {k: fs.info(k)["LastModified"] for k in fs.find(prefix)} == written
    assert len(journal_rows(remote / "state" / "backfill.sqlite")) == N_FILES


def test_a_bucket_that_does_not_exist_is_a_clear_error(tmp_path: Path, s3: Bucket) -> None:
    """Listing a missing bucket stops the run with `backfill.aborted` (reason `listing`) and
    exit 3, no traceback, nothing of the URL in the event."""
    cfg = write_config(tmp_path)
    code, events, logs = _process(cfg, "s3://no-such-bucket-zz/incoming")
    assert code == 3, logs[-2000:]
    aborted = _event(events, "backfill.aborted")
    assert aborted["reason"] == "listing"
    assert b"Traceback" not in logs
    assert "no-such-bucket" not in json.dumps(aborted)
