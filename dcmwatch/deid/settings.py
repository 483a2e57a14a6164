"""The ``[deid]`` section of the configuration: which profile options, pseudonym shape, overrides.

Validated once, when the configuration is loaded, so that a worker never discovers a bad
setting while holding a patient's file. Values are checked against pydicom's data dictionary
(keywords, VRs), never against a dataset. Key material is *named* here (file, env var), never
read: the edge resolves it and hands bytes to :func:`dcmwatch.deid.make_deidentifier`.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

from dcmwatch.deid.table import TABLE
from dcmwatch.deid.unlisted import UnlistedMode

__all__ = [
    "HASH_VRS",
    "OPTION_NAMES", "DeidSettings", "Option", "Override", "OverrideAction", "parse_target"]

Option = Literal[
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_long_full_dates",
    "retain_long_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
]
#: Canonical order: the order options are marked in (0012,0064) *De-identification Method Code
#: Sequence*, whatever order the configuration lists them in.
OPTION_NAMES: Final[tuple[str, ...]] = get_args(Option)

OverrideAction = Literal["keep", "remove", "empty", "replace", "hash", "shift"]

#: A prefix must fit every VR the pseudonym is written to (LO, PN, SH-like readers), and must
#: not contain PN/multi-value delimiters (``^ = \\``).
_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,16}")
_TAG_TEXT = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)")
_PRIVATE_TEXT = re.compile(r"(.+):([0-9A-Fa-f]{2})")
#: The widest interval a date shift may take; beyond it shifted dates leave the DA range.
_MAX_SHIFT_DAYS: Final = 365 * 200
#: VRs whose value is text a ``replace`` override can write.
_TEXT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI",
     "UR", "UT"}
)  # fmt: skip
#: VRs a keyed digest fits (base32 text, or a ``2.25.`` UID for UI).
HASH_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "UI"})
_DATE_VRS: Final = frozenset({"DA", "DT", "TM"})


def parse_target(text: str) -> int | tuple[str, int]:
    """``PatientName`` / ``(0010,0010)`` → int tag; ``CREATOR:ee`` → (creator, element byte).

    Raises ValueError for anything else, including private tags given as ``(gggg,eeee)``: their
    element numbers are only meaningful relative to a private creator.
    """
    m = _TAG_TEXT.fullmatch(text.strip())
    if m is not None:
        tag = int(m.group(1) + m.group(2), 16)
        if (tag >> 16) & 1:
            raise ValueError("private attributes are named as 'creator:ee', not by tag")
        return tag
    m = _PRIVATE_TEXT.fullmatch(text)
    if m is not None:
        return m.group(1).strip(), int(m.group(2), 16)
    found = tag_for_keyword(text.strip())
    if found is None:
        raise ValueError(f"unknown attribute keyword: {text!r}")
    return int(found)


def _vr_of(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


class Override(BaseModel):
    """One per-attribute rule that wins over the profile and every option (applied last).

    ``attribute`` is a keyword (``PatientBirthDate``), a tag (``(0010,0030)``) or, for a private
    attribute, ``creator:ee`` with ``ee`` the element's low byte in hex (``ACME 1.0:10``).
    ``hash`` writes a keyed digest (a consistent ``2.25.`` UID for UI attributes); ``shift``
    moves a DA/DT by the patient's date offset; ``keep`` on a sequence keeps it and still
    applies the profile inside its items.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: A keyword, a `(gggg,eeee)` tag or, for a private attribute, `creator:ee`.
    attribute: str
    #: What to do with the attribute, whatever the profile and the options say.
    action: OverrideAction
    #: The new value, for `replace` only.
    value: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Override:
        target = parse_target(self.attribute)
        if (self.action == "replace") != (self.value is not None):
            raise ValueError("'value' is required for action 'replace' and only for it")
        if isinstance(target, tuple):
            if not target[0] or len(target[0]) > 64:
                raise ValueError("private creator must be 1 to 64 characters")
            return self
        vr = _vr_of(target)
        if self.action == "replace" and vr not in _TEXT_VRS:
            raise ValueError("action 'replace' needs an attribute with a text VR")
        if self.action == "hash" and vr not in HASH_VRS:
            raise ValueError("action 'hash' needs an attribute with a text or UI VR")
        if self.action == "shift" and vr not in _DATE_VRS:
            raise ValueError("action 'shift' needs a DA, DT or TM attribute")
        if self.value is not None and ("\x00" in self.value or len(self.value) > 1024):
            raise ValueError("'value' must be at most 1024 characters, without NUL")
        return self

    def target(self) -> int | tuple[str, int]:
        """The attribute as an int tag, or (private creator, element low byte)."""
        return parse_target(self.attribute)

    def describe(self) -> str:
        """A name for error messages: the keyword or tag, never a value."""
        target = self.target()
        if isinstance(target, tuple):
            return f"private {target[0]}:{target[1]:02x}"
        return keyword_for_tag(target) or f"({target >> 16:04X},{target & 0xFFFF:04X})"


