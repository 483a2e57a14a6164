"""From settings to one rule per attribute: the profile, its options and overrides, resolved once.

PS3.15 Table E.1-1 gives a basic action per attribute and, per option, K(eep) or C(lean). This
module turns the generated table into a dict from int tag to :class:`Rule`, so the walk does one
dict lookup per element. How each code is applied, and why:

* **Compound actions** (X/Z, X/D, X/Z/D, Z/D, X/Z/U*) exist because the standard cannot know
  the Type of an attribute in every IOD. Without an IOD model we choose the variant that keeps
  every IOD valid: X/Z → Z, any compound with D → D, X/Z/U* → keep the sequence and replace the
  UIDs inside it (U*). The generator checks that every compound row is on an attribute of a
  standard composite IOD, the case this reasoning covers.
* **D on a sequence** keeps its items (so Type 1 sequences stay) but *scrubs* them: the table
  applies inside, and every other value of every VR gets a dummy with as many values (text,
  codes, numbers, binary values zeroed) except UIDs (remapped), the closed vocabulary that
  structures content (value and relationship types …) and dates, which follow the date options.
* **X/Z on a sequence** that is Type 3 where it appears at the top level ((0008,1110)
  *Referenced Study Sequence*) removes it there, since an empty Type 3 sequence is an error,
  and empties it inside items.
* **C (clean)**, conservatively, per kind of attribute: free text (and AE titles, CS) is kept
  only when its exact value is in ``descriptor_allowlist``, otherwise the basic action applies;
  DA/DT with Retain Longitudinal Modified Dates are shifted (TM and (0008,0201) *Timezone
  Offset From UTC* are kept: a whole-day shift changes neither; binary timestamps get the basic
  action); a sequence is *cleaned* (the table applies inside and other free
  text obeys the allow-list; code items are kept). Binary values (OB) cannot be cleaned: basic
  action.
* **Curves (50xx) and overlays (60xx)**, every even group 5000-501E / 6000-601E, retired
  elements included: removed whole by the basic profile. Clean Graphics keeps their geometry,
  codes and bitmaps (overlay and curve data), their free text only when allow-listed, cleans
  a sequence like any other, and removes curve audio (50xx,20xx) and elements of unknown VR.
* When options disagree on an attribute, C beats K (the more conservative retains less).
* (0010,0010) *Patient's Name* and (0010,0020) *Patient ID* get keyed pseudonyms (their D).
* Overrides from the configuration win over all of the above.
* Attributes neither the table nor an override names follow ``[deid] unlisted``
  (:mod:`dcmwatch.deid.unlisted`), compiled here into one rule per dictionary tag.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final

from pydicom._dicom_dict import DicomDictionary

from dcmwatch.deid.settings import DeidSettings, Override
from dcmwatch.deid.table import PRIVATE, REPEATING, TABLE, Row
from dcmwatch.deid.unlisted import UnlistedMode, decide, unknown_removed
from dcmwatch.deid.values import DATE_VRS, FREE_TEXT_VRS, resolve_vr

__all__ = [
    "CODE_TAGS", "KEEP_UID_TAGS", "SPECIES", "Act", "Mode", "Rule", "Rules",
    "compile_rules"]

PATIENT_NAME: Final = 0x00100010
#: (0010,2201) *Patient Species Description*, (0010,2202) *Patient Species Code Sequence*: their
#: presence says the patient is an animal (PS3.3 C.7.1.1).
SPECIES: Final = (0x00102201, 0x00102202)
#: (0010,2297) *Responsible Person*, (0010,2299) *Responsible Organization*: Type 2C, one of them
#: required for an animal. They name the owner, so they are emptied there instead of removed,
#: and (0010,2298) *Responsible Person Role* (Type 1C: only with a Responsible Person value) goes.
RESPONSIBLE_PERSON: Final = 0x00102297
RESPONSIBLE_ROLE: Final = 0x00102298
RESPONSIBLE_ORGANIZATION: Final = 0x00102299
#: X/Z sequences that are Type 3 at the top level of every composite IOD that has them and
#: Type 2 only inside items: (0008,1110) *Referenced Study Sequence* (General Study Module; Type 2
#: in a Referenced Request Sequence item). Emptied, a Type 3 sequence is an error (no items).
TYPE3_AT_TOP: Final = frozenset({0x00081110})
PATIENT_ID: Final = 0x00100020
TIMEZONE_OFFSET: Final = 0x00080201  # (0008,0201) *Timezone Offset From UTC*


class Act(enum.Enum):
    """What happens to one element."""

    KEEP = "K"
    REMOVE = "X"
    EMPTY = "Z"
    DUMMY = "D"
    UID = "U"
    PSEUDONYM = "pseudonym"
    SHIFT = "shift"  # DA/DT by the patient's offset; fallback when unparsable
    ALLOW = "allow"  # kept if in the allow-list, else fallback
    RECURSE = "recurse"  # sequence kept, profile applied inside
    SCRUB = "scrub"  # sequence kept, profile applied inside, other free text dummied
    CLEAN = "clean"  # sequence kept, profile applied inside, other free text allow-listed
    GRAPHIC = "graphic"  # curve/overlay element: non-text kept, text allow-listed or removed
    REPLACE = "replace"
    HASH = "hash"


class Mode(enum.Enum):
    """How elements that Table E.1-1 does not name are treated at one nesting level."""

    NORMAL = 0  # kept (UIDs remapped unless registered)
    CLEAN = 1  # inside a cleaned sequence
    SCRUB = 2  # inside a D sequence


@dataclass(frozen=True, slots=True)
class Rule:
    """An action, with the action to fall back to (for SHIFT and ALLOW) and a replacement."""

    act: Act
    fallback: Act = Act.REMOVE
    value: str | None = None


KEEP: Final = Rule(Act.KEEP)
REMOVE: Final = Rule(Act.REMOVE)
#: Not in the precompiled unlisted rules: a tag outside the dictionary's exact entries.
_UNCOMPILED: Final = Rule(Act.KEEP)

#: UI attributes that name a class, a transfer syntax or a vocabulary, never an instance: kept
#: even when their value is not in pydicom's UID registry (private SOP classes, for instance).
KEEP_UID_TAGS: Final[frozenset[int]] = frozenset(
    tag
    for tag, entry in DicomDictionary.items()
    if entry[0] == "UI"
    and any(
        word in entry[4]
        for word in ("Class", "TransferSyntax", "CodingScheme", "MappingResource", "Creator")
    )
    and tag not in TABLE
)
#: (50xx,20xx): the retired audio attributes of a curve group. A recording is no graphic and
#: cannot be cleaned: removed under Clean Graphics too.
AUDIO: Final = (0xFF00FF00, 0x50002000, REMOVE)
#: Attributes of a code item (PS3.3 Table 8.8-1): a coded concept, kept in cleaned sequences.
CODE_TAGS: Final = frozenset(
    {0x00080100, 0x00080102, 0x00080103, 0x00080104, 0x00080119, 0x00080120, 0x00080105,
     0x00080106, 0x0008010B, 0x0008010F, 0x00080117}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything the walk consults, compiled from settings; immutable, built once per worker."""

    table: dict[int, Rule]
    #: The table at the top level of a dataset, where some X/Z sequences are Type 3.
    top_table: dict[int, Rule]
    #: Rules that win at a level whose patient is an animal (see RESPONSIBLE_PERSON).
    animal: dict[int, Rule]
    #: (mask, value, rule) for curves and overlays, then the rule for the rest of a 60xx group.
    repeating: tuple[tuple[int, int, Rule], ...]
    overlay_rest: Rule
    #: Rules for elements the table does not name, by VR, per mode (none in NORMAL).
    extra: dict[Mode, dict[str, Rule]]
    remap_other_uids: bool
    safe_private: frozenset[tuple[str, int]]
    private_overrides: dict[tuple[str, int], Rule]
    allowlist: frozenset[str]
    #: The date policy: shift DA/DT by a per-patient offset (Retain Modified Dates) or overrides.
    needs_offset: bool
    date_range: tuple[int, int]
    options: tuple[str, ...] = field(default=())
    #: ``[deid] unlisted``: the rule (None: the profile's) of every dictionary attribute the
    #: table does not name; None when the profile keeps them all (``keep``).
    unlisted: dict[int, Rule | None] | None = None
    unlisted_mode: UnlistedMode = "keep"
    keep_unlisted: frozenset[int] = frozenset()

    def unlisted_rule(self, tag: int) -> Rule | None:
        """The ``[deid] unlisted`` rule of a public attribute the table does not name."""
        compiled = self.unlisted
        if compiled is None:
            return None
        rule = compiled.get(tag, _UNCOMPILED)
        if rule is _UNCOMPILED:  # repeating entries, tags unknown to the dictionary: rare
            return REMOVE if unknown_removed(tag, self.unlisted_mode, self.keep_unlisted) else None
        return rule

    def repeating_rule(self, tag: int) -> Rule | None:
        """The rule of a curve (50xx) or overlay (60xx) element, even groups only."""
        group = tag >> 16
        if group & 1 or (group & 0xFF) > 0x1E:
            return None
        for mask, value, rule in self.repeating:
            if tag & mask == value:
                return rule
        if group >> 8 == 0x60:
            return self.overlay_rest
        return None


