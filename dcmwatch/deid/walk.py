"""The one pass over a dataset: each element looked up once by int tag, only changed ones touched.

pydicom keeps elements as raw bytes until they are accessed; iterating a Dataset converts all of
them, which costs more than the rest of the de-identification, and ``save_as`` then re-encodes
each. The walk therefore iterates
``Dataset._dict``, decides from the tag, and accesses (converts) only the elements it must read
or change: UIDs, names, dates, sequences, allow-listed text.

The VR in the file is a claim: an element is treated by its tag's dictionary VR (a sequence
labelled OB is parsed and walked, a UID labelled LO remapped), the file's VR only for a tag the
dictionary does not know. A value that should be a sequence and does not parse as one is
removed: what cannot be walked never passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pydicom import config
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import private_dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from dcmwatch.deid.dates import shift_da, shift_dt
from dcmwatch.deid.kept import fits
from dcmwatch.deid.profile import (
    CODE_TAGS,
    KEEP,
    KEEP_UID_TAGS,
    PATIENT_ID,
    PATIENT_NAME,
    SPECIES,
    Act,
    Mode,
    Rule,
)
from dcmwatch.deid.sequences import as_sequence, looks_like_items
from dcmwatch.deid.values import DATE_VRS, FREE_TEXT_VRS, dummy_like, max_chars, resolve_vr
from dcmwatch.errors import TransformError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dcmwatch.deid.profile import Rules
    from dcmwatch.deid.pseudonyms import Keyed

__all__ = ["Walk"]

_SQ: Final = "SQ"
#: VRs whose value is text, written as encoded bytes by ``_put``.
_TEXT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
     "UR", "UT"}
)  # fmt: skip
_NO_VALIDATION: Final = config.IGNORE
_UI: Final = "UI"
#: Modes ordered by strictness: a sequence inside a scrubbed one is scrubbed too.
_MODE_OF: Final = {Act.RECURSE: Mode.NORMAL, Act.CLEAN: Mode.CLEAN, Act.SCRUB: Mode.SCRUB}
#: Groups that never belong in a sequence item: (0000) command and (0002) file meta elements.
#: Group 0000 has no place at the top level of a stored dataset either.
_ITEM_ONLY_GROUP: Final = 0x0002
_COMMAND_GROUP: Final = 0x0000


def _strings(elem: Any) -> list[str]:
    """The values of a string element as str, from raw bytes when it was never converted.

    Only for ASCII-only VRs (UI, DA, DT, TM): their bytes are the same in every character set.
    """
    value = elem.value
    if isinstance(elem, RawDataElement) or isinstance(value, bytes):
        if value is None:
            return []
        text = bytes(value).decode("ascii", "replace").strip("\x00 ")
        return text.split("\\") if text else []
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return [str(value)] if str(value) else []


def _join(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def _keep(ds: Dataset, tag: int, elem: Any, vr: str) -> None:
    """Let an element the profile keeps pass only when its bytes are what its tag says: a name
    in an Integer String or a date in a Code String is removed (see `dcmwatch.deid.kept`)."""
    if not fits(vr, elem):
        del ds._dict[BaseTag(tag)]


def _put(ds: Dataset, tag: int, vr: str, value: Any) -> None:
    """Set a non-sequence element we built ourselves, skipping pydicom's per-value validation
    and ``__setitem__`` bookkeeping (only needed for sequences and private blocks).

    In a dataset read from bytes, a text value goes in already encoded, as a raw element: the
    writer copies raw bytes verbatim instead of re-encoding each value, which would be a large
    share of the de-identification's cost. Our values are ASCII (UIDs, dates, pseudonyms,
    dummies, base32 digests), which every DICOM character set encodes alike.
    """
    key = BaseTag(tag)
    implicit, little = ds.original_encoding
    if implicit is not None and little is not None and vr in _TEXT_VRS:
        raw = _ascii(value, vr)
        if raw is not None:
            ds._dict[key] = RawDataElement(key, vr, len(raw), raw, 0, implicit, little)
            return
    ds._dict[key] = DataElement(tag, vr, value, validation_mode=_NO_VALIDATION)


def _ascii(value: Any, vr: str) -> bytes | None:
    """The value's bytes, padded to even length as PS3.5 6.2 wants; None unless ASCII text."""
    if value is None:
        return b""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            return None
        value = "\\".join(value)
    if not isinstance(value, str) or not value.isascii():
        return None
    data = value.encode("ascii")
    if len(data) % 2:
        data += b"\0" if vr == _UI else b" "
    return data


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _private_vr(tag: int, elem: Any, creator: str) -> str:
    """A kept private element's VR: SQ when its bytes are items whatever the label (a
    sequence often arrives as UN or in Implicit VR), else pydicom's private dictionary,
    else the label, else UN. Unknown to the data dictionary, private VRs are decided by
    the bytes first."""
    if elem.VR == _SQ or looks_like_items(elem.value):
        return _SQ
    try:
        known = str(private_dictionary_VR(tag, creator))[:2]
    except KeyError:
        known = ""
    if known:
        return known
    return elem.VR if elem.VR not in (None, "UN") else "UN"


