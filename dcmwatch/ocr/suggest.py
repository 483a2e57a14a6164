"""`dcmwatch suggest-masks`: OCR a sample of each device's images, propose a mask rule for it.

A device burns its banner in the same place on every image of a given size, so the regions the
guard's redaction would fill on a few of its images (`dcmwatch.ocr.boxes.text_regions`: the
guard's own findings, grown to whole lines and blocks), merged, make a permanent mask rule:
after it, the guard finds nothing and stops costing a quarantine per image. Devices are told
apart by (0008,0070) Manufacturer, (0008,1090) Manufacturer's Model Name, Rows and Columns,
which is what the printed rule matches on. Only these device attributes and coordinates are
printed, never recognised text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset

from dcmwatch.ocr.boxes import text_regions
from dcmwatch.ocr.engines import Box
from dcmwatch.ocr.regions import merge
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


def suggest(
    device: Device, datasets: Iterable[Dataset], settings: OcrSettings, max_pixel_bytes: int
) -> Suggestion:
    """Read each image as the guard does; the rule masks every region it would redact."""
    regions: list[Box] = []
    images = with_text = 0
    for ds in datasets:
        images += 1
        found, painted = text_regions(ds, settings, max_pixel_bytes=max_pixel_bytes)
        with_text += bool(found)
        regions.extend(painted)
    rects = merge(regions, 0, device.rows, device.columns)
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
