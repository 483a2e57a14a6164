"""Curves (50xx) and overlays (60xx) in every even repeating group, retired elements included.

Every element pydicom's dictionary knows in these groups is planted, with a marker, in the
first, a middle and the last group (5000/5010/501E, 6000/6002/601E), at the top level and one
sequence deep. The basic profile must remove them all; Clean Graphics keeps geometry, codes and
bitmaps, drops free text unless allow-listed, cleans the curve's overlay sequence and drops
curve audio.
"""

from __future__ import annotations

import re

import pytest
from conftest import KEY, reread, to_bytes
from pydicom._dicom_dict import RepeatersDictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.values import FREE_TEXT_VRS

GROUPS = (0x5000, 0x5010, 0x501E, 0x6000, 0x6002, 0x601E)
NESTED = 0x00081140  # Referenced Image Sequence: not in Table E.1-1's X rows, kept and walked
_MARKER = re.compile(rb"MKG[0-9A-F]{8}")
_AUDIO = re.compile(r"50xx20..")


def _elements() -> list[tuple[str, int, str]]:
    """(mask text, element number, VR) of every dictionary element of a curve/overlay group."""
    found = []
    for mask, entry in RepeatersDictionary.items():
        if mask[:4] in ("50xx", "60xx"):
            found.append((mask, int(mask[4:], 16), str(entry[0])[:2]))
    return sorted(found)


def _value(tag: int, vr: str) -> object:
    text = f"MKG{tag:08X}"
    if vr in FREE_TEXT_VRS or vr == "CS":
        return text[:16]
    if vr in ("OB", "OW"):
        return text.encode()
    if vr in ("IS", "DS"):
        return "7"
    if vr == "AT":
        return 0x00100010
    if vr == "SS":
        return [1, 1]
    return 3  # US, UL


def _plant(ds: Dataset) -> dict[int, tuple[str, str]]:
    """Plant every element in every group; returns tag -> (mask, VR)."""
    planted = {}
    for group in GROUPS:
        for mask, element, vr in _elements():
            if mask[:2] != f"{group:04X}"[:2]:
                continue
            tag = group << 16 | element
            if vr == "SQ":
                item = Dataset()
                item.add_new(0x50002610 & 0xFFFF | group << 16, "US", group)
                item.add_new(0x0040A123, "PN", f"MKG{tag:08X}")  # a person name inside
                ds[tag] = DataElement(tag, "SQ", Sequence([item]))
            else:
                ds[tag] = DataElement(tag, vr, _value(tag, vr))
            planted[tag] = (mask, vr)
    return planted


def _dataset() -> tuple[Dataset, dict[int, tuple[str, str]]]:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.999.5"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.999.5"
    planted = _plant(ds)
    item = Dataset()
    _plant(item)
    ds[NESTED] = DataElement(NESTED, "SQ", Sequence([item]))
    return ds, planted


def _levels(ds: Dataset) -> list[Dataset]:
    return [ds, ds[NESTED].value[0]]


def _run(ds: Dataset, settings: DeidSettings) -> bytes:
    return to_bytes(make_deidentifier(settings, KEY)(ds))


def test_every_element_was_planted() -> None:
    ds, planted = _dataset()
    blob = to_bytes(ds)
    assert len(planted) == len(GROUPS) * len(_elements()) // 2
    text_tags = [t for t, (_, vr) in planted.items() if vr in FREE_TEXT_VRS | {"OB", "OW", "SQ"}]
    assert all(f"MKG{t:08X}".encode()[:16] in blob for t in text_tags)


def test_basic_profile_removes_every_curve_and_overlay_element() -> None:
    ds, _ = _dataset()
    out = _run(ds, DeidSettings())
    assert _MARKER.findall(out) == []
    for level in _levels(reread(out)):
        assert [f"{e.tag:08X}" for e in level if (e.tag.group >> 8) in (0x50, 0x60)] == []


@pytest.mark.parametrize("allowlisted", [False, True])
def test_clean_graphics(allowlisted: bool) -> None:
    """Geometry, codes and bitmaps stay; free text only if allow-listed; audio goes."""
    ds, planted = _dataset()
    allow = tuple(f"MKG{t:08X}"[:16] for t in planted) if allowlisted else ()
    out = _run(ds, DeidSettings(options=("clean_graphics",), descriptor_allowlist=allow))
    for level in _levels(reread(out)):
        for tag, (mask, vr) in planted.items():
            audio = _AUDIO.fullmatch(mask) is not None
            free_text = vr in FREE_TEXT_VRS
            expected = not audio and (not free_text or allowlisted)
            assert (tag in level) is expected, f"{tag:08X} {mask} {vr}"
            if vr == "SQ" and expected:
                item = level[tag].value[0]
                assert str(item[0x0040A123].value) != f"MKG{tag:08X}" or allowlisted
    if not allowlisted:
        leaked = {m.decode() for m in _MARKER.findall(out)}
        kept = {f"MKG{t:08X}" for t, (mask, vr) in planted.items()
                if vr in ("OB", "OW", "CS") and not _AUDIO.fullmatch(mask)}  # fmt: skip
        assert leaked <= kept  # bitmaps and codes, never free text or audio
