"""One exception tree. Every message here is written by us and is free of PHI.

Library exceptions (pydicom's in particular) may embed element values such as patient names,
so they are never shown verbatim: they are wrapped in one of these classes, with the library's
exception *class* kept as context for engineers, never its message.
"""

from __future__ import annotations

#: What an error boundary must let through: the interpreter is stopping. Everything else that
#: reaches a boundary is caught, BaseException included: Rust decoders (pyo3) raise
#: `PanicException`, a BaseException, on malformed input, and one escaping a worker's task
#: would reach the daemon's main loop.
FATAL = (KeyboardInterrupt, SystemExit, GeneratorExit)


class DcmwatchError(Exception):
    """Root of every error dcmwatch raises on purpose."""

    #: Short machine-readable reason, stable across releases; used in logs and sidecars.
    reason = "error"


class ConfigError(DcmwatchError):
    """The configuration is invalid: for the operator, who must fix the named key in the file."""

    reason = "config"


class KeyTooShortError(ConfigError):
    """The de-identification key is shorter than `deid.pseudonyms.MIN_KEY_BYTES`: pseudonyms
    made with a guessable key can be recomputed from a list of patient IDs."""

    reason = "key_too_short"


class InputError(DcmwatchError):
    """The input file cannot be processed as it is: it is quarantined, the daemon goes on."""

    reason = "input"


class NotRegularFileError(InputError):
    """A symlink, FIFO, device or directory where a regular file was expected."""

    reason = "not_regular_file"


class EmptyFileError(InputError):
    reason = "empty"


class TooLargeError(InputError):
    """The file (or the pixel data it claims) exceeds a configured limit."""

    reason = "too_large"


class NotDicomError(InputError):
    """Not a DICOM Part 10 file, nor a dataset pydicom can read leniently."""

    reason = "not_dicom"


class TruncatedError(InputError):
    """The file ends before its elements do. Retried while the writer may still be busy."""

    reason = "truncated"


class PixelDataError(InputError):
    """The pixel data disagrees with the image header, or compressed frames do not decode."""

    reason = "pixel_data"


class TimeLimitExceeded(InputError):
    """Processing the file took longer than limits.file_seconds (a pathological input)."""

    reason = "time_limit"


class TransformError(InputError):
    """De-identification or a pixel rule cannot be applied to this dataset."""

    reason = "transform"


class WithheldError(InputError):
    """A file a policy keeps from the outbox on purpose (`[pixels] slide_label = "drop"`): not a
    fault, nothing for a person to fix, but never lost either. Until the engine routes it apart
    (kept with its sidecar, counted as withheld, never requeued) it is quarantined, which is the
    safe side of the same promise."""

    reason = "withheld"


class InternalError(DcmwatchError):
    """A bug, or a library's panic, while processing one file: quarantined with the exception's
    class only (its message may quote values)."""

    reason = "internal"


class OutputError(DcmwatchError):
    """Writing a result failed for a reason that is not the input's fault."""

    reason = "output"


class TransientError(OutputError):
    """A failure that may pass (disk full, I/O error, permission, busy database): retry later."""

    reason = "transient"
