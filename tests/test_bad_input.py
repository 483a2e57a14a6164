"""The bad-input battery: every malformed file becomes an `InputError` outcome, nothing else.

Each case runs through the worker's error boundary (`work.run_one`, which reads the file from
disk like the daemon's workers do) and must come out `quarantine` with the reason of an
`InputError` subclass, never `internal` (a bug) and never an exception. Memory is checked with
tracemalloc where a file claims far more than it holds.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dcmwatch import config as config_mod
from dcmwatch import dicomfile, errors
from dcmwatch.config import Config
from dcmwatch.engine import work
from dcmwatch.engine.outcome import Outcome
from dcmwatch.testing import ct_series, ct_series_bytes, to_bytes
from tests.conftest import KEY_HEX, write_config

TINY = {"rows": 16, "columns": 16}

def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def input_reasons() -> frozenset[str]:
    import dcmwatch.pipeline  # noqa: F401 - registers the pixel errors (TransformError subclasses)

    return frozenset(c.reason for c in [errors.InputError, *_subclasses(errors.InputError)])


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return config_mod.load(write_config(tmp_path)).with_secret(bytes.fromhex(KEY_HEX))


def run_file(config: Config, data: bytes, tmp_path: Path, name: str = "x.dcm") -> Outcome:
    path = tmp_path / name
    path.write_bytes(data)
    return work.process_file(str(path), "claim-test", config)


def assert_quarantined(outcome: Outcome, *reasons: str) -> None:
    assert outcome.status == "quarantined", outcome
    assert outcome.reason in input_reasons(), outcome
    if reasons:
        assert outcome.reason in reasons, outcome


def good_bytes() -> bytes:
    return ct_series_bytes(1, **TINY)[0]


def with_changes(change: Callable[[Dataset], None], *, syntax: str = ExplicitVRLittleEndian,
                 rows: int = 16) -> bytes:
    ds = ct_series(1, rows=rows, columns=rows)[0]
    change(ds)
    ds.file_meta.TransferSyntaxUID = syntax
    buf = BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


class TestBattery:
    def test_zero_bytes(self, config: Config, tmp_path: Path) -> None:
        assert_quarantined(run_file(config, b"", tmp_path), "empty")

    def test_random_bytes_named_dcm(self, config: Config, tmp_path: Path) -> None:
        import random

        rng = random.Random(7)
        for i, size in enumerate((1, 7, 128, 132, 1000, 65_536)):
            data = rng.randbytes(size)
            assert_quarantined(run_file(config, data, tmp_path, f"r{i}.dcm"))
        # A preamble and the magic, then garbage
        assert_quarantined(run_file(config, b"\0" * 128 + b"DICM" + rng.randbytes(3000), tmp_path))

    def test_truncation_at_many_offsets(self, config: Config, tmp_path: Path) -> None:
        data = good_bytes()
        cuts = sorted({*range(1, len(data), 37), *range(len(data) - 40, len(data))})
        for cut in cuts:
            assert_quarantined(run_file(config, data[:cut], tmp_path))

    def test_no_preamble_no_meta_bare_dataset_is_read_leniently(
        self, config: Config, tmp_path: Path
    ) -> None:
        """A bare dataset (no preamble, no meta) is DICOM still: processed, output valid."""
        ds = ct_series(1, **TINY)[0]
        del ds.file_meta
        ds.preamble = None
        buf = BytesIO()
        pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True)
        body = buf.getvalue()
        assert body[128:132] != b"DICM" and body[:2] == b"\x08\x00"  # no preamble, no meta
        outcome = run_file(config, body, tmp_path)
        assert outcome.status == "processed", outcome
        out = pydicom.dcmread(config.paths.outbox / outcome.output)
        assert out.PatientIdentityRemoved == "YES"
        # Meta without the preamble is read too; a preamble with nothing after it is not.
        outcome = run_file(config, good_bytes()[128:], tmp_path)
        _processed_or_input_error(config, outcome)
        assert_quarantined(run_file(config, b"\0" * 128 + b"DICM", tmp_path))

    @pytest.mark.parametrize("length", [0xFFFFFFF0, 0xFFFFFFFE, 0x7FFFFFFF, 0x10000000])
    def test_absurd_long_lengths(self, config: Config, tmp_path: Path, length: int) -> None:
        """An OB/OW/UN/SQ element whose 4-byte length claims gigabytes."""
        data = bytearray(good_bytes())
        pos = data.find(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data, explicit VR LE
        assert pos > 0
        struct.pack_into("<L", data, pos + 8, length)
        tracemalloc.start()
        try:
            outcome = run_file(config, bytes(data), tmp_path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert_quarantined(outcome)
        assert peak < 50 * 1024**2

    @pytest.mark.parametrize("length", [0xFFFF, 0xFFFE, 0x8000])
    def test_absurd_short_lengths(self, config: Config, tmp_path: Path, length: int) -> None:
        data = bytearray(good_bytes())
        pos = data.find(b"\x10\x00\x10\x00PN")  # (0010,0010) Patient's Name
        assert pos > 0
        struct.pack_into("<H", data, pos + 6, length)
        assert_quarantined(run_file(config, bytes(data), tmp_path))

    @pytest.mark.parametrize("length", [0xFFFFFFF0, 0x7FFFFFFF, 0xFFFFFFFE])
    def test_absurd_implicit_lengths(self, config: Config, tmp_path: Path, length: int) -> None:
        data = bytearray(with_changes(lambda ds: None, syntax=ImplicitVRLittleEndian))
        pos = data.find(b"\x10\x00\x10\x00", 132)  # (0010,0010) in implicit VR
        assert pos > 0
        struct.pack_into("<L", data, pos + 4, length)
        assert_quarantined(run_file(config, bytes(data), tmp_path))

    @pytest.mark.parametrize("frames", [1, 1000, 2**31 - 1])
    def test_gigabyte_pixel_claims_are_refused_before_allocating(
        self, config: Config, tmp_path: Path, frames: int
    ) -> None:
        def claim(ds: Dataset) -> None:
            ds.Rows = ds.Columns = 65535
            ds.NumberOfFrames = frames

        data = with_changes(claim)
        tracemalloc.start()
        try:
            outcome = run_file(config, data, tmp_path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert_quarantined(outcome, "too_large")
        assert peak < 50 * 1024**2

    def test_pixel_limit_is_configurable(self, tmp_path: Path) -> None:
        cfg = config_mod.load(write_config(tmp_path, "[limits]\nmax_pixel_bytes = 1024\n"))
        cfg = cfg.with_secret(bytes.fromhex(KEY_HEX))
        assert run_file(cfg, ct_series_bytes(1, rows=16, columns=16)[0], tmp_path).status == (
            "processed")  # 512 bytes of pixels
        assert_quarantined(run_file(cfg, ct_series_bytes(1, rows=32, columns=32)[0], tmp_path),
                           "too_large")

    def test_pixel_data_shorter_or_longer_than_declared(
        self, config: Config, tmp_path: Path
    ) -> None:
        def short(ds: Dataset) -> None:
            ds.PixelData = ds.PixelData[:-64]

        def long(ds: Dataset) -> None:
            ds.PixelData = ds.PixelData + b"\0" * 64

        def rows(ds: Dataset) -> None:
            ds.Rows = 17  # header says more than the data holds

        for change in (short, long, rows):
            assert_quarantined(run_file(config, with_changes(change), tmp_path), "pixel_data")

    def test_compressed_data_that_does_not_decode(self, config: Config, tmp_path: Path) -> None:
        for name in ("JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "MR_small_RLE.dcm",
                     "JPEGLSNearLossless_08.dcm"):
            raw = Path(get_testdata_file(name)).read_bytes()
            assert run_file(config, raw, tmp_path).status == "processed", name
            ds = pydicom.dcmread(BytesIO(raw))
            frag_start = raw.rfind(b"\xfe\xff\x00\xe0")  # the last fragment item
            assert frag_start > 0
            value = frag_start + 8
            end = raw.rfind(b"\xfe\xff\xdd\xe0")
            corrupt = bytearray(raw)
            middle = value + (end - value) // 4
            corrupt[middle : middle + 64] = b"\x00" * 64
            corrupt[value : value + 16] = b"\xa5" * 16
            del ds
            assert_quarantined(run_file(config, bytes(corrupt), tmp_path), "pixel_data",
                               "truncated", "not_dicom")

    def test_deeply_nested_sequences(self, config: Config, tmp_path: Path) -> None:
        """Nested beyond what anyone writes: refused, no RecursionError escapes."""
        for depth in (80, 300, 3000):
            # Undefined-length items, implicit VR: (0008,1115) SQ > item > (0008,1115) ...
            seq_open = struct.pack("<HHL", 0x0008, 0x1115, 0xFFFFFFFF)
            item_open = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
            item_close = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
            seq_close = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
            nested = (seq_open + item_open) * depth + (item_close + seq_close) * depth
            base = with_changes(lambda ds: None, syntax=ImplicitVRLittleEndian)
            pos = base.find(b"\x08\x00\x16\x00", 132)  # insert before (0008,0016)
            assert pos > 0
            data = base[:pos] + nested + base[pos:]
            assert_quarantined(run_file(config, data, tmp_path))

    def test_deeply_nested_defined_length_sequences(self, config: Config, tmp_path: Path) -> None:
        inner = Dataset()
        inner.CodeValue = "X"
        for _ in range(200):
            outer = Dataset()
            outer.ReferencedImageSequence = Sequence([inner])
            inner = outer

        def nest(ds: Dataset) -> None:
            ds.ReferencedStudySequence = Sequence([inner])

        data = with_changes(nest)
        outcome = run_file(config, data, tmp_path)
        assert outcome.status in ("processed", "quarantined"), outcome
        if outcome.status == "quarantined":
            assert_quarantined(outcome)

    def test_invalid_vr(self, config: Config, tmp_path: Path) -> None:
        data = bytearray(good_bytes())
        for tag in (b"\x10\x00\x10\x00PN", b"\x08\x00\x60\x00CS", b"\x28\x00\x10\x00US"):
            pos = data.find(tag)
            assert pos > 0
            mutant = bytearray(data)
            mutant[pos + 4 : pos + 6] = b"\x01\x02"
            outcome = run_file(config, bytes(mutant), tmp_path)
            _processed_or_input_error(config, outcome)
        assert run_file(config, Path(get_testdata_file("badVR.dcm")).read_bytes(),
                        tmp_path).status == "quarantined"

    @pytest.mark.parametrize("charset", ["ISO_IR 999", "\\\\\\", "ISO 2022 IR 87\\XYZ", "utf-8"])
    def test_invalid_character_sets(self, config: Config, tmp_path: Path, charset: str) -> None:
        def cs(ds: Dataset) -> None:
            ds.SpecificCharacterSet = charset
            ds.PatientName = "Ünïcödé^Ñame"

        outcome = run_file(config, with_changes(cs), tmp_path)
        _processed_or_input_error(config, outcome)

    def test_deflate_bomb(self, config: Config, tmp_path: Path) -> None:
        cfg = config.model_copy(
            update={"limits": config.limits.model_copy(update={"max_inflated_bytes": 4096})})
        raw = Path(get_testdata_file("image_dfl.dcm")).read_bytes()
        assert_quarantined(run_file(cfg, raw, tmp_path), "too_large")


def _processed_or_input_error(config: Config, outcome: Outcome) -> None:
    """Lenient cases: pydicom may read them. Either a valid output, or an InputError reason."""
    if outcome.status == "processed":
        out = (config.paths.outbox / outcome.output).read_bytes()
        dicomfile.decode(out, max_inflated=1 << 30)
    else:
        assert_quarantined(outcome)


def test_to_bytes_roundtrip_still_processes(config: Config, tmp_path: Path) -> None:
    """The battery's baseline: the unmodified synthetic file is processed."""
    ds = ct_series(1, **TINY)[0]
    assert run_file(config, to_bytes(ds), tmp_path).status == "processed"


