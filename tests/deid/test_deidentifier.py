"""The de-identifier as a whole: consistency, determinism, marks, meta, overrides, errors."""

from __future__ import annotations

import pickle
from io import BytesIO

import pytest
from conftest import KEY, reread, to_bytes
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.pseudonyms import Keyed
from dcmwatch.errors import ConfigError, TransformError
from dcmwatch.testing import MARKERS, ct_series, ct_series_bytes, find_markers

STUDY = "1.2.826.0.1.3680043.10.999.77"
SERIES = "1.2.826.0.1.3680043.10.999.78"
SOP = "1.2.826.0.1.3680043.10.999.79"
OTHER_SOP = "1.2.826.0.1.3680043.10.999.80"


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _dataset(patient_id: str = "PID-1", name: str = "DOE^JANE") -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = SOP
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = SOP
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    ds.PatientID = patient_id
    ds.PatientName = name
    ds.StudyDate = "20240315"
    ds.ReferencedImageSequence = Sequence(
        [_item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=OTHER_SOP)]
    )
    ds.SourceImageSequence = Sequence(
        [_item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=SOP)]
    )
    # a sequence the table does not name, holding study and series UIDs
    ds.ReferencedSeriesSequence = Sequence(
        [_item(SeriesInstanceUID=SERIES, ReferencedInstanceSequence=Sequence(
            [_item(ReferencedSOPClassUID=CTImageStorage, ReferencedSOPInstanceUID=OTHER_SOP)]
        ))]
    )  # fmt: skip
    ds.RequestAttributesSequence = Sequence([_item(StudyInstanceUID=STUDY)])
    return ds


def _deid(ds: Dataset, **settings: object) -> Dataset:
    return make_deidentifier(DeidSettings.model_validate(settings), KEY)(ds)


class TestConsistency:
    def test_same_uid_maps_to_same_uid_everywhere(self) -> None:
        """A UID gets one replacement wherever it appears, at any depth, in every file."""
        ds = _deid(_dataset())
        sop, other = ds.SOPInstanceUID, ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID
        assert sop != SOP and sop.startswith("2.25.") and len(sop) <= 64
        assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID == sop
        assert reread(to_bytes(ds)).file_meta.MediaStorageSOPInstanceUID == sop
        series = ds.ReferencedSeriesSequence[0]
        assert series.SeriesInstanceUID == ds.SeriesInstanceUID != SERIES
        assert series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == other
        assert ds.ReferencedImageSequence[0].ReferencedSOPClassUID == CTImageStorage
        again = _deid(_dataset())
        assert again.StudyInstanceUID == ds.StudyInstanceUID

    def test_rtstruct_references_stay_coherent(self) -> None:
        """Frame of reference and referenced series of a bundled RT Structure Set follow suit."""
        path = get_testdata_file("rtstruct.dcm")
        original = dcmread(path, force=True)
        ds = _deid(dcmread(path, force=True))
        frame = original.ReferencedFrameOfReferenceSequence[0]
        new_frame = ds.ReferencedFrameOfReferenceSequence[0]
        assert new_frame.FrameOfReferenceUID == ds.StructureSetROISequence[0].ReferencedFrameOfReferenceUID
        assert new_frame.FrameOfReferenceUID != frame.FrameOfReferenceUID

    def test_two_patients_get_different_pseudonyms(self) -> None:
        """Different Patient IDs → different pseudonyms; the same ID → the same one."""
        a = _deid(_dataset("PID-1"))
        b = _deid(_dataset("PID-2"))
        c = _deid(_dataset("PID-1", name="OTHER^SPELLING"))
        assert a.PatientID != b.PatientID
        assert a.PatientID == c.PatientID == str(c.PatientName)
        assert a.PatientID.startswith("ANON") and len(a.PatientID) <= 64

    def test_pseudonyms_depend_on_the_key(self) -> None:
        """Without the key the pseudonym cannot be recomputed: another key, another value."""
        a = make_deidentifier(DeidSettings(), KEY)(_dataset())
        b = make_deidentifier(DeidSettings(), KEY[::-1])(_dataset())
        assert a.PatientID != b.PatientID and a.StudyInstanceUID != b.StudyInstanceUID

    def test_prefix_is_configurable(self) -> None:
        assert _deid(_dataset(), pseudonym_prefix="TRIAL7_").PatientID.startswith("TRIAL7_")


