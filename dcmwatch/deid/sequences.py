"""A value read as a sequence whatever VR the file gave it, strictly, or not at all.

The VR in a file is a claim. Hand-made files label sequences OB, UT or LO, and systems that did
not know a tag re-write it as UN; PS3.5 6.2.2 (CP-246) says the value of such a UN is a sequence
in Implicit VR Little Endian. pydicom parses a sequence leniently (it stops at the first element
that does not fit, and guesses each item's VR encoding from its first bytes), which is right for
viewing and wrong for de-identification: whatever it skipped or misread would be written back
unwalked. This parser accepts a value only when every item and every element header fits
exactly; the walk removes a value that parses in none of the encodings it may be in.

Elements keep their bytes as raw elements of the item (converted only if the walk touches them);
a nested element of undefined length is a sequence by construction (or encapsulated Pixel Data)
and is parsed here too.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from dcmwatch.encoding import LONG_VRS_BYTES

__all__ = ["IMPLICIT_LITTLE", "as_sequence", "looks_like_items", "parse_sequence"]

#: PS3.5 6.2.2: the encoding of the value of a UN that holds a sequence.
IMPLICIT_LITTLE: Final = (True, True)
_ITEM: Final = 0xFFFEE000
_ITEM_END: Final = 0xFFFEE00D
_SEQ_END: Final = 0xFFFEE0DD
_PIXEL_DATA: Final = 0x7FE00010
_UNDEFINED: Final = 0xFFFFFFFF
_MAX_DEPTH: Final = 64
_ITEM_STARTS: Final = (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")


class _Unparseable(Exception):
    """The value does not parse in the encoding tried (internal: never leaves this module)."""


def looks_like_items(value: Any) -> bool:
    """Whether a byte value starts with an item tag in either byte order: a sequence whatever
    its label says (no text or number of any VR starts so by chance often enough to matter)."""
    return isinstance(value, bytes) and value[:4] in _ITEM_STARTS


def as_sequence(ds: Dataset, tag: int) -> Sequence | None:
    """The element's items, parsed strictly from its bytes whatever VR it was read with; the
    element becomes an SQ element holding them.

    A value read as SQ is parsed in its dataset's encoding first; under any other label
    (OB, UT, UN …) in Implicit VR Little Endian first (PS3.5 6.2.2); then in the other of
    the two, the ways such a value is met. None when it parses in neither.
    """
    key = BaseTag(tag)
    elem = ds._dict[key]
    value = elem.value
    if isinstance(value, Sequence):
        return value
    if not value:
        items = Sequence()
    elif not isinstance(value, bytes):
        return None  # text or numbers where items should be
    else:
        implicit, little = ds.original_encoding
        own = (bool(implicit), little is not False)
        claimed_sq = elem.VR == "SQ" or (elem.VR is None and implicit)
        first, second = (own, IMPLICIT_LITTLE) if claimed_sq else (IMPLICIT_LITTLE, own)
        encodings = tuple(dict.fromkeys((first, second)))
        parsed = parse_sequence(value, encodings, ds._character_set)
        if parsed is None:
            return None
        items = parsed
    ds._dict[key] = DataElement(key, "SQ", items, validation_mode=config.IGNORE)
    return items


def parse_sequence(
    data: bytes, encodings: tuple[tuple[bool, bool], ...], charset: Any
) -> Sequence | None:
    """The items of ``data`` in the first of ``encodings`` (implicit, little) that parses the
    whole value exactly; None when none does."""
    for implicit, little in encodings:
        try:
            items, _ = _Reader(data, implicit, little, charset).items(0, len(data), False, 0)
        except (_Unparseable, struct.error):
            continue
        return Sequence(items)
    return None


class _Reader:
    """One pass over one encoding of a value; raises _Unparseable at the first misfit."""

    __slots__ = ("_charset", "_data", "_implicit", "_little", "_long", "_short", "_tag")

    def __init__(self, data: bytes, implicit: bool, little: bool, charset: Any) -> None:
        e = "<" if little else ">"
        self._data = data
        self._implicit = implicit
        self._little = little
        self._charset = charset
        self._tag = struct.Struct(e + "HHL")
        self._short = struct.Struct(e + "H")
        self._long = struct.Struct(e + "L")

    def items(self, pos: int, end: int, undefined: bool, depth: int) -> tuple[list[Dataset], int]:
        """Items from ``pos`` to ``end`` (defined length) or to the sequence delimiter."""
        if depth > _MAX_DEPTH:
            raise _Unparseable
        found: list[Dataset] = []
        while undefined or pos < end:
            if pos + 8 > end:
                raise _Unparseable
            group, element, length = self._tag.unpack_from(self._data, pos)
            tag = group << 16 | element
            pos += 8
            if tag == _SEQ_END and undefined and length == 0:
                return found, pos
            if tag != _ITEM:
                raise _Unparseable
            if length == _UNDEFINED:
                item, pos = self.dataset(pos, end, True, depth + 1)
            elif pos + length > end:
                raise _Unparseable
            else:
                item, _ = self.dataset(pos, pos + length, False, depth + 1)
                pos += length
            found.append(item)
        return found, pos

    def dataset(self, pos: int, end: int, undefined: bool, depth: int) -> tuple[Dataset, int]:
        """One item's elements, up to ``end`` exactly or to the item delimiter."""
        data = self._data
        elements: dict[BaseTag, Any] = {}
        while undefined or pos < end:
            if pos + 8 > end:
                raise _Unparseable
            group, element, length = self._tag.unpack_from(data, pos)
            tag = BaseTag(group << 16 | element)
            if tag == _ITEM_END and undefined and length == 0:
                pos += 8
                break
            if group == 0xFFFE or tag in elements:
                raise _Unparseable  # a stray delimiter, or two values for one tag
            vr: str | None = None
            if self._implicit:
                pos += 8
            else:
                raw_vr = data[pos + 4 : pos + 6]
                if not (raw_vr.isalpha() and raw_vr.isupper()):
                    raise _Unparseable
                vr = raw_vr.decode("ascii")
                if raw_vr in LONG_VRS_BYTES:
                    if pos + 12 > end:
                        raise _Unparseable
                    length = self._long.unpack_from(data, pos + 8)[0]
                    pos += 12
                else:
                    length = self._short.unpack_from(data, pos + 6)[0]
                    pos += 8
            if length == _UNDEFINED:
                elements[tag], pos = self._undefined(tag, vr, pos, end, depth)
                continue
            if pos + length > end:
                raise _Unparseable
            value = data[pos : pos + length]
            elements[tag] = RawDataElement(
                tag, vr, length, value, pos, self._implicit, self._little
            )
            pos += length
        item = Dataset(elements, parent_encoding=self._charset)
        item.set_original_encoding(self._implicit, self._little, self._charset)
        item.is_undefined_length_sequence_item = undefined
        return item, pos

    def _undefined(
        self, tag: BaseTag, vr: str | None, pos: int, end: int, depth: int
    ) -> tuple[Any, int]:
        """An element of undefined length: a sequence (a UN one in Implicit VR Little Endian,
        PS3.5 6.2.2), or the fragments of encapsulated Pixel Data (an icon's, say)."""
        if tag == _PIXEL_DATA:
            return self._fragments(tag, vr, pos, end)
        if vr == "UN" and not self._implicit:
            reader = _Reader(self._data, *IMPLICIT_LITTLE, self._charset)
        else:
            reader = self
        found, pos = reader.items(pos, end, True, depth + 1)
        return DataElement(tag, "SQ", Sequence(found), is_undefined_length=True), pos

    def _fragments(
        self, tag: BaseTag, vr: str | None, pos: int, end: int
    ) -> tuple[RawDataElement, int]:
        """Encapsulated Pixel Data: items of bytes up to the sequence delimiter, kept as the raw
        value pydicom reads (the items without the delimiter)."""
        start = pos
        while True:
            if pos + 8 > end:
                raise _Unparseable
            group, element, length = self._tag.unpack_from(self._data, pos)
            item = group << 16 | element
            if item == _SEQ_END and length == 0:
                value = self._data[start:pos]
                raw = RawDataElement(
                    tag, vr or "OB", _UNDEFINED, value, start, self._implicit, self._little
                )
                return raw, pos + 8
            if item != _ITEM or length == _UNDEFINED or pos + 8 + length > end:
                raise _Unparseable
            pos += 8 + length
