"""Large native multi-frames in bounded memory (issue 21, point 1).

The acceptance test measures a real process: a subprocess reads, de-identifies and masks a
generated >= 200 MB multi-frame exactly as a worker does (`store.read_input`,
`pipeline.process_bytes`, `store.write_durable`) and reports its own VmHWM from /proc. The
output is checked by an oracle that shares no code with our writer or reader: dcmdump says the
file parses and where its pixels are, numpy reads every frame from the raw bytes, and each is
compared with the generator's closed form with the mask applied.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from dcmwatch import config as config_mod
from dcmwatch import footprint, pipeline
from dcmwatch.testing import large
from tests.conftest import KEY_HEX, write_config

MASK_RULE = """
[[rules]]
name = "tomo-banner"
[rules.match]
Modality = "MG"
[[rules.actions]]
type = "mask"
rects = [[0, 0, 200, 40], [900, 700, 124, 68]]
fill = 0
"""
#: (x, y, width, height) of the rectangles above.
RECTS = ((0, 0, 200, 40), (900, 700, 124, 68))

_MEASURE = r"""
import json, sys
from pathlib import Path
from dcmwatch import config, dicomfile, pipeline, store
dicomfile.silence_library_messages()
cfg = config.load(sys.argv[1]).with_secret(bytes.fromhex(sys.argv[2]))
pipeline.build_steps(cfg)
start_kb = int(dict(line.split(":", 1) for line in Path("/proc/self/status").read_text()
                    .splitlines())["VmRSS"].split()[0])
got = store.read_input(sys.argv[3], max_bytes=cfg.limits.max_file_bytes)
result = pipeline.process_bytes(got.data, cfg)
store.write_durable(Path(sys.argv[4]), result.data, tag="large", mode=0o640)
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"hwm_kb": int(status["VmHWM"].split()[0]), "start_kb": start_kb,
                  "rules": list(result.rules),
                  "type": type(result.data).__name__}))
"""


def _dcmdump_pixel_length(path: Path) -> tuple[int, str]:
    """(Pixel Data length, NumberOfFrames) as dcmdump reads them from the file."""
    out = subprocess.run(
        ["dcmdump", "-q", "+P", "7fe0,0010", "+P", "0028,0008", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    pixel = lines["(7fe0,0010)"]
    frames = lines["(0028,0008)"].split("[")[1].split("]")[0]
    return int(pixel.split("#")[1].split(",")[0]), frames


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="dcmtk's dcmdump is not installed")
def test_a_200_mb_multiframe_is_masked_in_at_most_one_and_a_half_times_its_size(
    tmp_path: Path,
) -> None:
    frames, rows, columns = 140, 768, 1024
    generated = large.write_multiframe(tmp_path / "tomo.dcm", frames=frames, rows=rows,
                                       columns=columns)
    size = generated.path.stat().st_size
    assert size >= 200 * 10**6
    cfg = write_config(tmp_path, MASK_RULE)
    out_path = tmp_path / "out.dcm"
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(cfg), KEY_HEX, str(generated.path), str(out_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["rules"] == ["tomo-banner"]
    assert report["type"] == "bytearray"  # the in-place path ran, not the fallback
    peak = report["hwm_kb"] * 1024
    assert peak <= 1.5 * size, f"peak RSS {peak / 2**20:.0f} MB for a {size / 2**20:.0f} MB file"
    # The estimate the engine admits files by holds for what the process really needed.
    with generated.path.open("rb") as fh:
        estimate = footprint.peak_bytes(fh.read(64 << 10), size)
    assert peak - report["start_kb"] * 1024 <= estimate

    # The oracle: dcmdump parses the output and says how long Pixel Data is; it is the last
    # element, so its value is the file's last bytes. numpy reads them, nothing of ours does.
    length, dumped_frames = _dcmdump_pixel_length(out_path)
    assert (length, dumped_frames) == (generated.pixel_bytes, str(frames))
    out_size = out_path.stat().st_size
    pixels = np.memmap(out_path, dtype="<u2", mode="r", offset=out_size - length,
                       shape=(frames, rows, columns))
    head = out_path.read_bytes()[: out_size - length]
    assert large.PATIENT_NAME.encode() not in head
    assert large.PATIENT_ID.encode() not in head
    for f in range(frames):
        expected = large.expected_frame(f, rows, columns)
        for x, y, w, h in RECTS:
            expected[y : y + h, x : x + w] = 0
        assert np.array_equal(pixels[f], expected), f"frame {f + 1} differs"


BUNDLED = ("CT_small.dcm", "MR_small.dcm", "MR_small_padded.dcm", "MR_small_implicit.dcm",
           "MR_small_bigendian.dcm", "SC_rgb_small_odd.dcm", "liver_1frame.dcm", "image_dfl.dcm",
           "ExplVR_LitEndNoMeta.dcm", "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm", "rtplan.dcm",
           "rtplan_truncated.dcm")


@pytest.mark.parametrize("name", BUNDLED)
def test_a_buffer_gives_the_same_output_as_bytes(tmp_path: Path, name: str) -> None:
    """The in-place path (a bytearray input) writes exactly what the ordinary path writes,
    with and without a rule that edits pixels, on pydicom's bundled files (native, implicit,
    big endian, encapsulated, no pixels)."""
    raw = Path(str(get_testdata_file(name))).read_bytes()
    for extra in ("", '[[rules]]\nname = "all"\n[rules.match]\n[[rules.actions]]\n'
                      'type = "mask"\nrects = [[0, 0, 4, 3]]\nfill = 0\n'):
        cfg = config_mod.load(write_config(tmp_path, extra)).with_secret(bytes.fromhex(KEY_HEX))
        try:
            expected = pipeline.process_bytes(raw, cfg)
        except Exception as exc:
            with pytest.raises(type(exc)):
                pipeline.process_bytes(bytearray(raw), cfg)
            continue
        got = pipeline.process_bytes(bytearray(raw), cfg)
        assert bytes(got.data) == expected.data
        assert (got.relpath, got.rules, got.sha256_in) == (
            expected.relpath, expected.rules, expected.sha256_in)
