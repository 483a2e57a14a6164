"""Crafted files whose VRs lie: every route a value took past the walk (issue 15, points 1-5, 8b).

Files are built from bytes (``crafted.py``) in Implicit VR Little Endian, Explicit VR Little
Endian and Explicit VR Big Endian, read by ``dicomfile.decode`` as the daemon reads them,
de-identified and written by ``dicomfile.encode``. The oracle is the output's bytes: no marker
may be left; dcmdump reads the output where its structure matters.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import KEY
from crafted import ENCODINGS, EVRBE, EVRLE, IVRLE, Enc, header, part10, sorted_body

from dcmwatch import dicomfile
from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.errors import InputError

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
REF_SOP_CLASS, REF_SOP_INSTANCE = 0x00081150, 0x00081155
#: Public sequences the attacker's files mislabelled (issue 15, point 1).
SEQUENCES = (0x00081140, 0x00082112, 0x00081115, 0x0040A730)
CLAIMS = ("SQ", "OB", "OW", "UN", "UT", "LO")
SOP = "1.2.826.0.1.3680043.10.999.1500"
DCMDUMP = shutil.which("dcmdump")


def process(blob: bytes, settings: DeidSettings | None = None) -> bytes:
    """The core the daemon runs on one file: read, de-identify, write."""
    ds = dicomfile.decode(blob, max_inflated=1 << 30)
    return dicomfile.encode(make_deidentifier(settings or DeidSettings(), KEY)(ds))


def file_with(enc: Enc, *elements: tuple[int, bytes]) -> bytes:
    body = sorted_body((0x00080016, header(enc, SOP)), *elements)
    return part10(enc, body, SOP)


def mislabelled(
    enc: Enc, tag: int, claim: str, inner: Enc, content: bytes, *, undefined: bool
) -> bytes:
    """``tag`` holding one item of ``content`` (encoded in ``inner``), labelled ``claim``."""
    item = inner.item(content, undefined=undefined)
    if not undefined:
        return enc.elem(tag, claim, item)
    tail = inner if claim == "UN" else enc  # CP-246: a UN's delimiter is in the value's syntax
    return enc.elem(tag, claim, item, undefined=True)[:-8] + tail.delimiter(0xE0DD)


def nested(enc: Enc, claim: str, inner_of: str, *, undefined: bool, depth: int = 3) -> tuple[
    bytes, list[bytes]
]:
    """A sequence labelled ``claim`` at each of ``depth`` levels, one inside the other, each
    item holding a Patient's Name and Patient ID marker of its own level."""
    markers: list[bytes] = []
    content = b""
    for level in reversed(range(depth)):
        inner = enc if inner_of == "own" or enc.implicit else IVRLE
        name, pid = f"MKNAME{level}^LVL".encode(), f"MKPID{level}X".encode()
        markers += [name, pid]
        own = sorted_body(
            (PATIENT_NAME, inner.elem(PATIENT_NAME, "PN", name)),
            (PATIENT_ID, inner.elem(PATIENT_ID, "LO", pid)),
            (REF_SOP_INSTANCE, inner.text(REF_SOP_INSTANCE, "UI", f"1.2.826.0.1.3680043.10.999.6{level}")),
        )  # fmt: skip
        if content:
            tag = SEQUENCES[(level + 1) % len(SEQUENCES)]
            own = sorted_body((0, own), (tag, content))
        tag = SEQUENCES[level % len(SEQUENCES)]
        outer = enc if level == 0 else inner
        content = mislabelled(outer, tag, claim, inner, own, undefined=undefined)
    return content, markers


def _cases() -> list[tuple[Enc, str, str, bool]]:
    cases = []
    for enc in ENCODINGS:
        for claim in CLAIMS if not enc.implicit else ("none",):
            for inner_of in ("own", "implicit") if not enc.implicit else ("own",):
                for undefined in (False, True):
                    if undefined and claim == "LO":
                        continue  # a 2-byte length cannot say undefined
                    cases.append((enc, claim, inner_of, undefined))
    return cases


