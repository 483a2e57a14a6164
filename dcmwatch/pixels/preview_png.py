"""``dcmwatch preview``: one DICOM file in, a PNG of what the pixel rules make of it out.

The edge around the pure `dcmwatch.pixels.render_preview`: reads the input the way workers do
(`store.read_input`: no symlinks or FIFOs, size-capped; `dicomfile.decode`: truncation and
deflate checks), renders, encodes PNG with Pillow and writes it durably (tmp in the target
folder, fsync, rename, fsync the folder), so a crash never leaves half a PNG under the name.
Every failure is a `DcmwatchError` with a message of ours: the CLI prints it without the input's
path (file names can carry patient names).
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset

from dcmwatch import dicomfile, store
from dcmwatch.config import Config
from dcmwatch.errors import DcmwatchError, TransformError
from dcmwatch.pixels.preview import Box, render_preview
from dcmwatch.pixels.rules import matching_rules
from dcmwatch.pixels.step import apply_actions

if TYPE_CHECKING:
    from dcmwatch.ocr.boxes import TextBox

__all__ = ["OCR_RGB", "encode_png", "guard_boxes", "write_preview"]


def write_preview(
    src: Path, dest: Path, config: Config, *, frame: int = 1, boxes: Sequence[Box] = ()
) -> tuple[int, int]:
    """Render frame ``frame`` of ``src`` under ``config``'s rules into the PNG ``dest``.

    With the burned-in text guard enabled, the guard's findings in the frame are outlined too
    (`OCR_RGB`): its own reading of the frame as the rules leave it, matched against the file's
    header, so what is outlined is exactly what the guard would act on, and text outside the
    red mask outlines is what a mask still misses.

    Returns (rows, columns). Raises `InputError` subclasses for an input that cannot be read or
    rendered and `OutputError` when the PNG cannot be written.
    """
    raw = store.read_input(src, max_bytes=config.limits.max_file_bytes, allow_hardlinks=True)
    ds = dicomfile.decode(raw.data, max_inflated=config.limits.max_inflated_bytes)
    try:
        if config.ocr.enabled:
            boxes = (*boxes, *_ocr_boxes(ds, config, frame))
        rgb = render_preview(ds, config.rules, config.pixels, frame=frame, boxes=boxes)
    except DcmwatchError:
        raise
    except Exception as exc:  # a library's message may quote values
        raise TransformError(f"the image cannot be rendered ({type(exc).__name__})") from None
    store.write_durable(dest, encode_png(rgb), tag=f"{dest.name}.preview",
                        mode=config.output.file_mode)
    return int(rgb.shape[0]), int(rgb.shape[1])


#: Outline colour of the guard's findings (masks are outlined in the preview's own colour).
OCR_RGB = (255, 200, 0)


def guard_boxes(ds: Dataset, config: Config, frame: int) -> tuple[TextBox, ...]:
    """The guard's findings in the 1-based ``frame`` of ``ds`` as the pipeline hands it to the
    guard: after the matching pixel rules, matched against the original header's values."""
    from dcmwatch.ocr import collect, text_boxes  # noqa: PLC0415 - loads an OCR engine

    ids = collect(ds)
    work = copy.deepcopy(ds)
    matched = matching_rules(config.rules, work, all_matching=config.pixels.all_matching_rules)
    apply_actions(work, [a for rule in matched for a in rule.actions], settings=config.pixels,
                  derive_uid=lambda uid: uid)
    return text_boxes(work, config.ocr, max_pixel_bytes=config.limits.max_pixel_bytes,
                      frame=frame, ids=ids)


def _ocr_boxes(ds: Dataset, config: Config, frame: int) -> list[Box]:
    return [Box(*t.box, rgb=OCR_RGB) for t in guard_boxes(ds, config, frame)]


def encode_png(rgb: npt.NDArray[np.uint8]) -> bytes:
    """An 8-bit RGB PNG of ``rgb`` (rows, columns, 3)."""
    from PIL import Image  # noqa: PLC0415 - only the preview command needs Pillow

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB").save(buf, format="PNG")
    return buf.getvalue()
