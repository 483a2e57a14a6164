"""Modules our libraries import but dcmwatch never uses, loaded only if someone does use them.

pydicom imports `requests`, `tqdm` and `urllib.request` at start-up for one purpose,
downloading its test data, which dcmwatch never does; with them come urllib3, ssl, http.client,
asyncio and more: 17 MB of every dcmwatch process (the daemon and each worker), on a memory
budget of 200 MB for all of them. A stand-in
module takes its place in `sys.modules`; the first attribute anyone reads from it (a test's S3
mock, a plugin) imports the real module, which from then on is the one `import` returns.
(`importlib.util.LazyLoader` does not do here: on Python 3.11 `import requests` itself reads
the module's `__spec__` and so loads it.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

DEFERRED = ("requests", "tqdm", "urllib.request")


class _Deferred(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        return getattr(_load(self.__name__), attr)


def _load(name: str) -> types.ModuleType:
    # No lock of ours: two threads racing here both reach import_module, whose own module
    # lock makes one load it and the other wait for it (a lock here deadlocked when loading
    # one stand-in loads another: requests imports urllib.request).
    if isinstance(sys.modules.get(name), _Deferred):
        sys.modules.pop(name, None)
    return importlib.import_module(name)


def defer(name: str) -> bool:
    """Make `import name` cheap for this process. False when it is loaded already or absent."""
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return False
    stand_in = _Deferred(name)
    sys.modules[name] = stand_in
    parent, _, child = name.rpartition(".")
    if parent:  # `import urllib.request` then reads `urllib.request`: an attribute of urllib
        setattr(sys.modules[parent], child, stand_in)
    return True


def defer_unused() -> None:
    for name in DEFERRED:
        defer(name)