def _well_formed(enc: Enc, claim: str, inner_of: str, *, undefined: bool) -> bool:
    """Whether a reader must take the file: any defined length; an undefined one only where
    the standard allows it (SQ in the file's syntax; UN in Implicit VR Little Endian)."""
    if not undefined or enc.implicit:
        return True
    if claim == "UN":
        return inner_of == "implicit"
    return claim == "SQ" and inner_of == "own"


def _id(case: tuple[Enc, str, str, bool]) -> str:
    enc, claim, inner_of, undefined = case
    return f"{enc.name}-{claim}-{inner_of}-{'undefined' if undefined else 'defined'}"


@pytest.mark.parametrize("case", _cases(), ids=_id)
def test_a_sequence_is_walked_whatever_vr_the_file_gives_it(
    case: tuple[Enc, str, str, bool],
) -> None:
    """Point 1: nested Patient's Names and IDs inside sequences labelled OB, OW, UN, UT, LO (or
    SQ), three levels deep, items in the file's syntax or Implicit VR Little Endian, defined
    or undefined lengths: none survives. An undefined length where the standard allows none
    (OB, UT) or items in the wrong syntax make a file that is quarantined, never passed."""
    enc, claim, inner_of, undefined = case
    claim = "SQ" if enc.implicit else claim  # no label in the file: the tag says SQ
    seq, markers = nested(enc, claim, inner_of, undefined=undefined)
    blob = file_with(enc, (SEQUENCES[0], seq))
    assert all(m in blob for m in markers)
    if not _well_formed(enc, claim, inner_of, undefined=undefined):
        try:
            out = process(blob)
        except InputError:
            return
    else:
        out = process(blob)
    assert [m for m in markers if m in out] == []
    dump = dcmdump(out)
    assert "(0008,1140) SQ" in dump  # written as the sequence it is, items walked
    assert dump.count("(0010,0010) PN") == 3


def dcmdump(blob: bytes) -> str:
    """dcmdump's reading of an output (an independent parser); skips without dcmtk."""
    if DCMDUMP is None:
        pytest.skip("dcmdump missing: apt-get install dcmtk")
    run = subprocess.run(
        [DCMDUMP, "-q", "+L", "-"], input=blob, capture_output=True, check=True, timeout=60
    )
    return run.stdout.decode("latin-1")



@pytest.mark.parametrize(
    ("tag", "claim"),
    [(0x00081140, "OB"), (0x00082112, "UT"), (0x00081115, "OB"), (0x0040A730, "OB")],
    ids=["1140-OB", "2112-UT", "1115-OB", "A730-OB"],
)
@pytest.mark.parametrize("enc", [EVRLE, EVRBE], ids=lambda e: e.name)
def test_each_sequence_seen_leaking(enc: Enc, tag: int, claim: str) -> None:
    """The four labels of the attack report, each alone: the nested name is gone."""
    item = IVRLE.elem(PATIENT_NAME, "PN", b"MKSEEN^LEAK")  # CP-246: items in implicit LE
    blob = file_with(enc, (tag, mislabelled(enc, tag, claim, IVRLE, item, undefined=False)))
    out = process(blob)
    assert b"MKSEEN" not in out
    assert f"({tag >> 16:04x},{tag & 0xFFFF:04x}) SQ" in dcmdump(out)


def _inside(enc: Enc, content: bytes, *, claim: str = "SQ") -> bytes:
    """``content`` as the one item of (0008,1140) *Referenced Image Sequence*."""
    inner = enc if claim == "SQ" or enc.implicit else IVRLE
    return mislabelled(enc, SEQUENCES[0], claim, inner, content, undefined=False)


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.name)
def test_a_uid_is_remapped_whatever_vr_the_file_gives_it(enc: Enc) -> None:
    """Point 2: (0020,0242) *SOP Instance UID of Concatenation Source* and (0008,1155) labelled
    LO, at the top and inside an item, are remapped like any UI element."""
    concat, referenced = "1.2.826.0.1.3680043.10.999.4242", "1.2.826.0.1.3680043.10.999.1155"
    item = enc.text(REF_SOP_INSTANCE, "LO", referenced) + enc.text(0x00200242, "LO", concat)
    blob = file_with(
        enc, (0x00200242, enc.text(0x00200242, "LO", concat)), (SEQUENCES[0], _inside(enc, item))
    )
    out = process(blob)
    assert concat.encode() not in out
    assert referenced.encode() not in out
    dump = dcmdump(out)
    assert dump.count("(0020,0242) UI [2.25.") == 2
    assert "(0008,1155) UI [2.25." in dump


