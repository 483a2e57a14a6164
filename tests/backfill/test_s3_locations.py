"""`locations` and `sources` against a real S3 server (SeaweedFS, tests/seaweed.py): the answers
a mock need not give the way S3 does (ranged reads of empty objects, missing keys, listing
past one page, keys that need URL encoding) reach the backfill as they would from AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dcmwatch.backfill import locations, sources
from dcmwatch.errors import EmptyFileError, InputError, TooLargeError, TransientError
from tests.backfill.conftest import Bucket
from tests.seaweed import SeaweedServer, listening

pytest.importorskip("s3fs")


def test_the_server_listens_only_on_its_named_loopback_ports(s3_server: SeaweedServer) -> None:
    """Every port `weed server` binds is one the fixture named (picked free): none of its
    fixed defaults (8333, 8888, 9333, the Iceberg and Lance catalogs …) that would collide
    with another run on the machine, and nothing beyond 127.0.0.1."""
    assert s3_server.proc is not None
    bound = listening(s3_server.proc.pid)
    assert bound == {("127.0.0.1", port) for port in s3_server.ports.values()}
    assert len(bound) == 8


def test_an_empty_object_is_an_empty_file_as_a_local_one_is(tmp_path: Path, s3: Bucket) -> None:
    """S3 answers the ranged GET of an empty object with 416 InvalidRange: the read says
    "empty" (quarantined), as for an empty local file, not a transient failure that every
    rerun would meet again."""
    s3.fs.pipe_file(f"{s3.name}/in/empty.dcm", b"")
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(EmptyFileError) as local:
        locations.read(str(tmp_path / "empty.dcm"), max_bytes=1000)
    with pytest.raises(EmptyFileError) as remote:
        locations.read(s3.url("in/empty.dcm"), max_bytes=1000)
    assert remote.value.reason == local.value.reason == "empty"
    assert str(remote.value) == str(local.value)


def test_missing_objects_and_sizes(s3: Bucket) -> None:
    """A key or bucket that is not there is an input error (gone), not transient; the size
    limit holds at its edge through the ranged read."""
    with pytest.raises(InputError) as gone:
        locations.read(s3.url("in/nope.dcm"), max_bytes=100)
    assert not isinstance(gone.value, TransientError)
    with pytest.raises(InputError):
        locations.read("s3://no-such-bucket-dcmwatch/in/nope.dcm", max_bytes=100)
    s3.fs.pipe_file(f"{s3.name}/in/ten.dcm", b"0123456789")
    assert locations.read(s3.url("in/ten.dcm"), max_bytes=10) == b"0123456789"
    with pytest.raises(TooLargeError):
        locations.read(s3.url("in/ten.dcm"), max_bytes=9)


def test_listing_past_one_page_and_awkward_keys(s3: Bucket) -> None:
    """1,005 keys in nested folders take two ListObjectsV2 pages; keys with spaces, '+', '%',
    '?', non-ASCII letters are listed as they were put and read back; hidden names and folder
    markers are left out; nothing outside the prefix is listed."""
    bulk = {f"{s3.name}/in/d{i % 7}/f{i:05d}.dcm": b"x" for i in range(1005)}
    odd = ["in/a b.dcm", "in/Müller+1.dcm", "in/x%20y.dcm", "in/q?r=1&s.dcm", "in/x/y/z/deep.dcm"]
    s3.fs.pipe({**bulk, **{f"{s3.name}/{k}": k.encode() for k in odd},
                f"{s3.name}/in/.hidden": b"h", f"{s3.name}/in/d1/.DS_Store": b"h",
                f"{s3.name}/in/folder/": b"", f"{s3.name}/inbox/other.dcm": b"o"})
    listed = list(sources.iter_sources([s3.url("in")]))
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted([f"s3://{k}" for k in bulk] + [s3.url(k) for k in odd])
    for key in odd:
        assert locations.read(s3.url(key), max_bytes=100) == key.encode()


def test_write_and_quarantine_round_trip(s3: Bucket) -> None:
    """An output is one PUT, replaced whole by a recomputation; a quarantined original is
    copied byte for byte beside its sidecar, and the input stays where it was."""
    out = s3.url("deid")
    locations.write(out, "a/b/c.dcm", b"first", tag="t", mode=0o640)
    locations.write(out, "a/b/c.dcm", b"second", tag="t", mode=0o640)
    assert s3.fs.cat_file(f"{s3.name}/deid/a/b/c.dcm") == b"second"
    s3.fs.pipe_file(f"{s3.name}/in/bad.dcm", b"bad bytes")
    locations.quarantine(s3.url("in/bad.dcm"), s3.url("q"), "abc123", {"reason": "not_dicom"},
                         mode=0o640)
    assert s3.fs.cat_file(f"{s3.name}/q/abc123.dcm") == b"bad bytes"
    assert json.loads(s3.fs.cat_file(f"{s3.name}/q/abc123.json")) == {"reason": "not_dicom"}
    assert s3.fs.cat_file(f"{s3.name}/in/bad.dcm") == b"bad bytes"
