"""A Dask LocalCluster shared by the backfill tests, 200 synthetic inputs and their expected
outputs computed by the daemon's own per-file step (`work.run_one`) in this process."""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dcmwatch import config as config_mod
from dcmwatch import keys
from dcmwatch.config import Config
from dcmwatch.engine import work
from dcmwatch.testing.synth import write_series
from tests.conftest import write_config
from tests.seaweed import S3Endpoint, SeaweedMissing, SeaweedServer

distributed = pytest.importorskip("distributed")
SMALL = {"rows": 32, "columns": 32}
N_FILES = 200


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """Two single-threaded worker processes on loopback. A task is blamed for a dead worker
    after two deaths (allowed-failures 1), so a poison file is isolated quickly. Each worker
    holds one task at a time while the scheduler queues them (worker-saturation 1.0); when it
    does not (few tasks known to it), a neighbour can share the blame, and the driver reruns
    a lone suspect alone before quarantining it."""
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}):
        c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None)
        try:
            yield c
        finally:
            c.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """SeaweedFS on loopback for the session (see tests/seaweed.py). Without the `weed`
    binary the S3 tests skip, except on CI, where the [test] extra must have brought it."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    try:
        server.start()
    except SeaweedMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    except BaseException:
        server.stop()
        raise
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Bucket:
    """A test's own bucket on the session's server, and an s3fs filesystem to look into it."""

    name: str
    fs: Any
    endpoint: S3Endpoint

    def url(self, path: str = "") -> str:
        return f"s3://{self.name}/{path}"


@pytest.fixture
def s3(s3_server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A fresh bucket, with the standard AWS variables pointing this process and the
    subprocesses it starts (copies of `os.environ`) at the server."""
    endpoint = s3_server.endpoint
    for name, value in endpoint.env().items():
        monkeypatch.setenv(name, value)
    fs = endpoint.filesystem()
    bucket = f"test-{secrets.token_hex(6)}"
    fs.mkdir(bucket)
    return Bucket(bucket, fs, endpoint)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 synthetic CT files in 4 series, in nested folders."""
    root = tmp_path_factory.mktemp("corpus")
    for i in range(4):
        write_series(root / f"p{i}" / "s", N_FILES // 4, seed=i, patient_index=i, **SMALL)
    return root


def load_config(root: Path, extra: str = "") -> Config:
    cfg = config_mod.load(write_config(root, extra))
    return cfg.with_secret(keys.resolve(cfg.deid, {}, create=False).key)


@pytest.fixture(scope="session")
def expected(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The in-process outputs: `work.run_one`, file by file, as the daemon runs it."""
    root = tmp_path_factory.mktemp("inproc")
    config = load_config(root)
    for i, path in enumerate(sorted(p for p in corpus.rglob("*") if p.is_file())):
        outcome = work.process_file(str(path), f"t{i}", config, allow_hardlinks=True)
        assert outcome.status == "processed", outcome
    return tree(root / "outbox")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def journal_rows(path: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT ident, outcome, output, sha256_out, reason FROM backfill").fetchall()
    finally:
        db.close()


def assert_journal_agrees(journal: Path, outbox: Path, n: int) -> None:
    rows = journal_rows(journal)
    assert len(rows) == n
    assert len({r[0] for r in rows}) == n
    for _ident, outcome, output, sha, _reason in rows:
        assert outcome == "processed"
        assert hashlib.sha256((outbox / output).read_bytes()).hexdigest() == sha
