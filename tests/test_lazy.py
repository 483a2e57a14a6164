"""What pydicom imports and dcmwatch never uses (requests, tqdm, urllib.request) costs no memory
until used, and works unchanged for whoever does use it."""

from __future__ import annotations

import subprocess
import sys


def test_requests_is_loaded_on_first_use_only() -> None:
    code = (
        "import sys\n"
        "import dcmwatch, pydicom, pydicom.pixels\n"
        "print('urllib3' in sys.modules, type(sys.modules['tqdm']).__name__)\n"
        "import requests\n"
        "from requests.adapters import HTTPAdapter\n"
        "print('urllib3' in sys.modules, callable(requests.get), HTTPAdapter.__name__,\n"
        "      type(sys.modules['requests']).__name__)\n"
        "import urllib.request, tqdm\n"
        "print(callable(urllib.request.urlopen), callable(tqdm.tqdm))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == ["False", "_Deferred", "True", "True", "HTTPAdapter", "module", "True", "True"]
