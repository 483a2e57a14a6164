"""Property: random nesting with random claimed VRs never lets a planted marker through.

Files are built from bytes (``crafted.py``) in a random syntax: Table E.1-1 attributes carrying
markers, labelled with their own VR or a lie (OB, UN, LO, UT); sequences, public or a kept
private one, labelled SQ or a lie, their items in the file's syntax or in Implicit VR Little
Endian, of defined or (where the standard allows it) undefined length, up to three levels deep;
inside scrubbed (D) sequences also attributes the table does not name, of every VR. The oracle
is the output's bytes: no marker of any level may be in them.
"""

from __future__ import annotations

from datetime import date, timedelta

from conftest import KEY
from crafted import ENCODINGS, IVRLE, Enc, header, part10, sorted_body
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcmwatch import dicomfile
from dcmwatch.deid import DeidSettings, make_deidentifier
from dcmwatch.deid.profile import Act, compile_rules
from dcmwatch.deid.table import TABLE
from dcmwatch.deid.values import resolve_vr

_TEXT = ("AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UR", "DA", "DT", "UI")
_HEADER = (0x00080016, 0x00080018)
#: Table attributes with a value a marker can hide in, outside the command and meta groups.
_PLAIN = sorted(
    t for t in TABLE
    if resolve_vr(t, None) in _TEXT and t >> 16 not in (0x0000, 0x0002) and t not in _HEADER
)  # fmt: skip
#: Sequences: of the table (X, Z, D, U*) and others the profile walks as they are.
_SEQUENCES = sorted(
    {t for t in TABLE if resolve_vr(t, None) == "SQ"}
    | {0x00081115, 0x00081140, 0x00082112, 0x00081199, 0x0040A730, 0x00400260}
)
_PRIVATE_SEQ = 0x00091020  # creator MKVENDOR 1 at (0009,0010), kept by the settings below
_SETTINGS = DeidSettings(options=("retain_safe_private",), safe_private=(("MKVENDOR 1", 0x20),))
_DEID = make_deidentifier(_SETTINGS, KEY)
#: Sequences whose items are scrubbed (D): there a value of any VR must go, named or not.
_SCRUBBING = frozenset(
    t for t, rule in compile_rules(_SETTINGS).table.items() if rule.act is Act.SCRUB
)
#: Attributes the table does not name, one per VR (and an unknown tag): planted in scrubbed items.
_ANY_VR = (
    0x00140202, 0x00400035, 0x00140102, 0x00082130, 0x00080404, 0x00081163, 0x00089459,
    0x00081160, 0x00080070, 0x00080108, 0x0008041B, 0x003A032E, 0x00181638, 0x00660040,
    0x00720081, 0x00281201, 0x00140104, 0x00082120, 0x00186020, 0x00189219, 0x00080114,
    0x00720082, 0x00140103, 0x0008030C, 0x00041432, 0x00041200, 0x00300010, 0x0008010E,
    0x00041212, 0x0008030E, 0x0008040C,
)  # fmt: skip
SOP = "1.2.826.0.1.3680043.10.997.1"


class _Markers:
    """Unique values, valid for their VR, whose bytes betray them."""

    def __init__(self) -> None:
        self.planted: list[bytes] = []

    def make(self, vr: str) -> bytes:
        n = len(self.planted)
        if vr == "DA":
            when = date(1800, 1, 1) + timedelta(days=4001 * n)
            value = f"{when:%Y%m%d}".encode()
        elif vr == "DT":
            when = date(1800, 1, 1) + timedelta(days=4001 * n)
            value = f"{when:%Y%m%d}1011".encode()
        elif vr == "UI":
            value = f"1.2.826.0.1.3680043.10.997.{10000 + n}".encode()
        elif vr == "DS":
            value = f"8{n:05d}.5".encode()
        elif vr == "IS":
            value = f"6{n:05d}".encode()
        elif vr == "TM":
            value = f"1213{n % 60:02d}.{n:06d}".encode()
        elif vr not in _TEXT:  # binary: eight bytes, a whole number of values of any size
            value = f"MB{n:05d}Q".encode()
        else:
            value = f"MKHY{n:04d}Q".encode()
        self.planted.append(value)
        return value


@st.composite
def lying_files(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A file of random nesting and random VR claims, and every marker planted in it."""
    enc: Enc = draw(st.sampled_from(ENCODINGS))
    markers = _Markers()

    def claim(true_vr: str, lies: tuple[str, ...]) -> str:
        return true_vr if enc.implicit else draw(st.sampled_from((true_vr, *lies)))

    def level(at: Enc, depth: int, scrubbed: bool) -> dict[int, bytes]:
        elements: dict[int, bytes] = {}
        plain = draw(st.lists(st.sampled_from(_PLAIN), min_size=1, max_size=5, unique=True))
        if scrubbed:
            plain += draw(st.lists(st.sampled_from(_ANY_VR), max_size=4, unique=True))
        for tag in plain:
            vr = resolve_vr(tag, None)
            label = vr if at.implicit else claim(vr, ("OB", "UN", "LO", "UT"))
            elements[tag] = at.elem(tag, label, markers.make(vr))
        if depth < 3:
            pool = [*_SEQUENCES, _PRIVATE_SEQ]
            for tag in draw(st.lists(st.sampled_from(pool), max_size=2, unique=True)):
                elements[tag] = sequence(at, tag, depth, scrubbed or tag in _SCRUBBING)
                if tag == _PRIVATE_SEQ:
                    elements[0x00090010] = at.elem(0x00090010, "LO", b"MKVENDOR 1")
        return elements

    def sequence(at: Enc, tag: int, depth: int, scrubbed: bool) -> bytes:
        label = "SQ" if at.implicit else claim("SQ", ("OB", "OW", "UN", "UT", "LO"))
        inner = IVRLE if label == "UN" else draw(st.sampled_from((at, IVRLE)))
        if label == "SQ":
            inner = at  # an SQ's items are in its dataset's syntax
        # Undefined lengths only where the standard allows them and dcmwatch reads them (a
        # big endian UN of undefined length only at the top level: nested, it is quarantined).
        may_undefine = label == "SQ" or (label == "UN" and (at.little or depth == 0))
        undefined = may_undefine and draw(st.booleans())
        items = b"".join(
            inner.item(
                sorted_body(*level(inner, depth + 1, scrubbed).items()),
                undefined=undefined and draw(st.booleans()),
            )
            for _ in range(draw(st.integers(1, 2)))
        )
        if not undefined:
            return at.elem(tag, label, items)
        tail = inner.delimiter(0xE0DD)  # a UN's delimiter is in its value's syntax
        return at.elem(tag, label, items, undefined=True)[:-8] + tail

    top = level(enc, 0, scrubbed=False)
    top[0x00080016] = header(enc, SOP)  # SOP Class and Instance UID, in this order
    return part10(enc, sorted_body(*top.items()), SOP), markers.planted


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lying_files())
def test_no_marker_survives_lying_vrs(case: tuple[bytes, list[bytes]]) -> None:
    """Whatever VR each element claims and however deep it sits, no planted value is left in
    the output's bytes, and the output reads back whole."""
    blob, planted = case
    assert all(m in blob for m in planted)
    out = dicomfile.encode(_DEID(dicomfile.decode(blob, max_inflated=1 << 30)))
    assert [m for m in planted if m in out] == []
    back = dicomfile.decode(out, max_inflated=1 << 30)
    for elem in back.iterall():
        _ = elem.value