class DeidSettings(BaseModel):
    """The ``[deid]`` section: PS3.15 Annex E Basic Profile plus the chosen options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Annex E options (Table E.1-1's columns) to apply on top of the Basic Profile.
    options: tuple[Option, ...] = ()
    #: Pseudonyms are ``f"{prefix}{digest}"`` in (0010,0020) *Patient ID* and (0010,0010)
    #: *Patient's Name*.
    pseudonym_prefix: str = "ANON"
    #: Inclusive range of the per-patient date offset, in days.
    date_shift_days: tuple[int, int] = (-3650, -1)
    #: (private creator, element low byte) pairs kept with ``retain_safe_private``.
    safe_private: tuple[tuple[str, int], ...] = ()
    #: Exact values kept wherever an option says C(lean) a free-text attribute.
    descriptor_allowlist: tuple[str, ...] = ()
    #: Per-attribute actions that win over the profile and every option (below).
    overrides: tuple[Override, ...] = ()
    #: Standard attributes Table E.1-1 does not name: ``keep`` (the profile as written),
    #: ``remove-text`` (those that can carry text, names, dates, times or URLs, and opaque
    #: bytes) or ``remove`` (all but what keeps the image decodable); see
    #: :mod:`dcmwatch.deid.unlisted`.
    unlisted: UnlistedMode = "remove-text"
    #: Unlisted attributes kept by ``remove-text`` and ``remove`` besides the built-in
    #: technical descriptors: keywords or ``(gggg,eeee)`` tags.
    keep_unlisted: tuple[str, ...] = ()
    # Key sources, resolved by the edge (never read here).
    #: A file holding the secret key (refused if group or world readable). A systemd credential
    #: `dcmwatch.key` wins over it.
    key_file: str | None = None
    #: The environment variable holding the key, used when there is no credential or key file.
    key_env: str | None = "DCMWATCH_KEY"
    #: Without a key, use a random one: pseudonyms and UIDs then change at every restart.
    random_key: bool = False
    #: Keep a re-identification map (pseudonym/new UID → original) in the state database, for
    #: `dcmwatch lookup`. Off: nothing reversible is stored anywhere.
    reid_map: bool = False
    #: Create `key_file` (mode 0600) when it does not exist, so that pseudonyms stay stable
    #: across restarts without a manual step.
    generate_key: bool = False

    @field_validator("options")
    @classmethod
    def _unique_options(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("options are listed more than once")
        if {"retain_long_full_dates", "retain_long_modified_dates"} <= set(value):
            raise ValueError(
                "retain_long_full_dates and retain_long_modified_dates exclude each other"
            )
        return value

    @field_validator("pseudonym_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if _PREFIX.fullmatch(value) is None:
            raise ValueError("pseudonym_prefix: up to 16 of A-Z a-z 0-9 _ -")
        return value

    @field_validator("date_shift_days")
    @classmethod
    def _shift_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        low, high = value
        if low > high:
            raise ValueError("date_shift_days: the first bound must not exceed the second")
        if max(abs(low), abs(high)) > _MAX_SHIFT_DAYS:
            raise ValueError(f"date_shift_days: bounds must be within ±{_MAX_SHIFT_DAYS} days")
        return value

    @field_validator("safe_private")
    @classmethod
    def _safe_private(cls, value: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
        for creator, element in value:
            if not creator.strip() or len(creator) > 64:
                raise ValueError("safe_private: private creator must be 1 to 64 characters")
            if not 0 <= element <= 0xFF:
                raise ValueError("safe_private: element must be the low byte, 0x00 to 0xFF")
        return tuple((creator.strip(), element) for creator, element in value)

    @field_validator("keep_unlisted")
    @classmethod
    def _keep_unlisted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            target = parse_target(text)  # ValueError names an unknown keyword
            if isinstance(target, tuple):  # pydantic reports a ValueError as the key's error
                raise ValueError(f"{text!r} is private: private attributes follow safe_private")  # noqa: TRY004
            if target in TABLE:
                raise ValueError(f"{text!r} is in Table E.1-1: use an override to keep it")
        return value

    def keep_unlisted_tags(self) -> frozenset[int]:
        """``keep_unlisted`` as int tags (validated: every entry is a public tag)."""
        return frozenset(t for t in map(parse_target, self.keep_unlisted) if isinstance(t, int))

    @model_validator(mode="after")
    def _keys(self) -> DeidSettings:
        if self.generate_key and self.key_file is None:
            raise ValueError("generate_key needs key_file")
        targets = [o.target() for o in self.overrides]
        if len(set(targets)) != len(targets):
            raise ValueError("overrides: an attribute is overridden more than once")
        return self

    def has(self, option: str) -> bool:
        """Whether ``option`` is enabled."""
        return option in self.options

