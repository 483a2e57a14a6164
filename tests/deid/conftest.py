"""Datasets with a distinct marker planted in every attribute of Table E.1-1, built from the table.

Each exact-tag attribute gets a value valid for its VR that contains a marker unique to it (a
string, a date spaced 4001 days from every other so no date shift can turn one marker into
another, a UID with a fixed-width suffix so none is a prefix of another). Sequences get an item
made of other table attributes (so the profile applies inside). The same set is planted again
three sequence levels deep, next to private blocks, a private sequence, an overlay and a curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from dcmwatch import dicomfile
from dcmwatch.deid.table import TABLE
from dcmwatch.deid.values import resolve_vr

KEY = b"0123456789abcdef-test-key"
PERSON_NAME = 0x0040A123
REF_SOP_INSTANCE = 0x00081155
#: Non-table sequences used to nest the planted set three levels deep.
NEST = (0x00082218, 0x00082228, 0x0040A170)  # Anatomic Region, Primary Anatomic Structure, Purpose of Reference
PRIVATE_GROUP = 0x0009
PRIVATE_CREATOR = "MKVENDOR 1"
PRIVATE_MARKERS = (b"MKPRIVATEA", b"MKPRIVATEB", b"MKPRIVNESTED", b"MKPRIVUN")
GRAPHIC_MARKERS = {
    "overlay_data": b"MKOVERLAYBITS\x00\x00\x00",
    "overlay_comment": b"MKOVERLAYCOMMENT",
    "overlay_description": b"MKOVERLAYDESC",
    "curve_data": b"MKCURVEDATA\x00",
    "curve_description": b"MKCURVEDESC\x00",
}
_SKIPPED_GROUPS = (0x0000, 0x0002)  # command set and file meta never sit in a stored dataset
_BINARY = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_NUMERIC = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "AT", "UV", "SV"})


def planted_tags() -> list[int]:
    """Every exact Table E.1-1 tag that can be planted in a stored dataset."""
    return [t for t in sorted(TABLE) if (t >> 16) not in _SKIPPED_GROUPS]


@dataclass
class Planted:
    """A dataset and, per tag, the bytes that betray its original value (None: numeric)."""

    ds: Dataset
    markers: dict[int, bytes | None] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return to_bytes(self.ds)


def to_bytes(ds: Dataset) -> bytes:
    """The file dcmwatch writes: a de-identified dataset reaches a file only through
    `dicomfile.encode`, which makes the file meta group anew from the dataset."""
    return dicomfile.encode(ds)


def reread(blob: bytes) -> Dataset:
    return dcmread(BytesIO(blob))


def _value(tag: int, vr: str, index: int, date_index: int) -> tuple[object, bytes | None]:
    text = f"MK{index:04d}Q"
    when = date(1800, 1, 1) + timedelta(days=4001 * date_index)
    da = f"{when.year:04d}{when.month:02d}{when.day:02d}"
    if vr in ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR"):
        return text, text.encode()
    if vr == "DA":
        return da, da.encode()
    if vr == "DT":
        return da + "101112", (da + "101112").encode()
    if vr == "TM":
        tm = f"2359{index % 60:02d}.{index:06d}"
        return tm, tm.encode()
    if vr == "UI":
        uid = f"1.2.826.0.1.3680043.10.999.{1000 + index}"
        return uid, uid.encode()
    if vr == "AS":
        age = f"{100 + index % 900:03d}W"
        return age, None  # 4 bytes are not a reliable marker; checked by value
    if vr == "DS":
        return f"9{index:04d}.25", f"9{index:04d}.25".encode()
    if vr == "IS":
        return f"7{index:05d}", f"7{index:05d}".encode()
    if vr in _BINARY:
        blob = f"MKBIN{index:04d}QQ".encode()
        return blob, blob
    if vr in _NUMERIC:
        return (1000 + index) if vr != "AT" else 0x00100010, None
    raise AssertionError(f"no marker for VR {vr} of {tag:08X}")


def _sequence_item(markers: dict[int, bytes | None], index: int) -> Dataset:
    """An item made of table attributes, so whatever keeps the item must still clean inside."""
    item = Dataset()
    name, _ = _value(PERSON_NAME, "PN", tags_index(PERSON_NAME), 0)
    uid, _ = _value(REF_SOP_INSTANCE, "UI", tags_index(REF_SOP_INSTANCE), 0)
    item.add_new(PERSON_NAME, "PN", name)
    item.add_new(REF_SOP_INSTANCE, "UI", uid)
    del markers, index
    return item


def tags_index(tag: int) -> int:
    return planted_tags().index(tag)


def plant_level(ds: Dataset, markers: dict[int, bytes | None]) -> None:
    """Plant one marker per table attribute into ``ds``."""
    date_index = 0
    for index, tag in enumerate(planted_tags()):
        vr = resolve_vr(tag, None)
        if vr == "SQ":
            ds[tag] = DataElement(tag, "SQ", Sequence([_sequence_item(markers, index)]))
            markers[tag] = None
            continue
        value, marker = _value(tag, vr, index, date_index)
        if vr in ("DA", "DT"):
            date_index += 1
        ds[tag] = DataElement(tag, vr, value)
        markers[tag] = marker


def plant_private(ds: Dataset, *, nested: bool = True) -> None:
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x10, "LO", PRIVATE_MARKERS[0].decode())
    block.add_new(0x11, "SH", PRIVATE_MARKERS[1].decode())
    block.add_new(0x13, "UN", PRIVATE_MARKERS[3])
    if nested:
        item = Dataset()
        item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True).add_new(
            0x10, "LO", PRIVATE_MARKERS[2].decode()
        )
        item.add_new(PERSON_NAME, "PN", "MKPRIVSEQNAME")
        block.add_new(0x20, "SQ", Sequence([item]))


def plant_graphics(ds: Dataset) -> None:
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000022, "LO", GRAPHIC_MARKERS["overlay_description"].decode())
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", GRAPHIC_MARKERS["overlay_data"])
    ds.add_new(0x60004000, "LT", GRAPHIC_MARKERS["overlay_comment"].decode())
    ds.add_new(0x50000022, "LO", GRAPHIC_MARKERS["curve_description"].decode())
    ds.add_new(0x50003000, "OB", GRAPHIC_MARKERS["curve_data"])


def build_planted() -> Planted:
    """Top level and three sequence levels deep: every table attribute, privates, graphics."""
    planted = Planted(Dataset())
    top = planted.ds
    top.file_meta = FileMetaDataset()
    top.file_meta.MediaStorageSOPClassUID = CTImageStorage
    top.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.999.5"
    top.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    top.file_meta.SourceApplicationEntityTitle = "MKSOURCEAE"
    top.SOPClassUID = CTImageStorage
    plant_level(top, planted.markers)
    plant_private(top)
    plant_graphics(top)
    inner = top
    for tag in NEST:
        item = Dataset()
        inner.add_new(tag, "SQ", Sequence([item]))
        inner = item
    plant_level(inner, {})
    plant_private(inner)
    return planted


@pytest.fixture
def planted() -> Planted:
    return build_planted()
