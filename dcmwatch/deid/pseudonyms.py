"""Keyed, consistent replacements: patient pseudonyms, UIDs, date offsets, digests.

Everything derives from HMAC-SHA256 with the operator's key, with a distinct domain per use,
so the same input gives the same output across files, restarts and machines sharing the key,
while without the key nothing can be recomputed or reversed. Nothing is stored: consistency
comes from determinism, not from a table.
"""

from __future__ import annotations

import base64
import hmac
from hashlib import sha256
from typing import Final

from dcmwatch.errors import KeyTooShortError

__all__ = ["MIN_KEY_BYTES", "Keyed", "check_key"]

#: A key shorter than this is refused: pseudonyms of a guessable key can be recomputed from a
#: list of patient IDs.
MIN_KEY_BYTES: Final = 16
_UID_ROOT: Final = "2.25."
#: Length of the base32 digest in a pseudonym: 80 bits, no collision expected below ~10^11
#: patients, and short enough that prefix + digest fits PN and SH-sized fields.
_PSEUDONYM_CHARS: Final = 16


def check_key(key: bytes, *, source: str = "the de-identification key") -> bytes:
    """``key``, if it is long enough; else `KeyTooShortError` naming ``source`` (a key file's
    path, an environment variable's name), never the key. The one check: where a key is read
    (`dcmwatch.keys`) and where it is used (`Keyed`) both call it."""
    if len(key) < MIN_KEY_BYTES:
        raise KeyTooShortError(f"{source}: the key is shorter than {MIN_KEY_BYTES} bytes")
    return key


def _b32(digest: bytes) -> str:
    return base64.b32encode(digest).decode("ascii").rstrip("=")


class Keyed:
    """The keyed hash of one run. Not picklable (holds an HMAC state): rebuild from the key."""

    __slots__ = ("_mac", "_prefix")

    def __init__(self, key: bytes, prefix: str = "ANON") -> None:
        check_key(key)
        # Key schedule done once; each digest copies this state instead of re-keying.
        self._mac = hmac.new(key, digestmod=sha256)
        self._prefix = prefix

    def digest(self, domain: bytes, text: str) -> bytes:
        """HMAC-SHA256 of ``domain NUL text``: domains keep one use from predicting another."""
        mac = self._mac.copy()
        mac.update(domain + b"\x00" + text.encode("utf-8", "surrogateescape"))
        return mac.digest()

    def uid(self, uid: str) -> str:
        """A ``2.25.`` UID (at most 44 characters) for ``uid``, the same wherever it appears.

        The 128 bits are made a version-8 (custom) UUID, as PS3.5 B.2 expects of ``2.25``.
        """
        raw = bytearray(self.digest(b"uid", uid)[:16])
        raw[6] = (raw[6] & 0x0F) | 0x80
        raw[8] = (raw[8] & 0x3F) | 0x80
        return _UID_ROOT + str(int.from_bytes(raw, "big"))

    def pseudonym(self, patient_key: str) -> str:
        """``prefix + base32 digest`` for one patient: valid in LO, PN and SH-length readers."""
        return self._prefix + _b32(self.digest(b"patient", patient_key))[:_PSEUDONYM_CHARS]

    def text(self, value: str, max_chars: int) -> str:
        """A keyed digest of ``value`` in base32 (A-Z, 2-7: valid even in CS), cut to fit."""
        return _b32(self.digest(b"text", value))[:max_chars]

    def day_offset(self, patient_key: str, low: int, high: int) -> int:
        """The patient's date shift in days, uniform in ``[low, high]``."""
        span = high - low + 1
        value = int.from_bytes(self.digest(b"dates", patient_key)[:8], "big")
        return low + value % span
