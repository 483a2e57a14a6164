"""``[deid] unlisted``: standard attributes Table E.1-1 does not name, kept or removed.

The marker set is built from pydicom's data dictionary, not from the policy module: every
attribute whose dictionary VR can carry text, a name, a date, a time or a URL, retired ones
included, outside the table and the repeating groups. Only the documented built-in allow-list
(and placeholders, which must lose their value) may keep its attribute.
"""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from conftest import KEY, reread, to_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.datadict import DicomDictionary, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dcmwatch import config as config_mod
from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.table import TABLE
from dcmwatch.deid.unlisted import ESSENTIAL, PLACEHOLDER, TECHNICAL
from dcmwatch.errors import ConfigError

#: The issue's list of VRs that can carry text, names, dates, times or URLs.
_TEXT_VRS = ("AE", "DA", "DT", "TM", "PN", "LO", "LT", "SH", "ST", "UC", "UR", "UT")
_MARKER = re.compile(rb"MKU[0-9]{4}Q")
#: A sequence the table does not name, to plant the set inside an item.
_NEST = 0x00082218  # Anatomic Region Sequence
_ALLOWED = frozenset(TECHNICAL) | PLACEHOLDER
_REMOVE_TEXT = DeidSettings(unlisted="remove-text")


def _unlisted_text_tags() -> list[int]:
    tags = []
    for tag, (vr, _vm, _name, _retired, _keyword) in DicomDictionary.items():
        group = tag >> 16
        if tag in TABLE or group in (0x0000, 0x0002) or (group >> 8) in (0x50, 0x60):
            continue  # command set and file meta are never in a stored dataset
        if vr in _TEXT_VRS:
            tags.append(tag)
    return sorted(tags)


_TAGS = _unlisted_text_tags()


def _value(vr: str, index: int) -> str:
    if vr == "DA":
        return f"{1801 + index:04d}0102"
    if vr == "DT":
        return f"{1801 + index:04d}0102030405"
    if vr == "TM":
        return f"0102{index % 60:02d}.{index:06d}"
    if vr == "UR":
        return f"http://h/MKU{index:04d}Q"
    return f"MKU{index:04d}Q"


def _plant(ds: Dataset) -> None:
    for index, tag in enumerate(_TAGS):
        vr = DicomDictionary[tag][0]
        ds[tag] = DataElement(tag, vr, _value(vr, index))


def _base() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.999.5"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.999.5"
    ds.PatientName = "MKNAME^PATIENT"
    return ds


def _planted() -> Dataset:
    """The set at the top level and again inside an item of an unlisted sequence."""
    ds = _base()
    _plant(ds)
    item = Dataset()
    _plant(item)
    ds[_NEST] = DataElement(_NEST, "SQ", Sequence([item]))
    return ds


def _deid(ds: Dataset, **kwargs: Any) -> Dataset:
    out: Dataset = reread(to_bytes(make_deidentifier(DeidSettings(**kwargs), KEY)(ds)))
    return out


def _kept(level: Dataset) -> set[str]:
    return {keyword_for_tag(t) or f"{t:08X}" for t in _TAGS if t in level}


