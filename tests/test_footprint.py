"""`footprint.peak_bytes`: the per-file memory estimate the engine admits files by.

The estimate is checked against a measured peak in tests/test_large_files.py; here, that each
path a file can take gets its own formula, from the first bytes alone.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file

from dcmwatch import footprint
from dcmwatch.store import IN_PLACE_BYTES
from dcmwatch.testing import large

HEAD = 64 << 10


def test_a_large_native_file_needs_its_size_and_a_header_allowance(tmp_path: Path) -> None:
    mf = large.write_multiframe(tmp_path / "mf.dcm", frames=12)
    size = mf.path.stat().st_size
    assert size >= IN_PLACE_BYTES
    head = mf.path.read_bytes()[:HEAD]
    assert footprint.peak_bytes(head, size) == size + footprint.HEADER_ALLOWANCE


def test_a_small_native_file_is_held_several_times() -> None:
    raw = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
    assert footprint.peak_bytes(raw[:HEAD], len(raw)) == footprint.COPIES * len(raw)


def test_a_compressed_file_adds_its_declared_decoded_frames() -> None:
    raw = Path(str(get_testdata_file("JPEG2000.dcm"))).read_bytes()
    declared = 1024 * 256 * 1 * 2  # Rows x Columns x Samples x 16 bits, one frame
    got = footprint.peak_bytes(raw[:HEAD], len(raw))
    assert got == 3 * len(raw) + footprint.DECODED_COPIES * declared
    meta_end = 144 + int.from_bytes(raw[140:144], "little")  # (0002,0000) says where it ends
    cut = raw[:meta_end]  # the file meta only: no Rows or Columns to read
    assert footprint.peak_bytes(cut, len(raw)) == (
        3 * len(raw) + footprint.DECODED_COPIES * footprint.DECODED_PER_BYTE * len(raw))


def test_anything_unreadable_is_assumed_held_as_bytes() -> None:
    assert footprint.peak_bytes(b"not dicom at all", 10**9) == footprint.COPIES * 10**9
    assert footprint.peak_bytes(b"", 100) == footprint.COPIES * 100
