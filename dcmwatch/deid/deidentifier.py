"""The de-identification step: a pure, picklable callable built once per worker.

``Deidentifier(ds) -> ds`` edits the dataset in place: no file system, environment, clock,
randomness or logging, and no state kept between calls, so a crash-restart that reprocesses the
same input writes byte-identical output. It pickles as (settings, key) and is rebuilt on the
other side, because the HMAC state it holds does not pickle. The key never appears in its repr.

The file meta group (0002,xxxx) is left as it came: it is not part of the dataset, and
`dcmwatch.dicomfile.encode` writes a new one of its own for every output, from the dataset's
SOP Class and Instance UIDs and its transfer syntax. Nothing of the input's meta (AE titles,
private information, the original instance UID) reaches a file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcmwatch.deid.marks import Marks
from dcmwatch.deid.profile import compile_rules
from dcmwatch.deid.pseudonyms import Keyed
from dcmwatch.deid.walk import Walk
from dcmwatch.errors import TransformError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dcmwatch.deid.settings import DeidSettings

__all__ = ["Deidentifier", "make_deidentifier"]

class Deidentifier:
    """PS3.15 Annex E Basic Profile with options and overrides, for one key."""

    __slots__ = ("_key", "_marks", "_rules", "_settings", "_walk")

    def __init__(self, settings: DeidSettings, key: bytes) -> None:
        keyed = Keyed(key, settings.pseudonym_prefix)  # refuses a short key before any work
        self._settings = settings
        self._key = bytes(key)
        self._rules = compile_rules(settings)
        self._walk = Walk(self._rules, keyed)
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
        self._marks.apply(ds)
        return ds


def make_deidentifier(settings: DeidSettings, key: bytes) -> Deidentifier:
    """Build the de-identification step for ``settings`` and the secret ``key`` (≥ 16 bytes)."""
    return Deidentifier(settings, key)
