"""The C library, loaded once per process, for the two calls the stdlib lacks (renameat2,
prctl).

`ctypes.CDLL(None)` is the process's own symbol table, which has libc in it: no
`ctypes.util.find_library`, which runs a subprocess (ldconfig, gcc) on every call.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any


@functools.cache
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def function(name: str) -> Any:
    """The libc function `name`, or None where this libc lacks it (renameat2 before glibc 2.28,
    musl before 1.2.5)."""
    try:
        return getattr(libc(), name, None)
    except OSError:  # no dlopen(NULL): a static interpreter
        return None


def get_errno() -> int:
    return ctypes.get_errno()


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Buffers below this come from the heap and are reused; above it (a multi-frame study's pixel
#: data) they are mapped and returned to the system when freed.
MMAP_THRESHOLD = 8 << 20
#: Free memory the heap may keep at its top instead of giving it back.
TRIM_THRESHOLD = 32 << 20


def keep_buffers_in_heap() -> bool:
    """Make a worker reuse its per-file buffers instead of faulting fresh pages for each file.

    A slice is read, decoded, masked and encoded through several half-megabyte buffers. glibc
    serves each from a new mmap (or trims the heap after it is freed), so every file faulted in
    hundreds of fresh pages, costing more system time than de-identifying it. Fixed
    thresholds keep those buffers in the heap; the cost is a heap that may hold
    `TRIM_THRESHOLD` of free memory between files. Returns False where mallopt is missing
    (musl): only slower, never wrong.
    """
    mallopt = function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
