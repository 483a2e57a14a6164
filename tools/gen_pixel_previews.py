"""Render the preview images of docs/pixel-rules.md from synthetic data, with `dcmwatch preview`.

The pictures in the documentation are what the code makes of an image, not drawings: each one
is a synthetic file from `dcmwatch.testing` (a CT slice, an ultrasound frame with a burned-in
banner of a made-up patient) run through the same `dcmwatch preview` command an operator runs,
under a small configuration shown beside it in the page. Rerun after changing the pixel code:

    python tools/gen_pixel_previews.py            # writes docs/img/pixels/*.png
    python tools/gen_pixel_previews.py --out DIR  # somewhere else (tests/test_docs.py does)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from pydicom.dataset import Dataset

from dcmwatch.cli import main as dcmwatch
from dcmwatch.testing import ct_series
from dcmwatch.testing.banners import Banner, banner_dataset, banner_text

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "img" / "pixels"

#: name -> (input, [[rules]] of the configuration used for it). The page shows the same rules.
CT_RULES = """
[[rules]]
name = "ct"
match = { Modality = "CT" }
actions = [
  { type = "hu_threshold", below = -500, fill_hu = -1000 },
  { type = "mask", rects = [[0, 0, 256, 24]] },
  { type = "window", center = 40, width = 400 },
]
"""
US_SHORT_RULES = """
[[rules]]
name = "us-banner"
match = { Modality = "US", Rows = 480, Columns = 640 }
actions = [{ type = "mask", rects = [[0, 0, 400, 40]] }]
"""
US_MASK_RULES = """
[[rules]]
name = "us-banner"
match = { Modality = "US", Rows = 480, Columns = 640 }
actions = [{ type = "mask", rects = [[0, 0, 640, 40]] }]
"""
IMAGES = {
    "ct-original": ("ct", ""),
    "ct-rules": ("ct", CT_RULES),
    "us-original": ("us", ""),
    "us-mask-short": ("us", US_SHORT_RULES),
    "us-mask": ("us", US_MASK_RULES),
}


def _inputs() -> dict[str, Dataset]:
    """The synthetic inputs: fake patients only, never a real file."""
    ct = ct_series(1, rows=256, columns=256)[0]
    us = banner_dataset(Banner(banner_text(), size=18, position="top-left"), seed=3)
    return {"ct": ct, "us": us}


def render(out: Path) -> list[Path]:
    """Write one PNG per entry of `IMAGES` into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, ds in _inputs().items():
            ds.save_as(work / f"{name}.dcm", enforce_file_format=True)
        for name, (source, rules) in IMAGES.items():
            config = work / f"{name}.toml"
            config.write_text(rules)
            png = out / f"{name}.png"
            code = dcmwatch(["preview", "--config", str(config), str(work / f"{source}.dcm"),
                             "-o", str(png)])
            if code != 0:
                raise SystemExit(f"dcmwatch preview failed for {name} (exit {code})")
            written.append(png)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for path in render(args.out):
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
