"""The de-identification step: a pure, picklable callable built once per worker.

``Deidentifier(ds) -> ds`` edits the dataset in place: no file system, environment, clock,
randomness or logging, and no state kept between calls, so a crash-restart that reprocesses the
same input writes byte-identical output. It pickles as (settings, key) and is rebuilt on the
other side, because the HMAC state it holds does not pickle. The key never appears in its repr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pydicom.dataelem import DataElement

from dcmwatch.deid.marks import Marks
from dcmwatch.deid.profile import compile_rules
from dcmwatch.deid.pseudonyms import MIN_KEY_BYTES, Keyed
from dcmwatch.deid.walk import Walk
from dcmwatch.errors import ConfigError, TransformError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dcmwatch.deid.settings import DeidSettings

__all__ = ["Deidentifier", "make_deidentifier"]

_SOP_INSTANCE_UID: Final = 0x00080018
_MEDIA_SOP_INSTANCE_UID: Final = 0x00020003
#: File meta elements kept: (0002,0000) group length (recomputed by the writer), (0002,0001)
#: version, (0002,0002) SOP class, (0002,0003) SOP instance (replaced), (0002,0010) transfer
#: syntax, (0002,0012)/(0002,0013) implementation.
#: Everything else goes, (0002,0016) *Source Application Entity Title* and the other AE titles,
#: presentation addresses and (0002,0102) *Private Information* included.
_META_KEEP: Final = frozenset(
    {0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013}
)


class Deidentifier:
    """PS3.15 Annex E Basic Profile with options and overrides, for one key."""

    __slots__ = ("_key", "_marks", "_rules", "_settings", "_walk")

    def __init__(self, settings: DeidSettings, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"the de-identification key must be at least {MIN_KEY_BYTES} bytes")
        self._settings = settings
        self._key = bytes(key)
        self._rules = compile_rules(settings)
        self._walk = Walk(self._rules, Keyed(self._key, settings.pseudonym_prefix))
        self._marks = Marks(settings)

    def __repr__(self) -> str:
        return f"Deidentifier(options={self._settings.options!r})"

    def __reduce__(self) -> tuple[Any, tuple[DeidSettings, bytes]]:
        return (type(self), (self._settings, self._key))

    def __call__(self, ds: Dataset) -> Dataset:
        """De-identify ``ds`` in place and return it; TransformError if that is not possible."""
        walk = self._walk
        try:
            patient_key = walk.patient_key(ds, "")
        except Exception as exc:
            raise TransformError(f"cannot read the patient: {type(exc).__name__}") from None
        offset = 0
        if self._rules.needs_offset:
            low, high = self._rules.date_range
            offset = walk.day_offset(patient_key, low, high)
        walk.dataset(ds, patient_key, offset)
        self._file_meta(ds)
        self._marks.apply(ds)
        return ds

    def _file_meta(self, ds: Dataset) -> None:
        """Strip the file meta to what Part 10 needs; its instance UID follows the dataset's."""
        meta = getattr(ds, "file_meta", None)
        if meta is None:
            return
        for tag in list(meta._dict):
            if tag not in _META_KEEP:
                del meta[tag]
        if _MEDIA_SOP_INSTANCE_UID not in meta._dict:
            return
        if _SOP_INSTANCE_UID in ds._dict:
            new = ds[_SOP_INSTANCE_UID].value
        elif self._rules.remap_other_uids:
            new = self._walk.uid(str(meta[_MEDIA_SOP_INSTANCE_UID].value))
        else:
            return
        meta[_MEDIA_SOP_INSTANCE_UID] = DataElement(_MEDIA_SOP_INSTANCE_UID, "UI", new)


def make_deidentifier(settings: DeidSettings, key: bytes) -> Deidentifier:
    """Build the de-identification step for ``settings`` and the secret ``key`` (≥ 16 bytes)."""
    return Deidentifier(settings, key)
