"""Backfills from and to S3, against a real S3 server on 127.0.0.1: SeaweedFS (tests/seaweed.py).

The backfill reaches it exactly as it would reach AWS or MinIO: through s3fs, with the endpoint
and credentials from the standard AWS environment variables. The first run uses
`--local-cluster 2`, so this is also the end-to-end test of that flag."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import pipeline
from dcmwatch.backfill.driver import identity
from tests.backfill.conftest import Bucket, load_config
from tests.conftest import write_config

pytest.importorskip("distributed")
pytest.importorskip("s3fs")


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
    """Listing (paginated, nested prefix), processing (outputs byte-identical to the core's),
    a bad object quarantined to S3, and a rerun that only does the objects added since."""
    config = load_config(tmp_path)
    cfg = write_config(tmp_path)
    fs, bucket = s3.fs, s3.name
    files = sorted(p for p in (corpus / "p1").rglob("*") if p.is_file())[:24]
    first, later = files[:20], files[20:]
    for p in first:
        fs.pipe_file(f"{bucket}/incoming/sub/{p.name}", p.read_bytes())
    fs.pipe_file(f"{bucket}/incoming/junk.dcm", b"not dicom" * 20)

    code, summary, logs = _run(cfg, tmp_path, bucket)
    assert code == 1, logs[-3000:]  # the junk object is quarantined
    assert (summary["processed"], summary["quarantined"], summary["failed"]) == (20, 1, 0)
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
    assert len(fs.find(f"{bucket}/incoming")) == 21  # inputs untouched
    assert s3.endpoint.secret_key.encode() not in logs

    for p in later:
        fs.pipe_file(f"{bucket}/incoming/sub/{p.name}", p.read_bytes())
    code, summary, logs = _run(cfg, tmp_path, bucket, "--resume")
    assert code == 0, logs[-3000:]
    assert (summary["processed"], summary["skipped"]) == (len(later), 21)
    assert len(fs.find(f"{bucket}/deid")) == len(files)