def _basic(code: str, vr: str) -> Rule:  # noqa: PLR0911 (one return per action code)
    """The basic profile action, compounds resolved towards keeping the IOD valid."""
    if code in ("X/D", "X/Z/D", "Z/D"):
        code = "D"
    elif code == "X/Z":
        code = "Z"
    if code == "X":
        return REMOVE
    if code == "Z":
        return Rule(Act.EMPTY)
    if code == "D":
        if vr == "SQ":
            return Rule(Act.SCRUB)
        return Rule(Act.UID) if vr == "UI" else Rule(Act.DUMMY)
    if code == "U":
        return Rule(Act.UID)
    if code in ("X/Z/U*", "K"):
        return Rule(Act.RECURSE) if vr == "SQ" else KEEP
    return Rule(Act.ALLOW, fallback=Act.REMOVE)  # a bare C: allow-listed or removed


def _clean(tag: int, options: set[str], vr: str, basic: Rule) -> Rule:
    """The conservative meaning of C for one attribute (see the module docstring)."""
    if "retain_long_modified_dates" in options:
        if vr in DATE_VRS:
            return KEEP if vr == "TM" else Rule(Act.SHIFT, fallback=basic.act)
        if tag == TIMEZONE_OFFSET:
            return KEEP  # like a time of day, unchanged by a whole-day shift
        if options == {"retain_long_modified_dates"}:
            return basic  # binary timestamps (OB) cannot be shifted
    if vr == "SQ":
        return Rule(Act.CLEAN)
    if vr in FREE_TEXT_VRS or vr in ("CS", "AS"):
        return Rule(Act.ALLOW, fallback=basic.act)
    return basic