#: One attribute per VR the table does not name (AE and AS: table attributes, none other has
#: those VRs), each planted inside a scrubbed (D) Content Sequence item.
EVERY_VR: dict[str, int] = {
    "AE": 0x00400241, "AS": 0x00101010, "AT": 0x00140202, "CS": 0x00400035, "DA": 0x00140102,
    "DS": 0x00082130, "DT": 0x00080404, "FD": 0x00081163, "FL": 0x00089459, "IS": 0x00081160,
    "LO": 0x00080070, "LT": 0x00080108, "OB": 0x0008041B, "OD": 0x003A032E, "OF": 0x00181638,
    "OL": 0x00660040, "OV": 0x00720081, "OW": 0x00281201, "PN": 0x00140104, "SH": 0x00082120,
    "SL": 0x00186020, "SS": 0x00189219, "ST": 0x00080114, "SV": 0x00720082, "TM": 0x00140103,
    "UC": 0x0008030C, "UI": 0x00041432, "UL": 0x00041200, "UN": 0x00300010, "UR": 0x0008010E,
    "US": 0x00041212, "UT": 0x0008030E, "UV": 0x0008040C,
}  # fmt: skip
_TEXT_MARKERS = {
    "AS": b"077Y", "DA": b"18230517", "DS": b"90123.25", "DT": b"18230517101112",
    "IS": b"712345", "TM": b"235958.123456", "UI": b"1.2.826.0.1.3680043.10.999.7777",
}  # fmt: skip


def every_vr_item(enc: Enc) -> tuple[bytes, dict[str, bytes]]:
    """One element of every VR, each with a marker its bytes betray (eight bytes for the
    binary VRs: a whole number of values of every size), and a Value Type (structure)."""
    markers: dict[str, bytes] = {}
    parts: list[tuple[int, bytes]] = []
    for vr, tag in EVERY_VR.items():
        if vr in _TEXT_MARKERS:
            marker = _TEXT_MARKERS[vr]
        elif len(vr) == 2 and vr in ("AT", "FD", "FL", "OB", "OD", "OF", "OL", "OV", "OW", "SL",
                                     "SS", "SV", "UL", "UN", "US", "UV"):  # fmt: skip
            marker = b"MK" + vr.encode() + b"BINQ"
        else:
            marker = b"MKSCRUB" + vr.encode()
        markers[vr] = marker
        value = marker
        if not enc.little and vr in ("AT", "FD", "FL", "OD", "OF", "OL", "OV", "OW", "SL", "SS",
                                     "SV", "UL", "US", "UV"):  # fmt: skip
            value = marker  # the same bytes in either order are the marker planted
        parts.append((tag, enc.elem(tag, vr, value)))
    parts.append((0x0040A040, enc.text(0x0040A040, "CS", "TEXT")))
    return sorted_body(*parts), markers


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.name)
def test_everything_in_a_scrubbed_sequence_is_scrubbed_in_every_vr(enc: Enc) -> None:
    """Point 3: inside (0040,A730) *Content Sequence* (D: scrubbed) a marker in every VR, codes,
    numbers and binary values included, is gone; the structure term (Value Type) stays."""
    item, markers = every_vr_item(enc)
    content = enc.elem(0x0040A730, "SQ", enc.item(item))
    out = process(file_with(enc, (0x0040A730, content)))
    found = {vr: m for vr, m in markers.items() if m in out}
    assert found == {}
    dump = dcmdump(out)
    assert "(0040,a040) CS [TEXT]" in dump
    assert "077Y" not in dump


