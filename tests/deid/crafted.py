"""A byte-level element writer for crafted files: sequences labelled OB, UIDs labelled LO, UN
of undefined length, command elements in items. pydicom would "help" with every one of these
(write the dictionary VR, refuse the value), so these files are built from bytes.

An :class:`Enc` is one encoding (Implicit VR Little Endian, Explicit VR Little or Big Endian);
``elem`` writes one element in it, ``seq`` a sequence value from items, ``part10`` a whole file
(preamble, Explicit VR Little Endian file meta, then the body in the encoding).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

CT_IMAGE: Final = "1.2.840.10008.5.1.4.1.1.2"
RAW_DATA: Final = "1.2.840.10008.5.1.4.1.1.66"
#: pydicom's set, not dcmwatch's: these files are an oracle independent of the code under test.
_LONG: Final = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
UNDEFINED: Final = 0xFFFFFFFF


@dataclass(frozen=True)
class Enc:
    """One transfer syntax's element encoding."""

    name: str
    uid: str
    implicit: bool
    little: bool

    @property
    def e(self) -> str:
        return "<" if self.little else ">"

    def elem(self, tag: int, vr: str, value: bytes, *, undefined: bool = False) -> bytes:
        """One element; ``undefined`` writes length FFFFFFFF and a sequence delimiter after."""
        if len(value) % 2 and not undefined:
            value += b"\0" if vr in ("UI", "OB", "UN") else b" "
        length = UNDEFINED if undefined else len(value)
        head = struct.pack(self.e + "HH", tag >> 16, tag & 0xFFFF)
        if self.implicit:
            head += struct.pack(self.e + "L", length)
        elif vr in _LONG:
            head += vr.encode() + b"\0\0" + struct.pack(self.e + "L", length)
        else:
            head += vr.encode() + struct.pack(self.e + "H", length)
        tail = self.delimiter(0xE0DD) if undefined else b""
        return head + value + tail

    def delimiter(self, element: int, length: int = 0) -> bytes:
        return struct.pack(self.e + "HHL", 0xFFFE, element, length)

    def item(self, content: bytes, *, undefined: bool = False) -> bytes:
        if undefined:
            return self.delimiter(0xE000, UNDEFINED) + content + self.delimiter(0xE00D)
        return self.delimiter(0xE000, len(content)) + content

    def text(self, tag: int, vr: str, text: str) -> bytes:
        return self.elem(tag, vr, text.encode("latin-1"))


IVRLE: Final = Enc("implicit", "1.2.840.10008.1.2", True, True)
EVRLE: Final = Enc("explicit-le", "1.2.840.10008.1.2.1", False, True)
EVRBE: Final = Enc("explicit-be", "1.2.840.10008.1.2.2", False, False)
ENCODINGS: Final = (IVRLE, EVRLE, EVRBE)


def header(enc: Enc, sop_uid: str, sop_class: str = RAW_DATA) -> bytes:
    """(0008,0016) and (0008,0018): what decode() needs to accept a dataset."""
    return enc.text(0x00080016, "UI", sop_class) + enc.text(0x00080018, "UI", sop_uid)


def part10(enc: Enc, body: bytes, sop_uid: str, sop_class: str = RAW_DATA) -> bytes:
    """Preamble, DICM, file meta (Explicit VR Little Endian, group length computed), body."""
    meta_enc = EVRLE
    meta = (
        meta_enc.elem(0x00020001, "OB", b"\0\1")
        + meta_enc.text(0x00020002, "UI", sop_class)
        + meta_enc.text(0x00020003, "UI", sop_uid)
        + meta_enc.text(0x00020010, "UI", enc.uid)
        + meta_enc.text(0x00020012, "UI", "1.2.826.0.1.3680043.10.999.1")
    )
    group_length = meta_enc.elem(0x00020000, "UL", struct.pack("<L", len(meta)))
    return b"\0" * 128 + b"DICM" + group_length + meta + body


def sorted_body(*elements: tuple[int, bytes]) -> bytes:
    """Elements (tag, encoded bytes) in ascending tag order, as Part 10 wants them."""
    return b"".join(blob for _, blob in sorted(elements, key=lambda pair: pair[0]))
