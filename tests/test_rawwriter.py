"""`dicomfile.encode` writes exactly what pydicom's ``dcmwrite`` wrote, only faster.

The fast writer (`dcmwatch.rawwriter`) passes untouched raw elements through as bytes; these
tests hold it to the bytes of the previous encoder — ``dcmwrite(enforce_file_format=True)``
after the same file meta edits — on every file pydicom bundles, as decoded and after the
de-identification and pixel steps (which leave a mix of raw, converted and new elements,
sequences and items), and on the synthetic CT series.
"""

from __future__ import annotations

import warnings
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import UID

from dcmwatch import config as config_module
from dcmwatch import dicomfile, pipeline
from dcmwatch.errors import DcmwatchError
from dcmwatch.testing import ct_series_bytes
from tests.conftest import KEY_HEX, write_config

LIMIT = 1 << 30
# pydicom's bundled folder, listed here: get_testdata_files with a wildcard tries the network.
_BUNDLED_DIR = Path(get_testdata_file("CT_small.dcm")).parent
BUNDLED = sorted((p.name, str(p)) for p in _BUNDLED_DIR.glob("*.dcm"))
RULES = """
[[rules]]
name = "ct"
[rules.match]
Modality = "CT"
[[rules.actions]]
type = "hu_threshold"
below = -500.0
fill_hu = -1000.0
[[rules.actions]]
type = "mask"
rects = [[0, 0, 20, 10]]

[[rules]]
name = "others"
[rules.match]
Modality = "MR"
[[rules.actions]]
type = "mask"
rects = [[0, 0, 8, 8]]
"""
OPTIONS = """
options = ["retain_long_modified_dates", "clean_descriptors", "retain_safe_private",
           "retain_uids"]
"""


def _reference(ds: Dataset) -> bytes:
    """The encoder before `rawwriter`: the same meta edits, then pydicom's writer."""
    meta = ds.file_meta
    meta.MediaStorageSOPClassUID = UID(
        str(ds.get("SOPClassUID", meta.get("MediaStorageSOPClassUID")))
    )
    meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
    meta.ImplementationClassUID = UID(dicomfile.IMPLEMENTATION_UID)
    meta.ImplementationVersionName = dicomfile.IMPLEMENTATION_VERSION
    for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
                    "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID",
                    "PrivateInformation"):
        if keyword in meta:
            delattr(meta, keyword)
    buf = BytesIO()
    ds.preamble = b"\0" * 128
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _both(data: bytes, steps: pipeline.Steps | None) -> tuple[bytes | str, bytes | str]:
    """(new, reference) outputs of the same input, or the exception class names."""
    results: list[bytes | str] = []
    for encode in (dicomfile.encode, _reference):
        try:
            ds = dicomfile.decode(data, max_inflated=LIMIT)
            if steps is not None:
                ds, _ = pipeline.run_step(steps.pixels, pipeline.run_step(steps.deidentify, ds))
        except DcmwatchError:
            pytest.skip("refused before encoding")
        try:
            results.append(encode(ds))
        except Exception as exc:
            results.append(type(exc).__name__)
    return results[0], results[1]


def _steps(tmp_path: Path, extra: str) -> pipeline.Steps:
    config = config_module.load(write_config(tmp_path, extra))
    return pipeline.build_steps(config.with_secret(bytes.fromhex(KEY_HEX)))


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.simplefilter("ignore")


class TestSameBytesAsPydicom:
    @pytest.mark.parametrize(("name", "path"), BUNDLED, ids=[n for n, _ in BUNDLED])
    def test_bundled_file_as_decoded(self, name: str, path: str) -> None:
        new, ref = _both(Path(path).read_bytes(), None)
        assert new == ref

    @pytest.mark.parametrize(("name", "path"), BUNDLED, ids=[n for n, _ in BUNDLED])
    def test_bundled_file_after_the_steps(self, tmp_path: Path, name: str, path: str) -> None:
        steps = _steps(tmp_path, RULES)
        new, ref = _both(Path(path).read_bytes(), steps)
        assert new == ref

    @pytest.mark.parametrize(("name", "path"), BUNDLED[::3], ids=[n for n, _ in BUNDLED[::3]])
    def test_bundled_file_with_profile_options(
        self, tmp_path: Path, name: str, path: str
    ) -> None:
        steps = _steps(tmp_path, OPTIONS + RULES)
        new, ref = _both(Path(path).read_bytes(), steps)
        assert new == ref

    @pytest.mark.parametrize("extra", ["", OPTIONS], ids=["basic", "options"])
    def test_synthetic_ct_series(self, tmp_path: Path, extra: str) -> None:
        """Nested sequences, a private block with a private sequence, an overlay."""
        steps = _steps(tmp_path, extra + RULES)
        for data in ct_series_bytes(3, rows=32, columns=32):
            new, ref = _both(data, steps)
            assert isinstance(new, bytes)
            assert new == ref

    def test_the_callers_file_meta_is_not_completed_in_place(self) -> None:
        """As dcmwrite's copy did: the group length and version are the output's business."""
        ds = dicomfile.decode(ct_series_bytes(1, rows=16, columns=16)[0], max_inflated=LIMIT)
        del ds.file_meta.FileMetaInformationVersion
        out = pydicom.dcmread(BytesIO(dicomfile.encode(ds)))
        assert out.file_meta.FileMetaInformationVersion == b"\x00\x01"
        assert "FileMetaInformationVersion" not in ds.file_meta