def _resolve(tag: int, row: Row, enabled: frozenset[str]) -> Rule:
    basic_code, columns = row
    vr = resolve_vr(tag, None)
    basic = _basic(basic_code, vr)
    if tag in (PATIENT_NAME, PATIENT_ID):
        basic = Rule(Act.PSEUDONYM)
    cleaning = {option for option, action in columns if action == "C" and option in enabled}
    if cleaning:
        return _clean(tag, cleaning, vr, basic)
    if any(action == "K" and option in enabled for option, action in columns):
        return Rule(Act.RECURSE) if vr == "SQ" else KEEP
    return basic


def _override_rule(override: Override, vr: str) -> Rule:
    action = override.action
    if action == "keep":
        return Rule(Act.RECURSE) if vr == "SQ" else KEEP
    if action == "remove":
        return REMOVE
    if action == "empty":
        return Rule(Act.EMPTY)
    if action == "replace":
        return Rule(Act.REPLACE, value=override.value)
    if action == "hash":
        return Rule(Act.UID) if vr == "UI" else Rule(Act.HASH)
    return KEEP if vr == "TM" else Rule(Act.SHIFT, fallback=Act.EMPTY)


#: VRs besides free text and dates that a scrubbed (D) sequence replaces: codes, ages, numbers
#: and binary values (structure terms of a closed vocabulary aside, see ``values.dummy_like``).
SCRUBBED_VRS: Final = frozenset(
    {"AS", "AT", "CS", "DS", "FD", "FL", "IS", "OB", "OD", "OF", "OL", "OV", "OW", "SL", "SS",
     "SV", "UL", "US", "UV"}
)  # fmt: skip


