"""Kept numbers and codes must be numbers and codes: a value that does not fit its tag's VR goes.

The profile keeps Integer Strings, Decimal Strings, Code Strings and binary numbers because they
cannot carry a name or a date, but a file can put ``DOE^JOHN`` in an Integer String or label a
Slice Thickness LO. Files are built from bytes in all three uncompressed syntaxes, with the
element labelled by its own VR, by a text VR and as UN; the oracle is the output's bytes.
"""

from __future__ import annotations

import struct

import pytest
from crafted import ENCODINGS, Enc
from pydicom.dataset import Dataset
from test_mislabelled import file_with, process

from dcmwatch import dicomfile
from dcmwatch.deid import DeidSettings

#: (tag, dictionary VR, a value the tag may really hold) of attributes the profile keeps.
KEPT = (
    (0x00200013, "IS", b"12"),  # Instance Number
    (0x00180050, "DS", b"1.25"),  # Slice Thickness
    (0x00180015, "CS", b"CHEST"),  # Body Part Examined
    (0x00101010, "AS", b"042Y"),  # Patient's Age, kept with retain_patient_characteristics
    (0x00189073, "FD", struct.pack("<d", 2.5)),  # Acquisition Duration
)
#: Text that must never pass as a number or a code: a name, a date, an ID with a dash.
MARKERS = (b"DOE^MKJOHN", b"1951-08-29", b"MK-2804962")
SETTINGS = (DeidSettings(options=("retain_patient_characteristics",), unlisted="keep"),
            DeidSettings(options=("retain_patient_characteristics",)))  # fmt: skip


def _value(enc: Enc, vr: str, value: bytes) -> bytes:
    if vr == "FD" and not enc.little:
        return value[::-1]
    return value


def _read(blob: bytes) -> Dataset:
    return dicomfile.decode(blob, max_inflated=1 << 30)


@pytest.mark.parametrize("settings", SETTINGS, ids=["keep", "remove-text"])
@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.name)
@pytest.mark.parametrize(("tag", "vr", "good"), KEPT, ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("label", ["own", "LO", "UN"])
@pytest.mark.parametrize("marker", MARKERS)
def test_text_in_a_kept_number_or_code_is_removed(
    settings: DeidSettings, enc: Enc, tag: int, vr: str, good: bytes, label: str, marker: bytes
) -> None:
    """Whatever the file calls it, text where the tag holds a number or a code never passes."""
    claim = vr if label == "own" else label
    out = process(file_with(enc, (tag, enc.elem(tag, claim, marker))), settings)
    assert marker not in out


@pytest.mark.parametrize("settings", SETTINGS, ids=["keep", "remove-text"])
@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.name)
@pytest.mark.parametrize(("tag", "vr", "good"), KEPT, ids=lambda v: v if isinstance(v, str) else "")
def test_a_real_number_or_code_is_kept(
    settings: DeidSettings, enc: Enc, tag: int, vr: str, good: bytes
) -> None:
    """The check removes only what does not fit: a real value stays as it was."""
    blob = file_with(enc, (tag, enc.elem(tag, vr, _value(enc, vr, good))))
    out = _read(process(blob, settings))
    assert out[tag].value == _read(blob)[tag].value


def test_a_lowercase_code_string_from_a_real_archive_stays() -> None:
    """Lowercase is outside CS's repertoire but harmless and common: it is not removed."""
    enc = ENCODINGS[1]
    out = process(file_with(enc, (0x00180015, enc.elem(0x00180015, "CS", b"Chest"))))
    assert b"Chest" in out


#: A class UID the walk keeps as it is (not remapped), at the top level and in an item.
REFERENCED_SOP_CLASS, REFERENCED_IMAGES = 0x00081150, 0x00081140


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.name)
@pytest.mark.parametrize("label", ["UI", "LO", "UN"])
def test_a_kept_class_uid_must_be_a_uid(enc: Enc, label: str) -> None:
    """Class UIDs are kept unmapped; a name or a date in one is removed, a real one stays."""
    bad = b"1.2.840.10008.DOE^MKJOHN.19510829"
    item = enc.item(enc.elem(REFERENCED_SOP_CLASS, label, bad))
    blob = file_with(enc, (REFERENCED_SOP_CLASS, enc.elem(REFERENCED_SOP_CLASS, label, bad)),
                     (REFERENCED_IMAGES, enc.elem(REFERENCED_IMAGES, "SQ", item)))
    out = process(blob)
    assert b"MKJOHN" not in out and b"19510829" not in out
    good = b"1.2.840.10008.5.1.4.1.1.2\0"
    out = _read(process(file_with(enc, (REFERENCED_SOP_CLASS,
                                        enc.elem(REFERENCED_SOP_CLASS, label, good)))))
    assert str(out[REFERENCED_SOP_CLASS].value).rstrip("\0") == good.rstrip(b"\0").decode()


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.name)
@pytest.mark.parametrize("label", ["own", "UN"])
def test_text_sized_as_numbers_in_a_one_value_binary_attribute_is_removed(
    enc: Enc, label: str
) -> None:
    """Sixteen bytes fit an FD's size twice over, but Acquisition Duration holds one value:
    sixteen bytes in it are not an Acquisition Duration."""
    tag, text = 0x00189073, b"DOE^MKJOHN195108"  # Acquisition Duration: FD, VM 1
    out = process(file_with(enc, (tag, enc.elem(tag, "FD" if label == "own" else label, text))))
    assert b"MKJOHN" not in out
