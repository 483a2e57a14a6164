"""De-identified outputs gain no ``Error`` lines under dciodvfy (dicom3tools) vs their inputs."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from io import BytesIO
from pathlib import Path
from typing import Literal

import pytest
from conftest import KEY, to_bytes
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dcmwatch import dicomfile
from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.settings import OPTION_NAMES
from dcmwatch.testing import ct_series_bytes

DCIODVFY = shutil.which("dciodvfy")
pytestmark = pytest.mark.skipif(
    DCIODVFY is None, reason="dciodvfy missing: apt-get install dicom3tools"
)


#: A UID dciodvfy quotes in a message: the same error on the input names the original UID.
_QUOTED_UID = re.compile(r"(UID) [0-9.]+$")


def _errors(path: Path) -> Counter[str]:
    """dciodvfy's Error lines, UIDs they quote masked, counted (a second instance is new)."""
    assert DCIODVFY is not None
    run = subprocess.run(
        [DCIODVFY, str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    lines = (run.stdout + run.stderr).splitlines()
    return Counter(_QUOTED_UID.sub(r"\1 <uid>", line) for line in lines if line.startswith("Error"))


#: pydicom's bundled files, by exact name: CT, MR (three encodings), RT (plan, dose, structure
#: set), SR (comprehensive and basic text), an overlay, a waveform.
BUNDLED = (
    "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
    "rtplan.dcm", "rtdose.dcm", "rtstruct.dcm", "test-SR.dcm", "reportsi.dcm",
    "examples_overlay.dcm", "waveform_ecg.dcm",
)  # fmt: skip
#: A realistic CT series: the first slice carries an overlay, the rest reference each other.
SERIES = tuple(f"synthetic_ct_{i}.dcm" for i in range(3))
_ALL_OPTIONS = tuple(o for o in OPTION_NAMES if o != "retain_long_full_dates")
#: Issue 15's IOD-validity cases as fixtures: a CT with a (Type 3) Referenced Study Sequence, an
#: animal patient with the Type 2C Responsible Person / Organization, and a CT whose Referenced
#: Image Sequence is labelled OB (parsed and walked, written back as SQ).
GENERATED = ("ct_referenced_study.dcm", "ct_animal.dcm", "ct_sequence_as_ob.dcm")
_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def _ct_with(**values: object) -> Dataset:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _generated(name: str) -> bytes:
    if name == "ct_referenced_study.dcm":
        study = _item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1",
                      ReferencedSOPInstanceUID="1.2.826.0.1.3680043.10.999.31")  # fmt: skip
        return to_bytes(_ct_with(ReferencedStudySequence=Sequence([study])))
    if name == "ct_animal.dcm":
        return to_bytes(_ct_with(
            PatientSpeciesDescription="Canis lupus familiaris", PatientBreedDescription="Beagle",
            PatientBreedCodeSequence=Sequence(), BreedRegistrationSequence=Sequence(),
            ResponsiblePerson="MKOWNER^ALICE", ResponsiblePersonRole="OWNER",
            ResponsibleOrganization="MKVETCLINIC",
        ))  # fmt: skip
    image = _item(ReferencedSOPClassUID=_CT_IMAGE,
                  ReferencedSOPInstanceUID="1.2.826.0.1.3680043.10.999.32")  # fmt: skip
    image.is_undefined_length_sequence_item = False
    ds = _ct_with(ReferencedImageSequence=Sequence([image]))
    ds["ReferencedImageSequence"].is_undefined_length = False
    blob = to_bytes(ds)
    header = b"\x08\x00\x40\x11SQ"  # (0008,1140) in Explicit VR Little Endian
    assert blob.count(header) == 1
    return blob.replace(header, b"\x08\x00\x40\x11OB")


def _input(name: str) -> bytes:
    if name in SERIES:
        return ct_series_bytes(len(SERIES), rows=64, columns=64)[SERIES.index(name)]
    if name in GENERATED:
        return _generated(name)
    return Path(get_testdata_file(name)).read_bytes()


def _new_errors(tmp_path: Path, blob: bytes, settings: DeidSettings) -> list[str]:
    source, result = tmp_path / "in.dcm", tmp_path / "out.dcm"
    source.write_bytes(blob)
    deid = make_deidentifier(settings, KEY)
    result.write_bytes(dicomfile.encode(deid(dicomfile.decode(blob, max_inflated=1 << 30))))
    # The input may have errors of its own (test-SR.dcm has several): none may be added.
    return sorted((_errors(result) - _errors(source)).elements())


@pytest.mark.parametrize("name", BUNDLED + SERIES + GENERATED)
@pytest.mark.parametrize("options", [(), _ALL_OPTIONS, ("retain_long_full_dates",)],
                         ids=["basic", "all-options", "full-dates"])
@pytest.mark.parametrize("unlisted", ["remove-text", "keep"])
def test_no_new_dciodvfy_errors(
    tmp_path: Path, name: str, options: tuple[str, ...], unlisted: Literal["keep", "remove-text"]
) -> None:
    """The basic profile (and the options) keep each IOD as valid as it was, whether the
    attributes Table E.1-1 does not name are kept or their text removed."""
    settings = DeidSettings(options=options, unlisted=unlisted)
    assert _new_errors(tmp_path, _input(name), settings) == []


#: The images ``unlisted = "remove"`` keeps valid (its essential set covers CT and MR).
_IMAGES = ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
           "examples_overlay.dcm", *SERIES)  # fmt: skip


@pytest.mark.parametrize("name", _IMAGES)
def test_remove_keeps_ct_and_mr_valid(tmp_path: Path, name: str) -> None:
    """``remove`` keeps every attribute a CT or MR image needs (docs/deidentification.md: not RT, SR, waveforms)."""
    assert _new_errors(tmp_path, _input(name), DeidSettings(unlisted="remove")) == []


def test_an_animal_keeps_its_owner_attributes_empty() -> None:
    """Responsible Person and Organization (Type 2C for an animal) stay, emptied: the owner's
    name is gone, the IOD keeps them; the role (Type 1C on a person's name) goes with it."""
    blob = _generated("ct_animal.dcm")
    deid = make_deidentifier(DeidSettings(), KEY)
    out = dicomfile.encode(deid(dicomfile.decode(blob, max_inflated=1 << 30)))
    assert b"MKOWNER" not in out
    assert b"MKVETCLINIC" not in out
    back = dcmread(BytesIO(out))
    assert back.ResponsiblePerson == "" and back.ResponsibleOrganization == ""
    assert "ResponsiblePersonRole" not in back
    assert back.PatientSpeciesDescription == "Canis lupus familiaris"
