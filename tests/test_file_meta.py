"""The output's file meta names the dataset it carries, however the steps changed it.

`dicomfile.encode` makes the file meta group, and nothing else keeps it in step: the
de-identifier remaps the SOP Instance UID, a pixel rule derives a new one, a bake makes the
instance a Secondary Capture, and the pixel codec changes the transfer syntax (big endian,
deflate and lossy inputs leave as Explicit VR Little Endian). Whatever happened, (0002,0002) and
(0002,0003) must equal the written dataset's SOP Class and Instance UIDs, and (0002,0010) must
be the encoding the dataset's bytes are actually in. The oracle for the last is pydicom reading
the dataset's bytes without the meta, guessing their encoding from the bytes alone.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import (
    JPEG2000,
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    SecondaryCaptureImageStorage,
)

from dcmwatch import config as config_mod
from dcmwatch.pipeline import process_bytes

KEY = b"0123456789abcdef0123456789abcdef"
MASK = '[[rules]]\nname = "m"\n[[rules.actions]]\ntype = "mask"\nrects = [[0, 0, 4, 4]]\n'
BAKE = (
    '[[rules]]\nname = "b"\n[[rules.actions]]\ntype = "window"\ncenter = 40\nwidth = 400\n'
    'mode = "bake"\n'
)
RETAIN_UIDS = '[deid]\noptions = ["retain_uids"]\n'
#: The elements a written file meta holds: ours, and nothing of the input's.
META = [
    "FileMetaInformationGroupLength", "FileMetaInformationVersion", "MediaStorageSOPClassUID",
    "MediaStorageSOPInstanceUID", "TransferSyntaxUID", "ImplementationClassUID",
    "ImplementationVersionName",
]  # fmt: skip


def _bundled(name: str) -> bytes:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled with this pydicom")
    return Path(path).read_bytes()


def _process(name: str, config: str) -> tuple[Dataset, bytes]:
    cfg = config_mod.parse(config, source="t.toml", base=Path.cwd()).with_secret(KEY)
    out = process_bytes(_bundled(name), cfg).data
    return pydicom.dcmread(BytesIO(out)), out


def _body_encoding(out: bytes) -> tuple[bool | None, bool | None]:
    """The dataset's encoding as pydicom guesses it from its own bytes, the meta cut off."""
    pos = 132
    while out[pos : pos + 2] == b"\x02\x00":  # file meta: always Explicit VR Little Endian
        long = out[pos + 4 : pos + 6] in (b"OB", b"UN")
        length = int.from_bytes(out[pos + 8 : pos + 12] if long else out[pos + 6 : pos + 8],
                                "little")
        pos += (12 if long else 8) + length
    body = pydicom.dcmread(BytesIO(out[pos:]), force=True)
    body.get("SOPInstanceUID")  # the guess is made when the first element is read
    return body.original_encoding


@pytest.mark.parametrize(
    ("name", "config", "syntax"),
    [
        pytest.param("CT_small.dcm", "", ExplicitVRLittleEndian, id="deid-only"),
        pytest.param("MR_small_implicit.dcm", "", ImplicitVRLittleEndian, id="implicit"),
        pytest.param("MR_small_bigendian.dcm", "", ExplicitVRLittleEndian, id="big-endian"),
        pytest.param("image_dfl.dcm", "", ExplicitVRLittleEndian, id="deflated"),
        pytest.param("JPEG2000.dcm", "", JPEG2000, id="j2k-untouched"),
        pytest.param("MR_small_RLE.dcm", MASK, RLELossless, id="rle-masked"),
        pytest.param("SC_rgb_jpeg_dcmtk.dcm", MASK, ExplicitVRLittleEndian, id="jpeg-masked"),
        pytest.param("CT_small.dcm", BAKE, ExplicitVRLittleEndian, id="baked"),
        pytest.param("MR_small_bigendian.dcm", MASK, ExplicitVRLittleEndian, id="be-masked"),
        pytest.param("CT_small.dcm", RETAIN_UIDS + MASK, ExplicitVRLittleEndian, id="retain"),
    ],
)
def test_meta_names_the_written_dataset(name: str, config: str, syntax: UID) -> None:
    ds, out = _process(name, config)
    meta = ds.file_meta
    assert [e.keyword for e in meta] == META
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.TransferSyntaxUID == syntax
    assert _body_encoding(out) == (syntax.is_implicit_VR, syntax.is_little_endian)
    if syntax.is_compressed:
        assert ds["PixelData"].is_undefined_length
        get_decoder(syntax).as_array(ds)  # the fragments are in the syntax the meta names
    elif "PixelData" in ds:
        assert len(ds.PixelData) - get_expected_length(ds) in (0, 1)  # native, one pad byte


def test_the_steps_changes_reach_the_meta() -> None:
    """Each step's change of identity is in the written meta: the de-identifier's UID, a pixel
    rule's derived UID, a bake's SOP Class; with retain_uids the instance keeps its UID."""
    source = pydicom.dcmread(BytesIO(_bundled("CT_small.dcm")))
    plain, _ = _process("CT_small.dcm", "")
    masked, _ = _process("CT_small.dcm", MASK)
    baked, _ = _process("CT_small.dcm", BAKE)
    kept, _ = _process("CT_small.dcm", RETAIN_UIDS)
    instances = {source.SOPInstanceUID, plain.SOPInstanceUID, masked.SOPInstanceUID}
    assert len(instances) == 3
    assert masked.file_meta.MediaStorageSOPInstanceUID == masked.SOPInstanceUID
    assert baked.file_meta.MediaStorageSOPClassUID == SecondaryCaptureImageStorage
    assert plain.file_meta.MediaStorageSOPClassUID == source.SOPClassUID
    assert kept.file_meta.MediaStorageSOPInstanceUID == source.SOPInstanceUID
