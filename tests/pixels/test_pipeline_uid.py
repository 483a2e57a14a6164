"""Through the whole per-file core: changed pixels get their new UID from the de-identifier's map."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom

from dcmwatch import config as config_mod
from dcmwatch.deid.pseudonyms import Keyed
from dcmwatch.pipeline import process_bytes
from dcmwatch.testing import ct_series_bytes

KEY = b"0123456789abcdef0123456789abcdef"
MASK = '[[rules]]\nname = "m"\n[[rules.actions]]\ntype = "mask"\nrects = [[0, 0, 4, 4]]\n'


def _config(text: str) -> config_mod.Config:
    return config_mod.parse(text, source="t.toml", base=Path.cwd()).with_secret(KEY)


def test_new_uid_is_the_maps_uid_of_the_derived_instance() -> None:
    data = ct_series_bytes(1, rows=16, columns=16)[0]
    plain = pydicom.dcmread(io.BytesIO(process_bytes(data, _config("")).data))
    masked_out = process_bytes(data, _config(MASK))
    masked = pydicom.dcmread(io.BytesIO(masked_out.data))
    expected = Keyed(KEY).uid("pixels:" + plain.SOPInstanceUID)
    assert masked.SOPInstanceUID == expected != plain.SOPInstanceUID
    assert masked.file_meta.MediaStorageSOPInstanceUID == expected
    assert masked.SeriesInstanceUID == plain.SeriesInstanceUID  # same series, new instance
    assert masked_out.rules == ("m",)
    assert process_bytes(data, _config(MASK)).data == masked_out.data  # deterministic