def private_sequence(enc: Enc, claim: str, *, undefined: bool) -> tuple[bytes, list[bytes]]:
    """A (0009,1020) private sequence of creator MKVENDOR 1 labelled ``claim``: its item holds
    a Patient's Name, Other Patient IDs Sequence and an unsafe private element."""
    inner = IVRLE if claim == "UN" or enc.implicit else enc
    markers = [b"MKPRIVNAME^X", b"MKOTHERPID", b"MKUNSAFEPRIV"]
    other = inner.elem(0x00101002, "SQ", inner.item(inner.elem(PATIENT_ID, "LO", markers[1])))
    item = sorted_body(
        (0x00090010, inner.text(0x00090010, "LO", "MKVENDOR 1")),
        (0x00091011, inner.elem(0x00091011, "LO", markers[2])),
        (PATIENT_NAME, inner.elem(PATIENT_NAME, "PN", markers[0])),
        (0x00101002, other),
    )
    creator = enc.text(0x00090010, "LO", "MKVENDOR 1")
    seq = mislabelled(enc, 0x00091020, claim, inner, item, undefined=undefined)
    return sorted_body((0x00090010, creator), (0x00091020, seq)), markers


@pytest.mark.parametrize(
    ("enc", "claim", "undefined"),
    [(IVRLE, "SQ", False), (IVRLE, "SQ", True), (EVRLE, "UN", False), (EVRLE, "UN", True),
     (EVRLE, "OB", False), (EVRLE, "SQ", False), (EVRBE, "UN", False), (EVRBE, "SQ", True)],
    ids=lambda v: getattr(v, "name", str(v)),
)  # fmt: skip
def test_a_kept_private_sequence_is_walked_however_it_arrives(
    enc: Enc, claim: str, undefined: bool
) -> None:
    """Point 4: with Retain Safe Private, a kept private sequence that arrives as UN (explicit,
    or Implicit VR with no label; defined or undefined length) keeps its place, and the
    profile applies inside: names, other IDs and unsafe private elements go."""
    body, markers = private_sequence(enc, claim, undefined=undefined)
    blob = file_with(enc, (0x00090010, body))
    settings = DeidSettings(
        options=("retain_safe_private",), safe_private=(("MKVENDOR 1", 0x20),)
    )
    out = process(blob, settings)
    assert [m for m in markers if m in out] == []
    dump = dcmdump(out)
    # Implicit VR, defined length: dcmdump cannot tell a private sequence from bytes.
    assert "(0009,1020) SQ" in dump or (enc.implicit and "(0009,1020) ??" in dump)
    assert dump.count("(0009,0010) LO [MKVENDOR 1]") == 1  # the item's creator went with 1011


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.name)
def test_command_and_file_meta_groups_never_stay_in_an_item(enc: Enc) -> None:
    """Point 5: (0000,xxxx) and (0002,xxxx) elements inside an item go; group 0000 at the top
    level goes too (little endian only: pydicom reads a top-level group 0000 as a command set,
    in Implicit VR Little Endian, whatever the file's syntax)."""
    item = sorted_body(
        (0x00000902, enc.elem(0x00000902, "LO", b"MKCMDINITEM")),
        (0x00020016, enc.elem(0x00020016, "AE", b"MKMETAAE")),
        (0x00020100, enc.text(0x00020100, "UI", "1.2.826.0.1.3680043.10.999.2100")),
        (REF_SOP_CLASS, enc.text(REF_SOP_CLASS, "UI", "1.2.840.10008.5.1.4.1.1.2")),
    )
    top = [(0x00000902, enc.elem(0x00000902, "LO", b"MKCMDATTOP"))] if enc.little else []
    out = process(file_with(enc, *top, (SEQUENCES[0], _inside(enc, item))))
    for marker in (b"MKCMDINITEM", b"MKMETAAE", b"1.2.826.0.1.3680043.10.999.2100", b"MKCMDATTOP"):
        assert marker not in out
    dump = dcmdump(out)
    assert "(0008,1150) UI" in dump  # the item itself stays