def test_a_rust_decoder_panic_is_quarantined(config: Config, tmp_path: Path) -> None:
    """Found by the fuzzer: this damaged RLE stream makes pylibjpeg-rle panic, and pyo3's
    PanicException is a BaseException, which `except Exception` boundaries let through."""
    raw = bytearray(Path(get_testdata_file("MR_small_RLE.dcm")).read_bytes())
    raw[1944:1948] = bytes.fromhex("feff0de0")
    raw[4114:4116] = bytes.fromhex("554e")
    raw[4848:4850] = bytes.fromhex("0000")
    assert_quarantined(run_file(config, bytes(raw), tmp_path), "pixel_data")


def test_any_base_exception_in_the_core_is_an_internal_outcome(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Panic(BaseException):
        pass

    def explode(data: bytes, cfg: Config) -> None:
        raise Panic("ZZPHINAME^MARKER")

    monkeypatch.setattr(work.pipeline, "process_bytes", explode)
    outcome = run_file(config, good_bytes(), tmp_path)
    assert (outcome.status, outcome.reason) == ("quarantined", "internal")
    assert "ZZPHI" not in outcome.message


def test_a_damaged_meta_group_is_not_copied_into_the_output(
    config: Config, tmp_path: Path
) -> None:
    """Found by the fuzzer: (0002,0000) with VR US instead of UL was written back as read,
    giving an output that no longer parses. The output's meta group is now built afresh."""
    raw = bytearray(Path(get_testdata_file("rtplan.dcm")).read_bytes())
    assert raw[136:138] == b"UL"
    raw[136:138] = b"US"
    outcome = run_file(config, bytes(raw), tmp_path)
    assert outcome.status == "processed", outcome
    _processed_or_input_error(config, outcome)
