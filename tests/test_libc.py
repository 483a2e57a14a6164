"""The C library is loaded once, without `ctypes.util.find_library` (a subprocess per call)."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dcmwatch import libc, store


def _no_find_library(name: str) -> str | None:
    raise AssertionError("find_library runs ldconfig/gcc in a subprocess")


def test_rename_noreplace_loads_nothing_per_call(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", _no_find_library)
    for i in range(3):
        src, dest = tmp_path / f"a{i}", tmp_path / f"b{i}"
        src.write_bytes(b"x")
        store.rename_noreplace(src, dest)
        assert dest.exists() and not src.exists()
    assert libc.libc() is libc.libc()
    assert libc.function("renameat2") is not None and libc.function("no_such_call") is None


def test_workers_set_their_death_signal_through_the_same_helper() -> None:
    """In a child (the setting would outlive the test otherwise): PR_SET_PDEATHSIG is set,
    and find_library is never asked."""
    code = textwrap.dedent("""
        import ctypes, ctypes.util, signal
        def refuse(name):
            raise SystemExit("find_library called")
        ctypes.util.find_library = refuse
        from dcmwatch import libc
        from dcmwatch.engine import work
        work._die_with_parent()
        sig = ctypes.c_int(0)
        libc.function("prctl")(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG
        assert sig.value == signal.SIGKILL, sig.value
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_kept_buffers_cost_no_page_faults() -> None:
    """A worker's per-file buffers (half a megabyte, a few alive at once) come back from the
    heap instead of fresh pages: without the thresholds glibc maps and unmaps them each time."""
    code = textwrap.dedent("""
        import resource, sys
        from dcmwatch import libc
        if sys.argv[1] == "tuned":
            assert libc.keep_buffers_in_heap()
        def one_file():
            a = bytearray(600_000)
            b = bytes(a)
            c = bytearray(b)
            del a, b, c
        for _ in range(5):
            one_file()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(100):
            one_file()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    faults = {mode: int(subprocess.run([sys.executable, "-c", code, mode], check=True,
                                       capture_output=True, text=True).stdout)
              for mode in ("default", "tuned")}
    assert faults["tuned"] < 100 < faults["default"] / 10
