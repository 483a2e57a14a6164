"""What was stripped from compressed Pixel Data reaches the log as numbers, never as content;
an unwalkable stream is quarantined with its reason. The daemon and `dcmwatch process`."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from dcmwatch import cli
from tests.conftest import DaemonProcess, outputs, write_config

from ._streams import MARK, encapsulated, even, frames, output, plant_jpeg, with_fragments
from ._support import read


def _planted() -> bytes:
    ds = read("SC_rgb_jpeg_dcmtk.dcm")
    return output(with_fragments(ds, [even(plant_jpeg(frames(ds)[0]))], bot=MARK + b"-bot!"))


def _video() -> bytes:
    """A JPEG frame under an MPEG-4 syntax: a stream dcmwatch never walks."""
    ds = read("SC_rgb_jpeg_dcmtk.dcm")
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
    ds.SOPInstanceUID = ds.SOPInstanceUID + ".7"
    ds.PixelData = encapsulated([even(frames(ds)[0] + MARK)])
    return output(ds)


#: Off, so that the stream check itself is what refuses the video file (with the decode check on,
#: pydicom finds no decoder for it first and the file is quarantined as ``pixel_data``).
NO_DECODE_CHECK = "\n[limits]\nverify_compressed = false\n"


def _check(events: list[dict[str, object]], texts: list[str]) -> None:
    [cleaned] = [e for e in events if e["event"] == "pixels.stream_cleaned"]
    removed = cleaned["removed"]
    assert isinstance(removed, dict)
    assert removed["COM"]["count"] == 2 and removed["APP1"]["count"] == 2
    assert cleaned["bytes_in"] > cleaned["bytes_out"]  # type: ignore[operator]
    [quarantined] = [e for e in events if e["event"] == "file.quarantined"]
    assert quarantined["reason"] == "pixel_stream_unsupported"
    for text in texts:
        assert MARK.decode() not in text


def test_batch_logs_counts_and_quarantines_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, NO_DECODE_CHECK)
    src = tmp_path / "scans"
    src.mkdir()
    (src / "a.dcm").write_bytes(_planted())
    (src / "b.dcm").write_bytes(_video())
    assert cli.main(["process", "--config", str(cfg), str(src)], env={}) == 1  # a quarantine
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    sidecars = [p.read_text() for p in (tmp_path / "quarantine").rglob("*.json")]
    assert [json.loads(s)["reason"] for s in sidecars] == ["pixel_stream_unsupported"]
    [out] = outputs(tmp_path / "outbox")
    assert MARK not in out.read_bytes()
    expected = read("SC_rgb_jpeg_dcmtk.dcm").PhotometricInterpretation
    assert pydicom.dcmread(out).PhotometricInterpretation == expected
    [cleaned] = [e for e in events if e["event"] == "pixels.stream_cleaned"]
    assert cleaned["removed"]["COM"]["count"] == 2
    for text in [captured.out, captured.err, *sidecars]:
        assert MARK.decode() not in text


@pytest.mark.integration
def test_daemon_logs_counts_and_quarantines_video(tmp_path: Path) -> None:
    daemon = DaemonProcess(write_config(tmp_path, NO_DECODE_CHECK), tmp_path)
    try:
        daemon.start()
        for name, data in (("a.dcm", _planted()), ("b.dcm", _video())):
            tmp = daemon.inbox / f".{name}.part"
            tmp.write_bytes(data)
            tmp.rename(daemon.inbox / name)
        daemon.wait_event("file.quarantined", timeout=60)
        daemon.wait_outputs(1, timeout=60)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    [out] = outputs(daemon.outbox)
    texts = [daemon.log_text(), *(p.read_text() for p in daemon.quarantine.glob("*.json"))]
    assert MARK not in out.read_bytes()
    _check(daemon.events(), texts)
