"""`dcmwatch suggest-masks`: OCR a sample of each device's images, propose a mask rule for it.

A device burns its banner in the same place on every image of a given size, so the boxes of the
text read on a few of its images, padded and merged, make a permanent mask rule: after it, the
guard finds nothing and stops costing a quarantine per image. Devices are told apart by
(0008,0070) Manufacturer, (0008,1090) Manufacturer's Model Name, Rows and Columns, which is what
the printed rule matches on. Only these device attributes and coordinates are printed, never
recognised text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from dcmwatch.ocr.boxes import TextBox, text_boxes
from dcmwatch.ocr.engines import Box
from dcmwatch.ocr.settings import OcrSettings

__all__ = ["Device", "Suggestion", "device_of", "merge", "sample", "suggest", "to_toml"]


@dataclass(frozen=True, slots=True, order=True)
class Device:
    manufacturer: str
    model: str
    rows: int
    columns: int


@dataclass(frozen=True, slots=True)
class Suggestion:
    device: Device
    images: int
    images_with_text: int
    rects: tuple[Box, ...]


def device_of(ds: Dataset) -> Device:
    return Device(
        manufacturer=str(ds.get("Manufacturer", "") or "").strip(),
        model=str(ds.get("ManufacturerModelName", "") or "").strip(),
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
    )


def sample(items: Sequence[str], n: int) -> list[str]:
    """Up to ``n`` of ``items`` spread evenly (first and last included): a device's session."""
    if len(items) <= n:
        return list(items)
    if n == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def merge(boxes: Iterable[Box], pad: int, rows: int, columns: int) -> tuple[Box, ...]:
    """Pad each box, clip it to the image, and merge overlapping or touching ones."""
    rects = []
    for x, y, w, h in boxes:
        x0, y0 = max(x - pad, 0), max(y - pad, 0)
        x1, y1 = min(x + w + pad, columns), min(y + h + pad, rows)
        if x1 > x0 and y1 > y0:
            rects.append((x0, y0, x1, y1))
    changed = True
    while changed:
        changed = False
        out: list[tuple[int, int, int, int]] = []
        for r in rects:
            for i, o in enumerate(out):
                if r[0] <= o[2] and o[0] <= r[2] and r[1] <= o[3] and o[1] <= r[3]:
                    out[i] = (min(r[0], o[0]), min(r[1], o[1]), max(r[2], o[2]), max(r[3], o[3]))
                    changed = True
                    break
            else:
                out.append(r)
        rects = out
    return tuple(sorted((x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in rects))


def suggest(
    device: Device, datasets: Iterable[Dataset], settings: OcrSettings, max_pixel_bytes: int
) -> Suggestion:
    boxes: list[TextBox] = []
    images = with_text = 0
    for ds in datasets:
        images += 1
        found = text_boxes(ds, settings, max_pixel_bytes=max_pixel_bytes)
        with_text += bool(found)
        boxes.extend(found)
    rects = merge((b.box for b in boxes), settings.pad, device.rows, device.columns)
    return Suggestion(device, images, with_text, rects)


def to_toml(s: Suggestion) -> str:
    """The ``[[rules]]`` table for config/dcmwatch.toml (strings quoted as TOML basic strings)."""
    d = s.device
    head = (f"# {d.manufacturer or '?'} {d.model or '?'} {d.rows}x{d.columns}: text in "
            f"{s.images_with_text} of {s.images} sampled image(s)")
    if not s.rects:
        return head + ": nothing to mask\n"
    slug = "-".join(p for p in (d.manufacturer, d.model) if p) or "device"
    name = f"burned-in-text {slug} {d.rows}x{d.columns}"[:128]
    match = [f"Rows = {d.rows}", f"Columns = {d.columns}"]
    if d.manufacturer:
        match.insert(0, f"Manufacturer = {json.dumps(d.manufacturer)}")
    if d.model:
        match.insert(1 if d.manufacturer else 0,
                     f"ManufacturerModelName = {json.dumps(d.model)}")
    rects = ", ".join(f"[{x}, {y}, {w}, {h}]" for x, y, w, h in s.rects)
    return (
        f"{head}\n[[rules]]\nname = {json.dumps(name)}\n"
        f"match = {{ {', '.join(match)} }}\n"
        f'actions = [{{ type = "mask", rects = [{rects}] }}]\n'
    )