class Walk:
    """Applies compiled :class:`Rules` to one dataset; holds no per-dataset state."""

    __slots__ = ("_keyed", "_rules")

    def __init__(self, rules: Rules, keyed: Keyed) -> None:
        self._rules = rules
        self._keyed = keyed

    # -- entry ---------------------------------------------------------------------------
    def dataset(self, ds: Dataset, patient_key: str, offset: int) -> None:
        """De-identify ``ds`` and every item of every sequence in it, in place."""
        self._level(ds, Mode.NORMAL, patient_key, offset, top=True)

    def patient_key(self, ds: Dataset, inherited: str) -> str:
        """Whose data this level is: its (0010,0020) *Patient ID*, else its name, else inherited.

        Pseudonyms and date offsets derive from it, so the same patient maps to the same
        pseudonym in every file; a level without either belongs to its parent's patient.
        """
        for tag, prefix in ((PATIENT_ID, "id:"), (PATIENT_NAME, "name:")):
            if tag in ds._dict:
                value = ds[tag].value
                text = "" if value is None else str(value).strip()
                if text:
                    return prefix + text
        return inherited

    def day_offset(self, patient_key: str, low: int, high: int) -> int:
        """The patient's date offset in days (same patient, same key → same offset)."""
        return self._keyed.day_offset(patient_key, low, high)

    def uid(self, value: str) -> str:
        """The replacement of one UID (the same wherever it appears)."""
        return self._keyed.uid(value)

    # -- one nesting level ----------------------------------------------------------------
    def _level(
        self, ds: Dataset, mode: Mode, patient_key: str, offset: int, *, top: bool = False
    ) -> None:
        elements = ds._dict
        privates: list[int] = []
        if PATIENT_ID in elements or PATIENT_NAME in elements:
            patient_key = self.patient_key(ds, patient_key)
        animal = SPECIES[0] in elements or SPECIES[1] in elements
        for tag, elem in list(elements.items()):
            try:
                if tag & 0x10000:
                    privates.append(tag)
                    continue
                group = tag >> 16
                if (  # group length: stale once anything changes; command/meta: misplaced
                    not tag & 0xFFFF
                    or group == _COMMAND_GROUP
                    or (group == _ITEM_ONLY_GROUP and not top)
                ):
                    del elements[tag]
                    continue
                self._element(ds, tag, elem, mode, patient_key, offset, top=top, animal=animal)
            except TransformError:
                raise
            except Exception as exc:
                # The library's message may quote the value: only its class and the tag go out.
                msg = f"cannot de-identify {_tag_text(tag)}: {type(exc).__name__}"
                raise TransformError(msg) from None
        if privates:
            self._privates(ds, privates, mode, patient_key, offset)

    def _element(
        self,
        ds: Dataset,
        tag: int,
        elem: Any,
        mode: Mode,
        patient_key: str,
        offset: int,
        *,
        top: bool,
        animal: bool,
    ) -> None:
        """One public element: its rule by tag, its VR by the dictionary (the file's only for
        a tag the dictionary does not know)."""
        rules = self._rules
        rule = (rules.top_table if top else rules.table).get(tag)
        if rule is None and (tag >> 24) in (0x50, 0x60):
            rule = rules.repeating_rule(tag)
        elif animal:
            rule = rules.animal.get(tag, rule)
        vr = resolve_vr(tag, elem.VR)
        if vr != _SQ and elem.VR == _SQ and vr != "UN":
            del ds._dict[BaseTag(tag)]  # items where the tag holds a value: nothing to keep
            return
        extra = rules.extra[mode]
        if rule is None and rules.unlisted is not None and vr not in extra:
            rule = rules.unlisted_rule(tag)  # by the tag, whatever VR the file claims
        if rule is None:
            if vr == _SQ or (vr == "UN" and looks_like_items(elem.value)):
                self._items(ds, tag, mode, patient_key, offset)
                return
            if vr == _UI:
                self._other_uid(ds, tag, elem)
                return
            rule = extra.get(vr)
            if rule is None or (mode is Mode.CLEAN and tag in CODE_TAGS):
                _keep(ds, tag, elem, vr)
                return
        self._apply(ds, tag, elem, vr, rule, mode, patient_key, offset)

    def _items(self, ds: Dataset, tag: int, mode: Mode, patient_key: str, offset: int) -> None:
        """Walk the items of a sequence in ``mode``; remove it if it does not parse as one."""
        value = as_sequence(ds, tag)
        if value is None:
            del ds._dict[BaseTag(tag)]
            return
        for item in value:
            self._level(item, mode, patient_key, offset)

    def _other_uid(self, ds: Dataset, tag: int, elem: Any) -> None:
        """A UI attribute the table does not name: remapped unless it names a registered UID
        or a class/transfer syntax, since an unknown instance UID may identify."""
        if not self._rules.remap_other_uids or tag in KEEP_UID_TAGS:
            _keep(ds, tag, elem, _UI)  # a class UID kept as it is must be a UID
            return
        values = _strings(elem)
        if not values or all(v in UID_dictionary for v in values):
            return
        mapped = [v if v in UID_dictionary else self._keyed.uid(v) for v in values]
        _put(ds, tag, _UI, _join(mapped))

    # -- actions --------------------------------------------------------------------------
    def _apply(  # noqa: PLR0912 (one branch per action: a dispatch table would hide it)
        self,
        ds: Dataset,
        tag: int,
        elem: Any,
        vr: str,
        rule: Rule,
        mode: Mode,
        patient_key: str,
        offset: int,
    ) -> None:
        act = rule.act
        if act is Act.KEEP:
            _keep(ds, tag, elem, vr)
            return
        if act is Act.REMOVE:
            del ds[tag]
        elif act in _MODE_OF:
            if vr != _SQ:  # K or U* on a non-sequence (or a UN): kept as it is
                _keep(ds, tag, elem, vr)
                return
            inner = max(_MODE_OF[act], mode, key=lambda m: m.value)
            self._items(ds, tag, inner, patient_key, offset)
        elif act is Act.UID or (act is Act.DUMMY and vr == _UI):
            values = _strings(elem)
            if values:
                _put(ds, tag, _UI, _join([self._keyed.uid(v) for v in values]))
        elif act is Act.PSEUDONYM:
            _put(ds, tag, vr, self._keyed.pseudonym(patient_key))
        elif act is Act.EMPTY:
            if vr == _SQ:
                ds[tag] = DataElement(tag, vr, Sequence())
            else:
                _put(ds, tag, vr, None)
        elif act is Act.DUMMY:
            if vr == _SQ:
                self._items(ds, tag, Mode.SCRUB, patient_key, offset)
            else:
                values = _strings(elem) if vr == "CS" else []
                _put(ds, tag, vr, dummy_like(vr, elem, values))
        elif act is Act.SHIFT:
            self._shift(ds, tag, elem, vr, rule, mode, patient_key, offset)
        elif act is Act.ALLOW:
            if not self._allowed(ds, tag):
                self._fallback(ds, tag, elem, vr, rule.fallback, mode, patient_key, offset)
        elif act is Act.GRAPHIC:
            self._graphic(ds, tag, vr, mode, patient_key, offset)
        elif act is Act.REPLACE:
            ds[tag] = DataElement(tag, vr, rule.value)  # from the operator: validated
        elif act is Act.HASH:
            values = [str(v) for v in _strings(ds[tag])]
            digest = self._keyed.text("\\".join(values), max_chars(vr))
            _put(ds, tag, vr, digest if values else None)

    def _fallback(
        self,
        ds: Dataset,
        tag: int,
        elem: Any,
        vr: str,
        act: Act,
        mode: Mode,
        patient_key: str,
        offset: int,
    ) -> None:
        self._apply(ds, tag, elem, vr, Rule(act), mode, patient_key, offset)

    def _graphic(
        self, ds: Dataset, tag: int, vr: str, mode: Mode, patient_key: str, offset: int
    ) -> None:
        """A curve or overlay element under Clean Graphics: geometry, codes and bitmaps stay;
        free text stays only when allow-listed; a sequence is cleaned; opaque UN goes."""
        if vr == _SQ:
            self._items(ds, tag, max(Mode.CLEAN, mode, key=lambda m: m.value), patient_key, offset)
        elif vr == "UN" or (vr in FREE_TEXT_VRS and not self._allowed(ds, tag)):
            del ds[tag]

    def _allowed(self, ds: Dataset, tag: int) -> bool:
        """Whether every value of the element is an exact member of the allow-list.

        With an empty allow-list only an empty value passes, which the raw bytes tell without
        decoding the value in the dataset's character set.
        """
        allow = self._rules.allowlist
        if not allow:
            elem = ds._dict[BaseTag(tag)]
            if isinstance(elem, RawDataElement):
                return not (elem.value or b"").strip(b"\x00 ")
            return bool(elem.is_empty)
        values = _strings(ds[tag])
        return all(v in allow for v in values)

    def _shift(
        self,
        ds: Dataset,
        tag: int,
        elem: Any,
        vr: str,
        rule: Rule,
        mode: Mode,
        patient_key: str,
        offset: int,
    ) -> None:
        if vr not in DATE_VRS:
            self._fallback(ds, tag, elem, vr, rule.fallback, mode, patient_key, offset)
            return
        if vr == "TM":
            return
        shift = shift_da if vr == "DA" else shift_dt
        values = _strings(elem)
        shifted = [shift(v, offset) for v in values]
        if any(s is None for s in shifted):
            self._fallback(ds, tag, elem, vr, rule.fallback, mode, patient_key, offset)
            return
        if values:
            _put(ds, tag, vr, _join([s for s in shifted if s is not None]))

    # -- private attributes ---------------------------------------------------------------
    def _privates(
        self, ds: Dataset, tags: list[int], mode: Mode, patient_key: str, offset: int
    ) -> None:
        """Remove every private element except allow-listed or overridden (creator, element).

        A private creator (gggg,0010-00FF) stays only while an element of its block does.
        """
        rules = self._rules
        if not rules.safe_private and not rules.private_overrides:
            for tag in tags:
                del ds[tag]
            return
        kept_creators: set[int] = set()
        for tag in tags:
            element = tag & 0xFFFF
            if element < 0x1000:
                continue
            creator_tag = (tag & 0xFFFF0000) | (element >> 8)
            rule = None
            creator = ""
            if creator_tag in ds._dict:
                creator = str(ds[creator_tag].value or "").strip()
                key = (creator, element & 0xFF)
                rule = rules.private_overrides.get(key)
                if rule is None and key in rules.safe_private:
                    rule = KEEP
            if rule is None:
                del ds[tag]
                continue
            elem = ds._dict[BaseTag(tag)]
            vr = _private_vr(tag, elem, creator)
            if vr == _SQ and rule.act is Act.KEEP:
                self._items(ds, tag, mode, patient_key, offset)
            else:
                self._apply(ds, tag, elem, vr, rule, mode, patient_key, offset)
            if tag in ds._dict:
                kept_creators.add(creator_tag)
        for tag in tags:
            if (tag & 0xFFFF) < 0x1000 and tag not in kept_creators and tag in ds._dict:
                del ds[tag]
