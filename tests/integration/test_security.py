"""Security: what lands in the inbox cannot make dcmwatch read, follow or write elsewhere, and
everything it creates is closed to the world. PHI markers are checked in logs, sidecars and
paths in every scenario."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from dcmwatch.testing import MARKERS, ct_series_bytes, write_series
from tests.conftest import DaemonProcess, outputs, write_config
from tests.integration.test_daemon import assert_no_phi, phi_name

pytestmark = pytest.mark.integration

TINY = {"rows": 16, "columns": 16}


def test_links_fifos_and_devices_are_never_followed_or_read(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    d = DaemonProcess(cfg, tmp_path)
    secret = tmp_path / "outside" / "secret.dcm"
    secret.parent.mkdir()
    secret.write_bytes(ct_series_bytes(1, seed=9, **TINY)[0])  # a valid DICOM: tempting
    before = secret.read_bytes()
    d.inbox.mkdir()
    try:
        d.start()
        os.symlink(secret, d.inbox / phi_name(1))
        os.symlink(tmp_path / "outside", d.inbox / phi_name(2))  # a link to a folder
        os.link(secret, d.inbox / phi_name(3))  # a hard link to a file outside
        os.mkfifo(d.inbox / phi_name(4))
        os.mknod(d.inbox / phi_name(5), 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
        write_series(d.inbox, 1, **TINY)  # and one good file after them
        d.wait_outputs(1)
        d.wait_event("file.quarantined", count=5, timeout=30)
        assert d.proc is not None and d.proc.poll() is None
        assert d.stop() == 0
    finally:
        d.kill()
    reasons = [e["reason"] for e in d.events() if e.get("event") == "file.quarantined"]
    assert reasons == ["not_regular_file"] * 5, reasons
    # The outside file is untouched, and nothing of it reached the outbox or the quarantine.
    assert secret.read_bytes() == before
    assert secret.stat().st_nlink == 1
    assert len(outputs(d.outbox)) == 1
    # The quarantine holds placeholders only: no link, no FIFO, no device, no copy of the secret.
    for entry in d.quarantine.iterdir():
        st = entry.lstat()
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1, entry.name
        if entry.suffix == ".dcm":
            assert entry.read_bytes() == b""
    assert list(d.inbox.rglob("*")) == []
    assert_no_phi(d)


def test_tag_values_cannot_steer_the_output_path(tmp_path: Path) -> None:
    """Layout fields filled with `..`, `/`, NUL and very long values stay one component each,
    inside the outbox."""
    from dcmwatch import config as config_mod
    from dcmwatch.engine import work
    from tests.conftest import KEY_HEX

    layout = "{Modality}/{SeriesNumber}/{InstanceNumber}/{SOPInstanceUID}.dcm"
    cfg = config_mod.load(write_config(tmp_path, f'[output]\nlayout = "{layout}"\n'))
    cfg = cfg.with_secret(bytes.fromhex(KEY_HEX))
    hostile = ["..", "../../../../tmp/evil", "/etc/passwd", "a\0b", "x" * 5000, ".", "...",
               "\\..\\..", "~root", " .. "]
    processed = 0
    for i, value in enumerate(hostile):
        ds = pydicom.dcmread(io.BytesIO(ct_series_bytes(1, seed=i, **TINY)[0]))
        ds.Modality = value
        ds["SeriesNumber"].VR = "LO"
        ds.SeriesNumber = value
        src = tmp_path / f"in{i}.dcm"
        ds.save_as(src, enforce_file_format=True)
        outcome = work.process_file(str(src), f"c{i}", cfg)
        if outcome.status != "processed":
            assert outcome.status == "quarantined" and outcome.reason != "internal", outcome
            continue
        processed += 1
        dest = (cfg.paths.outbox / outcome.output).resolve()
        assert cfg.paths.outbox.resolve() in dest.parents
        parts = Path(outcome.output).parts
        assert len(parts) == 4 and all(p not in ("..", ".", "") for p in parts), parts
        assert all(len(p) <= 68 and "\0" not in p and "/" not in p for p in parts), parts
    assert processed == len(hostile)  # sanitised, not refused: the values are not the file's fault
    assert not (Path("/tmp") / "evil").exists()


def test_created_files_and_folders_are_closed_to_the_world(tmp_path: Path) -> None:
    """Whatever umask the daemon is started with, nothing it creates is world-accessible."""
    cfg = write_config(tmp_path)
    d = DaemonProcess(cfg, tmp_path)
    old = os.umask(0)
    try:
        d.start()
    finally:
        os.umask(old)
    try:
        write_series(d.inbox, 2, **TINY)
        (d.inbox / "bad.dcm").write_bytes(b"junk" * 100)
        d.wait_outputs(2)
        d.wait_event("file.quarantined")
        assert d.stop() == 0
    finally:
        d.kill()
    for folder in (d.outbox, d.quarantine, d.state):
        for p in [folder, *folder.rglob("*")]:
            mode = p.lstat().st_mode
            assert mode & stat.S_IRWXO == 0, f"{p} is world-accessible ({oct(mode)})"
            if p.is_file():
                assert mode & (stat.S_IWGRP | stat.S_IXGRP) == 0, f"{p} ({oct(mode)})"


def test_group_readable_key_file_is_refused(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    (tmp_path / "secret.key").chmod(0o640)
    res = subprocess.run([sys.executable, "-m", "dcmwatch", "run", "--config", str(cfg)],
                         capture_output=True, timeout=60, check=False, cwd=tmp_path)
    assert res.returncode == 2
    assert b"chmod 600" in res.stderr + res.stdout
    assert not (tmp_path / "outbox").exists()
    assert MARKERS.patient_id.encode() not in res.stderr + res.stdout
