"""The README's first hour, as a newcomer follows it: its two-device site configuration, the real
daemon, dcmtk's `storescp` started with the README's flags writing into the inbox, and
`storescu` sending an uncompressed CT and a JPEG 2000 MR (proposed with `-xv`, as the README
says). Both come out de-identified; the CT under the README's CT rule."""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from tests.conftest import DaemonProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("storescp") is None or shutil.which("storescu") is None,
                       reason="needs dcmtk's storescp and storescu"),
]

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _site_config() -> str:
    section = _readme().split("## A site: two devices, one inbox", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, flags=re.S).group(1)  # type: ignore[union-attr]


def _storescp_args(inbox: Path, port: int) -> list[str]:
    """The README's storescp line, with this test's inbox and port."""
    line = next(line for line in _readme().splitlines() if line.startswith("storescp "))
    args = shlex.split(line)
    assert {"+xa", "-fe", "-od"} <= set(args)
    args[args.index("-od") + 1] = str(inbox)
    args[-1] = str(port)
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _send(port: int, file: str, *options: str) -> None:
    res = subprocess.run(["storescu", "-aec", "DCMWATCH", *options, "127.0.0.1", str(port), file],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0 and "E:" not in res.stderr, res.stderr


def test_storescp_feeds_the_readme_site(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text(_site_config())
    d = DaemonProcess(cfg, tmp_path)
    port = _free_port()
    scp = None
    try:
        d.start()
        scp = subprocess.Popen(_storescp_args(d.inbox, port), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:  # storescp is listening once a connection is accepted
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "storescp did not start"
                time.sleep(0.1)
        ct = get_testdata_file("CT_small.dcm")
        mr = get_testdata_file("MR_small_jp2klossless.dcm")
        assert ct is not None and mr is not None
        _send(port, str(ct))
        _send(port, str(mr), "-xv")
        done = d.wait_event("file.processed", count=2, timeout=60)
        assert d.stop() == 0
    finally:
        if scp is not None:
            scp.terminate()
            scp.wait(timeout=10)
        d.kill()
    assert sorted(tuple(e["rules"]) for e in done) == [(), ("ct-main",)]
    outputs = sorted(d.outbox.rglob("*.dcm"))
    assert len(outputs) == 2
    modalities = sorted(str(dcmread(p).Modality) for p in outputs)
    assert modalities == ["CT", "MR"]
    assert all(str(dcmread(p).PatientIdentityRemoved) == "YES" for p in outputs)
    assert not list(d.quarantine.iterdir())
