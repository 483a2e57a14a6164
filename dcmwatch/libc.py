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
