"""Property: for random datasets, no original value of a non-K table attribute survives."""

from __future__ import annotations

from datetime import date, timedelta

from conftest import KEY, reread, to_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.settings import OPTION_NAMES
from dcmwatch.deid.table import TABLE

_TEXT = ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR")
_SUPPORTED = frozenset({*_TEXT, "DA", "DT", "TM", "UI", "DS", "IS", "US", "UL", "SS", "FD", "SQ"})


def _candidates() -> tuple[list[int], list[int]]:
    plain, sequences = [], []
    for tag, (vr, _vm, _name, retired, _keyword) in DicomDictionary.items():
        group = tag >> 16
        if retired or vr not in _SUPPORTED or group in (0x0000, 0x0002) or group >= 0x7FE0:
            continue
        (sequences if vr == "SQ" else plain).append(tag)
    return sorted(plain), sorted(sequences)


_PLAIN, _SEQUENCES = _candidates()
# Half the draws from Table E.1-1, so the interesting attributes are met often.
_TABLE_PLAIN = [t for t in _PLAIN if t in TABLE]
_TABLE_SEQUENCES = [t for t in _SEQUENCES if t in TABLE]


class _Values:
    """Values valid for their VR and unique per element, so a survivor is unambiguous."""

    def __init__(self) -> None:
        self.count = 0

    def make(self, vr: str) -> tuple[object, bytes | None]:
        self.count += 1
        n = self.count
        if vr in _TEXT:
            return f"HY{n:05d}Q", f"HY{n:05d}Q".encode()
        when = date(1800, 1, 1) + timedelta(days=4001 * n)
        da = f"{when.year:04d}{when.month:02d}{when.day:02d}"
        if vr == "DA":
            return da, da.encode()
        if vr == "DT":
            return da + "0102", (da + "0102").encode()
        if vr == "TM":
            return f"1213{n % 60:02d}.{n:06d}", f"1213{n % 60:02d}.{n:06d}".encode()
        if vr == "UI":
            uid = f"1.2.826.0.1.3680043.10.998.{10000 + n}"
            return uid, uid.encode()
        if vr == "DS":
            return f"8{n:05d}.5", f"8{n:05d}.5".encode()
        if vr == "IS":
            return f"6{n:05d}", f"6{n:05d}".encode()
        return n, None  # binary numbers: not a reliable byte marker


@st.composite
def datasets(draw: st.DrawFn) -> tuple[Dataset, list[tuple[int, bytes]]]:
    """A random dataset up to three sequence levels deep, and the (tag, marker) of each table
    attribute planted: under the basic profile every such marker must vanish."""
    values = _Values()
    must_vanish: list[tuple[int, bytes]] = []

    def level(depth: int) -> Dataset:
        ds = Dataset()
        count = draw(st.integers(1, 12))
        for _ in range(count):
            pool = draw(st.sampled_from([_TABLE_PLAIN, _PLAIN]))
            tag = draw(st.sampled_from(pool))
            vr = DicomDictionary[tag][0][:2]
            value, marker = values.make(vr)
            ds[tag] = DataElement(tag, vr, value)
            if tag in TABLE and marker:
                must_vanish.append((tag, marker))
        if depth < 3:
            for _ in range(draw(st.integers(0, 2))):
                pool = draw(st.sampled_from([_TABLE_SEQUENCES, _SEQUENCES]))
                tag = draw(st.sampled_from(pool))
                items = [level(depth + 1) for _ in range(draw(st.integers(1, 2)))]
                ds[tag] = DataElement(tag, "SQ", Sequence(items))
        return ds

    ds = level(0)
    if "SOPInstanceUID" not in ds:  # a stored instance has one; dicomfile refuses it without
        ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.998.1"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.998.1"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds, must_vanish


_DEID = make_deidentifier(DeidSettings(), KEY)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_no_table_value_survives_the_basic_profile(
    case: tuple[Dataset, list[tuple[int, bytes]]],
) -> None:
    """No original value of a Table E.1-1 attribute (none is K in the basic profile) is left
    anywhere in the output bytes, and the output writes and reads back, every element parsing."""
    ds, must_vanish = case
    out = to_bytes(_DEID(ds))
    assert [m for _, m in must_vanish if m in out] == []
    back = reread(out)
    assert back.PatientIdentityRemoved == "YES"
    for elem in back.iterall():
        _ = elem.value


_OPTION_SETS = st.sets(st.sampled_from(OPTION_NAMES)).filter(
    lambda o: not {"retain_long_full_dates", "retain_long_modified_dates"} <= o
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets(), _OPTION_SETS, st.sampled_from([ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
def test_options_on_files_read_from_bytes(
    case: tuple[Dataset, list[tuple[int, bytes]]], options: set[str], syntax: str
) -> None:
    """The path real inputs take (read from bytes, in either VR encoding, our values written as
    raw elements) with any set of options: a table attribute whose column is empty for every
    enabled option keeps no original value, and the output reads back whole."""
    ds, planted = case
    ds.file_meta.TransferSyntaxUID = syntax
    blob = to_bytes(ds)
    enabled = tuple(o for o in OPTION_NAMES if o in options)
    deid = make_deidentifier(DeidSettings(options=enabled), KEY)
    source = reread(blob)
    assert source.original_encoding[0] is (syntax == ImplicitVRLittleEndian)
    out = to_bytes(deid(source))
    columns_off = [
        (tag, m) for tag, m in planted if not any(o in options for o, _ in TABLE[tag][1])
    ]
    assert [f"{tag:08X}" for tag, m in columns_off if m in out] == []
    back = reread(out)
    assert back.PatientIdentityRemoved == "YES"
    assert len(back.DeidentificationMethodCodeSequence) == 1 + len(enabled)
    for elem in back.iterall():
        _ = elem.value