def _extra(mode: Mode, enabled: frozenset[str]) -> dict[str, Rule]:
    """Rules for attributes the table does not name, inside cleaned or scrubbed sequences."""
    if mode is Mode.NORMAL:
        return {}
    text = Rule(Act.DUMMY) if mode is Mode.SCRUB else Rule(Act.ALLOW, fallback=Act.DUMMY)
    rules = dict.fromkeys(FREE_TEXT_VRS, text)
    if mode is Mode.SCRUB:  # everything in a D sequence is scrubbed, whatever its VR
        rules.update(dict.fromkeys(SCRUBBED_VRS, Rule(Act.DUMMY)))
    rules["UN"] = Rule(Act.EMPTY)  # opaque bytes: nothing can be said of them
    if "retain_long_full_dates" in enabled:
        return rules
    if "retain_long_modified_dates" in enabled:
        rules["DA"] = rules["DT"] = Rule(Act.SHIFT, fallback=Act.DUMMY)
        return rules
    rules["DA"] = rules["DT"] = rules["TM"] = Rule(Act.DUMMY)
    return rules


def compile_rules(settings: DeidSettings) -> Rules:
    """Resolve the table, the enabled options and the overrides into one :class:`Rules`."""
    enabled = frozenset(settings.options)
    table = {tag: _resolve(tag, row, enabled) for tag, row in TABLE.items()}
    graphics = "clean_graphics" in enabled
    repeating = (AUDIO, *(
        (mask, value, Rule(Act.GRAPHIC) if graphics and row[1] else REMOVE)
        for mask, value, row in REPEATING
    ))  # fmt: skip
    top_table = dict(table)
    for tag in TYPE3_AT_TOP:
        if top_table[tag].act is Act.EMPTY:
            top_table[tag] = REMOVE
    private_overrides: dict[tuple[str, int], Rule] = {}
    animal: dict[int, Rule] = {}
    if table[RESPONSIBLE_PERSON].act is Act.REMOVE:
        animal[RESPONSIBLE_PERSON] = Rule(Act.EMPTY)
        animal[RESPONSIBLE_ROLE] = REMOVE
    if table[RESPONSIBLE_ORGANIZATION].act is Act.REMOVE:
        animal[RESPONSIBLE_ORGANIZATION] = Rule(Act.EMPTY)
    for override in settings.overrides:
        target = override.target()
        if isinstance(target, tuple):
            private_overrides[target] = _override_rule(override, "UN")
        else:
            rule = _override_rule(override, resolve_vr(target, None))
            table[target] = top_table[target] = rule
            animal.pop(target, None)
    if RESPONSIBLE_PERSON not in animal:  # the operator decides the person: the role follows
        animal.pop(RESPONSIBLE_ROLE, None)
    needs_offset = "retain_long_modified_dates" in enabled or any(
        o.action == "shift" for o in settings.overrides
    )
    safe = PRIVATE[1] and "retain_safe_private" in enabled
    keep_unlisted = settings.keep_unlisted_tags()
    return Rules(
        table=table,
        top_table=top_table,
        animal=animal,
        repeating=repeating,
        overlay_rest=Rule(Act.GRAPHIC) if graphics else REMOVE,
        extra={mode: _extra(mode, enabled) for mode in Mode},
        remap_other_uids="retain_uids" not in enabled,
        safe_private=frozenset(settings.safe_private) if safe else frozenset(),
        private_overrides=private_overrides,
        allowlist=frozenset(settings.descriptor_allowlist),
        needs_offset=needs_offset,
        date_range=settings.date_shift_days,
        options=tuple(o for o in settings.options),
        unlisted=_unlisted(settings.unlisted, table, keep_unlisted),
        unlisted_mode=settings.unlisted,
        keep_unlisted=keep_unlisted,
    )


def _unlisted(
    mode: UnlistedMode, table: dict[int, Rule], keep: frozenset[int]
) -> dict[int, Rule | None] | None:
    """Every dictionary tag to its unlisted rule, so the walk pays one lookup per element
    (the walk asks only for tags the table and overrides do not name)."""
    if mode == "keep":
        return None
    decision = decide(mode, table, keep)
    dummy = Rule(Act.DUMMY)
    compiled: dict[int, Rule | None] = dict.fromkeys(DicomDictionary)
    for tag in decision.removed:
        compiled[tag] = REMOVE
    for tag in decision.dummied:
        compiled[tag] = dummy
    return compiled