class TestRemoveText:
    def test_the_marker_set_is_the_whole_dictionary(self) -> None:
        """Hundreds of attributes, retired ones included, each planted and written."""
        assert len(_TAGS) > 450
        assert any(DicomDictionary[t][3] for t in _TAGS)  # retired
        blob = to_bytes(_planted())
        assert len(set(_MARKER.findall(blob))) > 400

    def test_no_text_attribute_survives_outside_the_allow_list(self) -> None:
        """At the top level and inside a sequence item, only allow-listed ones stay."""
        out = _deid(_planted(), unlisted="remove-text")
        assert _kept(out[_NEST].value[0]) <= _ALLOWED
        assert _kept(out) <= _ALLOWED | {"DeidentificationMethod"}  # our mark, written last
        assert out.DeidentificationMethod.startswith("DCMWATCH")
        blob = to_bytes(out)
        technical = set(_MARKER.findall(blob))
        planted_technical = {
            _value(DicomDictionary[t][0], i).encode().split(b"/")[-1]
            for i, t in enumerate(_TAGS)
            if DicomDictionary[t][4] in TECHNICAL
        }
        assert technical <= planted_technical

    def test_technical_descriptors_are_kept(self) -> None:
        """Manufacturer, model, software versions, kernel: kept with their values."""
        out = _deid(_planted(), unlisted="remove-text")
        for level in (out, out[_NEST].value[0]):
            kept = _kept(level)
            assert {"Manufacturer", "ManufacturerModelName", "SoftwareVersions",
                    "ConvolutionKernel", "CodeValue", "CodeMeaning"} <= kept  # fmt: skip
        index = _TAGS.index(0x00080070)
        assert out.Manufacturer == _value("LO", index)

    def test_placeholders_lose_their_value_but_stay(self) -> None:
        """An IOD requires (0070,0006) Unformatted Text Value: a dummy, not the original."""
        out = _deid(_planted(), unlisted="remove-text")
        assert out[0x00700006].value != _value("ST", _TAGS.index(0x00700006))
        assert b"MKU" not in bytes(str(out[0x00700006].value), "ascii")

    def test_the_dictionary_vr_decides_not_the_files(self) -> None:
        """A Retrieve URL written as UN, a Birth Date in Alternative Calendar claimed CS, in
        an implicit-VR file (no VR at all) and an explicit one: removed all the same."""
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            ds = _base()
            ds.file_meta.TransferSyntaxUID = syntax
            ds[0x00081190] = DataElement(0x00081190, "UN", b"http://MKURL/0001")
            ds[0x00100033] = DataElement(0x00100033, "CS", "MKBIRTHCAL")
            blob = to_bytes(ds)
            assert b"MKURL" in blob and b"MKBIRTHCAL" in blob
            out = to_bytes(make_deidentifier(_REMOVE_TEXT, KEY)(dcmread(BytesIO(blob))))
            assert b"MKURL" not in out and b"MKBIRTHCAL" not in out

    def test_a_mislabelled_raw_element_is_judged_by_its_tag(self) -> None:
        """A raw element whose VR claims OB for a text attribute goes too."""
        ds = _base()
        key = BaseTag(0x00400400)  # Comments on the Scheduled Procedure Step (LT)
        ds._dict[key] = RawDataElement(key, "OB", 10, b"MKCOMMENTS", 0, False, True)
        make_deidentifier(_REMOVE_TEXT, KEY)(ds)
        assert 0x00400400 not in ds

    def test_sequences_stay_and_the_profile_applies_inside(self) -> None:
        """An unlisted sequence is kept; a table attribute in its item is still de-identified
        and an unlisted text attribute in it removed, two levels deep."""
        inner = Dataset()
        inner.PatientName = "MKINNER^NAME"
        inner.RetrieveURL = "http://MKDEEP/1"
        middle = Dataset()
        middle.AnatomicRegionSequence = Sequence([inner])
        ds = _base()
        ds.PurposeOfReferenceCodeSequence = Sequence([middle])
        out = to_bytes(make_deidentifier(_REMOVE_TEXT, KEY)(ds))
        assert b"MKINNER" not in out and b"MKDEEP" not in out
        item = reread(out).PurposeOfReferenceCodeSequence[0].AnatomicRegionSequence[0]
        assert "PatientName" in item and "RetrieveURL" not in item

    def test_codes_and_numbers_stay_even_when_a_cs_is_abused(self) -> None:
        """CS is kept as docs/deidentification.md says, whatever text it was given; numbers too."""
        ds = _base()
        ds.BodyPartExamined = "MKCSABUSED"
        ds.ConversionType = "WSD"
        ds.KVP = "120"
        out = _deid(ds, unlisted="remove-text")
        assert (out.BodyPartExamined, out.ConversionType, out.KVP) == ("MKCSABUSED", "WSD", 120)

    def test_bulk_data_stays_opaque_bytes_go(self) -> None:
        """Pixel Data, Float Pixel Data and LUT data stay; an encrypted blob, a record key, an
        HPGL document and a tag no dictionary knows are removed."""
        ds = _base()
        ds[0x7FE00010] = DataElement(0x7FE00010, "OW", b"\x01\x02" * 8)
        ds[0x7FE00008] = DataElement(0x7FE00008, "OF", b"\x00\x00\x80\x3f" * 4)
        ds.RedPaletteColorLookupTableData = b"\x05\x00" * 4
        ds[0x04000520] = DataElement(0x04000520, "OB", b"MKENCRYPT\x00")
        ds[0x0008041B] = DataElement(0x0008041B, "OB", b"MKRECORD")
        ds[0x00686300] = DataElement(0x00686300, "OB", b"MKHPGLDOC\x00")
        unknown = 0x0014FFF0
        assert unknown not in DicomDictionary
        ds[unknown] = DataElement(unknown, "LO", "MKUNKNOWN")
        blob = to_bytes(ds)
        out = _deid(reread(blob), unlisted="remove-text")
        assert out.PixelData == b"\x01\x02" * 8
        assert out[0x7FE00008].value == b"\x00\x00\x80\x3f" * 4
        assert out.RedPaletteColorLookupTableData == b"\x05\x00" * 4
        assert [t for t in (0x04000520, 0x0008041B, 0x00686300, unknown) if t in out] == []
        kept = _deid(reread(blob), unlisted="keep")
        assert all(t in kept for t in (0x04000520, 0x0008041B, 0x00686300, unknown))

    def test_a_60xx_group_beyond_the_overlay_range_is_judged_like_any_other(self) -> None:
        """(6020,4000) is no overlay (6000-601E): its text goes under remove-text."""
        ds = _base()
        ds.add_new(0x60204000, "LT", "MKNOTOVERLAY")
        ds.add_new(0x60004000, "LT", "MKOVERLAYCOMMENT")
        blob = to_bytes(ds)
        assert b"MKNOTOVERLAY" not in to_bytes(_deid(reread(blob), unlisted="remove-text"))
        assert b"MKNOTOVERLAY" in to_bytes(_deid(reread(blob), unlisted="keep"))
        assert b"MKOVERLAYCOMMENT" not in to_bytes(_deid(reread(blob), unlisted="keep"))

    def test_private_and_overlay_attributes_keep_their_own_rules(self) -> None:
        """Retain Safe Private keeps its pair and Clean Graphics its overlay bitmap, whatever
        `unlisted` says."""
        ds = _base()
        ds.private_block(0x0009, "MKVENDOR 1", create=True).add_new(0x10, "LO", "MKPRIVKEPT")
        ds.add_new(0x60000010, "US", 4)
        ds.add_new(0x60003000, "OW", b"\x0f\x00")
        settings = {"options": ("retain_safe_private", "clean_graphics"),
                    "safe_private": (("MKVENDOR 1", 0x10),)}  # fmt: skip
        out = _deid(ds, unlisted="remove", **settings)
        assert out[0x00091010].value == "MKPRIVKEPT"
        assert out[0x60003000].value == b"\x0f\x00"