@pytest.mark.parametrize("enc", ENCODINGS, ids=lambda e: e.name)
@pytest.mark.parametrize("claim", ["SQ", "OB", "UN"])
def test_a_sequence_that_does_not_parse_is_removed(enc: Enc, claim: str) -> None:
    """Point 1: a value that should be a sequence but does not parse (an item that claims more
    bytes than it has) is removed; the rest of the file goes on."""
    garbage = enc.delimiter(0xE000, 64) + b"MKGARBAGEPN^X" + b"\0" * 3
    elem = enc.elem(SEQUENCES[0], "SQ" if enc.implicit else claim, garbage)
    out = process(file_with(enc, (SEQUENCES[0], elem)))
    assert b"MKGARBAGE" not in out
    dump = dcmdump(out)
    assert "(0008,1140)" not in dump
    assert "(0012,0062) CS [YES]" in dump


@pytest.mark.parametrize("enc", [EVRLE, EVRBE], ids=lambda e: e.name)
def test_an_explicit_un_of_undefined_length_is_read(enc: Enc) -> None:
    """Point 8b: a valid Explicit VR file with a UN of undefined length (its items in Implicit
    VR Little Endian, CP-246), which dcmdump reads, is de-identified instead of quarantined
    (as truncated in little endian, as not DICOM in big endian); walked by its tag."""
    content = sorted_body(
        (REF_SOP_INSTANCE, IVRLE.text(REF_SOP_INSTANCE, "UI", "1.2.826.0.1.3680043.10.999.88")),
        (PATIENT_NAME, IVRLE.elem(PATIENT_NAME, "PN", b"MKCP246^NAME")),
    )
    un = mislabelled(enc, SEQUENCES[0], "UN", IVRLE, IVRLE.item(content, undefined=True)[8:-8],
                     undefined=True)  # fmt: skip
    blob = file_with(enc, (SEQUENCES[0], un))
    assert "(0010,0010) PN [MKCP246^NAME]" in dcmdump(blob)
    out = process(blob)
    assert b"MKCP246" not in out
    assert "(0008,1140) SQ" in dcmdump(out)


@pytest.mark.parametrize("enc", [EVRLE, EVRBE], ids=lambda e: e.name)
def test_encapsulated_pixel_data_in_an_item_survives_the_strict_parser(enc: Enc) -> None:
    """A defined-length sequence whose item holds encapsulated Pixel Data (an icon, say) is
    parsed, not removed: its fragments are kept as they were."""
    fragments = enc.delimiter(0xE000, 0) + enc.delimiter(0xE000, 8) + b"ICONBYTE"
    item = sorted_body(
        (REF_SOP_CLASS, enc.text(REF_SOP_CLASS, "UI", "1.2.840.10008.5.1.4.1.1.2")),
        (0x7FE00010, enc.elem(0x7FE00010, "OB", fragments, undefined=True)),
    )
    out = process(file_with(enc, (SEQUENCES[0], _inside(enc, item))))
    assert b"ICONBYTE" in out
    dump = dcmdump(out)
    assert "(0008,1140) SQ" in dump
    assert "(7fe0,0010) OB (PixelSequence" in dump


def test_a_nested_big_endian_un_of_undefined_length_is_quarantined() -> None:
    """Known limit: inside an item of a big endian file, a CP-246 UN of undefined length is not
    read (pydicom reads its items in big endian); the file is quarantined, never passed."""
    un = mislabelled(EVRBE, SEQUENCES[1], "UN", IVRLE, IVRLE.elem(PATIENT_NAME, "PN", b"MKBEUN^X"),
                     undefined=True)  # fmt: skip
    outer = mislabelled(EVRBE, SEQUENCES[0], "SQ", EVRBE, un, undefined=True)
    with pytest.raises(InputError):
        process(file_with(EVRBE, (SEQUENCES[0], outer)))