class TestDeterminism:
    def test_same_input_twice_gives_identical_bytes(self) -> None:
        """A crash-restart reprocessing the same input writes the same bytes."""
        blob = ct_series_bytes(1, rows=16, columns=16)[0]
        settings = DeidSettings(options=("retain_long_modified_dates", "clean_descriptors"))
        outs = {
            to_bytes(make_deidentifier(settings, KEY)(dcmread(BytesIO(blob)))) for _ in range(2)
        }
        assert len(outs) == 1

    def test_pickled_deidentifier_gives_identical_bytes(self) -> None:
        """The step survives the trip to a spawned worker and behaves the same there."""
        deid = make_deidentifier(DeidSettings(options=("retain_uids",)), KEY)
        clone = pickle.loads(pickle.dumps(deid))
        blob = ct_series_bytes(1, rows=16, columns=16)[0]
        assert to_bytes(deid(dcmread(BytesIO(blob)))) == to_bytes(clone(dcmread(BytesIO(blob))))

    def test_repr_does_not_show_the_key(self) -> None:
        deid = make_deidentifier(DeidSettings(), KEY)
        assert KEY.decode() not in repr(deid)


class TestMarks:
    def test_basic_marks(self) -> None:
        ds = _deid(_dataset())
        assert ds.PatientIdentityRemoved == "YES"
        assert "PS3.15" in ds.DeidentificationMethod
        codes = [(i.CodeValue, i.CodingSchemeDesignator) for i in ds.DeidentificationMethodCodeSequence]
        assert codes == [("113100", "DCM")]
        assert ds.LongitudinalTemporalInformationModified == "REMOVED"

    def test_each_option_is_marked_with_its_cid_7050_code(self) -> None:
        """One code per option, in a fixed order whatever the configuration's order."""
        options = ("clean_graphics", "retain_uids", "retain_safe_private",
                   "retain_device_identity", "retain_institution_identity",
                   "retain_patient_characteristics", "retain_long_full_dates",
                   "clean_descriptors", "clean_structured_content")  # fmt: skip
        ds = _deid(_dataset(), options=options)
        codes = [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113111", "113110", "113109", "113112", "113108", "113106",
                         "113105", "113104", "113103"]  # fmt: skip
        assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"
        assert ds.StudyDate == "20240315"

    @pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian,
                                        ExplicitVRBigEndian])
    def test_marks_of_a_read_file_in_its_encoding(self, syntax: str) -> None:
        """Files read from bytes get the marks pre-encoded in their own encoding: they read
        back the same in memory and after writing, for every uncompressed transfer syntax."""
        src = _dataset()
        src.file_meta.TransferSyntaxUID = syntax
        src.set_original_encoding(syntax == ImplicitVRLittleEndian,
                                  syntax != ExplicitVRBigEndian, None)
        blob = to_bytes(src)
        options = ("retain_long_modified_dates", "clean_graphics")
        deid = make_deidentifier(DeidSettings(options=options), KEY)
        for ds in (deid(dcmread(BytesIO(blob))), reread(to_bytes(deid(dcmread(BytesIO(blob)))))):
            assert ds.PatientIdentityRemoved == "YES"
            assert ds.DeidentificationMethod.startswith("DCMWATCH PS3.15")
            items = ds.DeidentificationMethodCodeSequence
            assert [(i.CodeValue, i.CodingSchemeDesignator) for i in items] == [
                ("113100", "DCM"), ("113107", "DCM"), ("113103", "DCM")]
            assert items[2].CodeMeaning == "Clean Graphics Option"
            assert ds.LongitudinalTemporalInformationModified == "MODIFIED"

    def test_modified_dates_marked(self) -> None:
        ds = _deid(_dataset(), options=["retain_long_modified_dates"])
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        codes = [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113107"]


class TestFileMeta:
    """The written file meta: made anew by `dicomfile.encode`, nothing of the input's kept."""

    def test_meta_keeps_only_part10_essentials(self) -> None:
        ds = _dataset()
        ds.file_meta.SourceApplicationEntityTitle = "SCANNER1"
        ds.file_meta.SendingApplicationEntityTitle = "SENDER"
        ds.file_meta.PrivateInformationCreatorUID = "1.2.3.4"
        ds.file_meta.PrivateInformation = b"MKPRIVATEINFO"
        blob = to_bytes(_deid(ds))
        assert sorted(e.keyword for e in reread(blob).file_meta) == [
            "FileMetaInformationGroupLength", "FileMetaInformationVersion",
            "ImplementationClassUID", "ImplementationVersionName",
            "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID",
        ]  # fmt: skip
        assert [m for m in (b"SCANNER1", b"SENDER", b"MKPRIVATEINFO", SOP.encode()) if m in blob] == []

    def test_retain_uids_keeps_instance_uid(self) -> None:
        ds = reread(to_bytes(_deid(_dataset(), options=["retain_uids"])))
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID == SOP


class TestSequences:
    def test_content_sequence_text_is_scrubbed(self) -> None:
        """D on (0040,A730) *Content Sequence*: items kept, their free text replaced."""
        ds = _dataset()
        ds.ContentSequence = Sequence([_item(RelationshipType="CONTAINS", ValueType="TEXT",
                                             TextValue="MKSRTEXT seen by Dr MKDOC",
                                             ConceptNameCodeSequence=Sequence([_item(
                                                 CodeValue="121071", CodingSchemeDesignator="DCM",
                                                 CodeMeaning="Finding")]))])  # fmt: skip
        out = to_bytes(_deid(ds))
        assert b"MKSRTEXT" not in out
        item = reread(out).ContentSequence[0]
        assert item.ValueType == "TEXT" and item.TextValue == "ANONYMIZED"

    def test_clean_structured_content_keeps_codes_and_allowlisted_text(self) -> None:
        ds = _dataset()
        ds.ContentSequence = Sequence([
            _item(ValueType="TEXT", TextValue="NORMAL STUDY"),
            _item(ValueType="TEXT", TextValue="MKSRTEXT"),
            _item(ValueType="CODE", ConceptCodeSequence=Sequence([_item(
                CodeValue="121071", CodingSchemeDesignator="DCM", CodeMeaning="Finding")])),
        ])  # fmt: skip
        out = _deid(ds, options=["clean_structured_content"],
                    descriptor_allowlist=["NORMAL STUDY"])  # fmt: skip
        items = out.ContentSequence
        assert items[0].TextValue == "NORMAL STUDY"
        assert items[1].TextValue == "ANONYMIZED"
        assert items[2].ConceptCodeSequence[0].CodeMeaning == "Finding"

    def test_unknown_uid_outside_the_table_is_remapped_registered_kept(self) -> None:
        """A UI attribute the table does not name: instance UIDs remapped, registered kept."""
        ds = _dataset()
        ds.IrradiationEventUID = "1.2.826.0.1.3680043.10.999.90"
        ds.ReferencedSOPClassUID = CTImageStorage
        ds.VolumeFrameOfReferenceUID = "1.2.826.0.1.3680043.10.999.91"  # not in Table E.1-1
        out = _deid(ds)
        assert out.ReferencedSOPClassUID == CTImageStorage
        assert out.VolumeFrameOfReferenceUID.startswith("2.25.")
        assert _deid(_dataset(), options=["retain_uids"]).StudyInstanceUID == STUDY


class TestOverrides:
    def test_overrides_by_keyword_tag_and_private(self) -> None:
        """Keep, replace, hash, empty by keyword or tag; keep a private by creator:element."""
        ds = _dataset()
        ds.PatientBirthDate = "19700101"
        ds.StudyDescription = "CHEST"
        ds.InstitutionName = "MKHOSPITAL"
        ds.AccessionNumber = "MKACC"
        block = ds.private_block(0x0011, "ACME", create=True)
        block.add_new(0x05, "LO", "kept private")
        block.add_new(0x06, "LO", "MKPRIVATE")
        overrides = [
            {"attribute": "StudyDescription", "action": "keep"},
            {"attribute": "(0008,0080)", "action": "replace", "value": "RESEARCH SITE"},
            {"attribute": "AccessionNumber", "action": "hash"},
            {"attribute": "PatientBirthDate", "action": "shift"},
            {"attribute": "ACME:05", "action": "keep"},
            {"attribute": "Modality", "action": "remove"},
        ]
        ds.Modality = "CT"
        out = _deid(ds, overrides=overrides)
        assert out.StudyDescription == "CHEST"
        assert out.InstitutionName == "RESEARCH SITE"
        assert out.AccessionNumber not in ("MKACC", "") and len(out.AccessionNumber) <= 16
        assert out.PatientBirthDate not in ("19700101", "") and len(out.PatientBirthDate) == 8
        assert "Modality" not in out
        assert out[0x00111005].value == "kept private"
        assert 0x00111006 not in out
        assert "WITH LOCAL ATTRIBUTE OVERRIDES" in out.DeidentificationMethod


class TestErrors:
    def test_short_key_refused(self) -> None:
        with pytest.raises(ConfigError):
            make_deidentifier(DeidSettings(), b"short")

    def test_failure_raises_transform_error_without_values(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failure inside names the tag and the exception class, never a value or cause."""

        def leaky(self: object, value: str) -> str:
            raise ValueError(f"cannot hash {value} of MKPATIENT")

        monkeypatch.setattr(Keyed, "uid", leaky)
        with pytest.raises(TransformError) as info:
            make_deidentifier(DeidSettings(), KEY)(_dataset())
        message = str(info.value)
        assert "MK" not in message and SOP not in message and STUDY not in message
        assert "ValueError" in message and "(0008,0018)" in message
        assert info.value.__cause__ is None and info.value.__suppress_context__


class TestRealisticInputs:
    def test_synthetic_series_leaks_no_marker(self) -> None:
        """A synthetic CT series planted with PHI comes out clean, slice after slice."""
        deid = make_deidentifier(DeidSettings(), KEY)
        outs = [to_bytes(deid(dcmread(BytesIO(b)))) for b in ct_series_bytes(3, rows=32, columns=32)]
        assert [find_markers(o, MARKERS) for o in outs] == [[], [], []]
        studies = {reread(o).StudyInstanceUID for o in outs}
        assert len(studies) == 1

    def test_pixel_data_untouched(self) -> None:
        ds = ct_series(1, rows=32, columns=32)[0]
        before = ds.PixelData
        assert _deid(ds).PixelData == before

    @pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtstruct.dcm"])
    def test_bundled_files_write_and_reread(self, name: str) -> None:
        """pydicom's own files: names, IDs and dates gone, the result a readable Part 10 file."""
        path = get_testdata_file(name)
        original = dcmread(path, force=True)
        out = reread(to_bytes(_deid(dcmread(path, force=True))))
        assert str(out.PatientName) != str(original.PatientName)
        assert out.get("StudyDate", "") in ("", None)
        assert out.SOPInstanceUID != original.SOPInstanceUID

    def test_implicit_vr_input(self) -> None:
        """Implicit VR files carry no VR: the dictionary's is used (rtplan.dcm is implicit)."""
        path = get_testdata_file("rtplan.dcm")
        ds = dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        out = _deid(ds)
        assert out.RTPlanDate == "19000101"  # X/D → D dummy of the right VR