class TestKeep:
    def test_keep_leaves_every_unlisted_text_attribute(self) -> None:
        """`keep` is the profile as written: an unlisted text attribute stays as it was."""
        out = _deid(_planted(), unlisted="keep")
        for level in (out, out[_NEST].value[0]):
            assert len(_kept(level)) == len(_TAGS)
        assert out.RetrieveURL == _value("UR", _TAGS.index(0x00081190))
        assert "PatientName" in out and b"MKNAME" not in to_bytes(out)


class TestRemove:
    def test_only_essential_technical_and_listed_attributes_stay(self) -> None:
        """On a real CT: every remaining attribute is named by the table, a sequence, the
        essential set, the allow-list or the output's marks; the pixels are untouched."""
        source = dcmread(str(get_testdata_file("CT_small.dcm")))
        pixels = source.PixelData
        out = _deid(source, unlisted="remove")
        marks = {"PatientIdentityRemoved", "DeidentificationMethod",
                 "LongitudinalTemporalInformationModified"}  # written after the walk
        allowed = ESSENTIAL | frozenset(TECHNICAL) | marks
        left = {e.keyword or f"{e.tag:08X}" for e in out
                if e.tag not in TABLE and e.VR != "SQ" and e.keyword not in allowed}  # fmt: skip
        assert left == set()
        assert out.PixelData == pixels
        assert "KVP" in out and "SeriesNumber" in out

    def test_a_code_string_goes_under_remove(self) -> None:
        ds = _base()
        ds.ConversionType = "WSD"
        assert "ConversionType" not in _deid(ds, unlisted="remove")


