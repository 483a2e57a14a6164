"""Why the guard stopped a file: `InputError` subclasses, so the job quarantines.

Messages are ours: counts and classes of header value, never recognised text nor a value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcmwatch.errors import InputError, TransformError

if TYPE_CHECKING:
    from dcmwatch.ocr.findings import Finding

__all__ = ["BurnedInTextError", "BurnedInTextRemainsError", "OcrEngineError", "OcrTimeoutError"]


class BurnedInTextError(InputError):
    """Text is still burned into the pixels after the mask rules (policy ``quarantine``)."""

    reason = "burned_in_text"

    def __init__(self, message: str, findings: tuple[Finding, ...]) -> None:
        super().__init__(message)
        self.findings = findings


class BurnedInTextRemainsError(BurnedInTextError):
    """Policy ``redact``: an independent reading of the redacted image still finds text, so the
    redaction cannot be trusted and the file stops. Its findings are the first pass's and what
    the check found."""

    reason = "burned_in_text_remains"


class OcrTimeoutError(InputError):
    """Reading the image took longer than ``ocr.time_limit_seconds``: unread is not safe."""

    reason = "ocr_timeout"


class OcrEngineError(TransformError):
    """The OCR engine failed on this image (or is missing): unread is not safe."""

    reason = "ocr_failed"
