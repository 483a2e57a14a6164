"""Importing dcmwatch changes nothing outside it.

A Dask worker or a notebook imports dcmwatch next to its own libraries: the package must not
replace, block or preload another package's module in `sys.modules`. Each check runs in a fresh
interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

#: What a worker and the command line import: the package, the per-file core, the pool.
DCMWATCH = "import dcmwatch, dcmwatch.pipeline, dcmwatch.engine.pool, dcmwatch.cli"


def _run(code: str) -> object:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout)


def test_modules_loaded_before_stay_the_same_objects() -> None:
    """A process that had requests, tqdm and urllib.request keeps those very modules."""
    code = (
        "import json, sys, importlib\n"
        "for name in ('requests', 'tqdm', 'urllib.request', 'pydicom', 'numpy'):\n"
        "    try: importlib.import_module(name)\n"
        "    except ImportError: pass\n"
        "before = {n: id(m) for n, m in sys.modules.items()}\n"
        f"{DCMWATCH}\n"
        "print(json.dumps(sorted(n for n, i in before.items() if id(sys.modules.get(n)) != i)))\n"
    )
    assert _run(code) == []


def test_every_other_module_is_the_real_one() -> None:
    """After importing dcmwatch first, no module outside it in `sys.modules` is None or of a
    dcmwatch type, and what pydicom imports (requests, tqdm, urllib.request) is each the module
    its own import made, `urllib.request` the attribute of `urllib` as well."""
    code = (
        "import json, sys, types\n"
        f"{DCMWATCH}\n"
        "bad = [name for name, mod in list(sys.modules.items())\n"
        "       if not (name == 'dcmwatch' or name.startswith('dcmwatch.'))\n"
        "       and (mod is None or type(mod).__module__.startswith('dcmwatch'))]\n"
        "for name in ('requests', 'tqdm', 'urllib.request'):\n"
        "    mod = sys.modules.get(name)\n"
        "    spec = getattr(mod, '__spec__', None)\n"
        "    if mod is not None and (type(mod) is not types.ModuleType or spec is None\n"
        "                            or spec.name != name or not hasattr(mod, '__file__')):\n"
        "        bad.append(name)\n"
        "import urllib\n"
        "if 'urllib.request' in sys.modules and (\n"
        "        getattr(urllib, 'request', None) is not sys.modules['urllib.request']):\n"
        "    bad.append('urllib')\n"
        "print(json.dumps(bad))\n"
    )
    assert _run(code) == []


def test_a_module_imported_afterwards_is_loaded_for_real() -> None:
    """`import requests` after dcmwatch gives requests itself, its dependencies loaded."""
    code = (
        "import json, sys\n"
        f"{DCMWATCH}\n"
        "try:\n"
        "    import requests\n"
        "except ImportError:\n"
        "    print(json.dumps('absent')); raise SystemExit\n"
        "print(json.dumps([type(requests).__name__, 'urllib3' in sys.modules,\n"
        "                  callable(requests.get), requests.__spec__.name]))\n"
    )
    result = _run(code)
    assert result in ("absent", ["module", True, True, "requests"])