class TestKeepUnlisted:
    def test_keep_unlisted_keeps_the_named_attributes(self) -> None:
        """Keywords and tags extend the allow-list."""
        out = _deid(_planted(), keep_unlisted=("WindowCenterWidthExplanation", "(0008,1190)"))
        assert {"WindowCenterWidthExplanation", "RetrieveURL"} <= _kept(out)
        assert "RetrieveAETitle" not in out

    @pytest.mark.parametrize("entry", ["NoSuchKeyword", "PatientName", "ACME 1.0:10"])
    def test_a_bad_entry_is_a_config_error_naming_the_key(
        self, tmp_path: Path, entry: str
    ) -> None:
        """Unknown keywords, attributes Table E.1-1 names and private ones are refused."""
        cfg = tmp_path / "site.toml"
        cfg.write_text(f'[deid]\nkey_env = "X"\nkeep_unlisted = ["{entry}"]\n')
        with pytest.raises(ConfigError, match=r"deid\.keep_unlisted"):
            config_mod.load(cfg)

    def test_the_default_is_remove_text(self) -> None:
        """What an absent key means, and what both shipped configurations say."""
        assert DeidSettings().unlisted == "remove-text"
        assert config_mod.load(None, cwd=Path("/nonexistent")).deid.unlisted == "remove-text"
        example = Path(__file__).resolve().parents[2] / "config" / "dcmwatch.toml"
        assert re.search(r'^unlisted = "remove-text"', example.read_text(), re.MULTILINE)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.sampled_from(_TAGS), min_size=1, max_size=25, unique=True),
    depth=st.integers(min_value=0, max_value=3),
    claim_un=st.booleans(),
    implicit=st.booleans(),
)
def test_property_no_unlisted_text_survives(
    picks: list[int], depth: int, claim_un: bool, implicit: bool
) -> None:
    """Any subset, at any depth, with the file's VR claimed UN or not, in either encoding:
    no planted value outside the allow-list comes out."""
    ds = _base()
    if implicit:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    level = ds
    for _ in range(depth):
        item = Dataset()
        level[_NEST] = DataElement(_NEST, "SQ", Sequence([item]))
        level = item
    expected_kept = set()
    for tag in picks:
        vr = DicomDictionary[tag][0]
        value = _value(vr, _TAGS.index(tag))
        if claim_un:
            level[tag] = DataElement(tag, "UN", value.encode() + b" " * (len(value) % 2))
        else:
            level[tag] = DataElement(tag, vr, value)
        if DicomDictionary[tag][4] in TECHNICAL:
            expected_kept.add(value.split("/")[-1].encode())
    blob = to_bytes(ds)
    out = to_bytes(make_deidentifier(_REMOVE_TEXT, KEY)(dcmread(BytesIO(blob))))
    assert set(_MARKER.findall(out)) <= expected_kept
