"""Benchmark inputs, deterministic from a seed and written once per run.

The CT series comes from `dcmwatch.testing.synth` (realistic headers: nested sequences, a private
block with a UN element and a private sequence, an overlay on slice 0, PHI markers everywhere), so
the benchmark de-identifies what the tests prove correct. The burst of small files is one small
slice whose SOP Instance UID is patched in place per copy: encoding 20,000 datasets with pydicom
would take longer than the benchmark itself, and each copy must still be a distinct instance (its
output path is derived from that UID).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import JPEG2000Lossless, RLELossless

from dcmwatch.testing import ct_series, to_bytes

__all__ = ["Corpus", "burst_files", "compressed_series", "ct_files"]


@dataclass(frozen=True, slots=True)
class Corpus:
    """Files written to `folder`, ready to be copied or renamed into an inbox."""

    folder: Path
    paths: tuple[Path, ...]
    total_bytes: int

    @property
    def mean_bytes(self) -> float:
        return self.total_bytes / max(len(self.paths), 1)


def _write(folder: Path, blobs: list[bytes], stem: str) -> Corpus:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, blob in enumerate(blobs):
        path = folder / f"{stem}_{i:05d}.dcm"
        path.write_bytes(blob)
        paths.append(path)
    return Corpus(folder, tuple(paths), sum(len(b) for b in blobs))


def ct_files(folder: Path, n: int, *, seed: int, size: int = 512) -> Corpus:
    """`n` uncompressed CT slices of `size`x`size` int16 (512: about 0.56 MB each)."""
    series = ct_series(n, seed=seed, rows=size, columns=size)
    return _write(folder, [to_bytes(ds) for ds in series], "ct")


def compressed_series(folder: Path, n: int, *, seed: int, size: int, syntax: str) -> Corpus:
    """`n` CT slices encoded lossless: "j2k" (JPEG 2000 lossless) or "rle" (RLE Lossless)."""
    uid = {"j2k": JPEG2000Lossless, "rle": RLELossless}[syntax]
    blobs = []
    for ds in ct_series(n, seed=seed, rows=size, columns=size):
        ds.compress(uid)
        blobs.append(to_bytes(ds))
    return _write(folder, blobs, syntax)


def burst_files(folder: Path, n: int, *, seed: int, size: int = 64) -> Corpus:
    """`n` small CT slices (64x64: about 10 kB), distinct SOP Instance UIDs, written fast."""
    template = ct_series(2, seed=seed, rows=size, columns=size)[1]  # slice 1: no overlay
    placeholder = f"2.25.1{seed % 10_000:04d}{'9' * 14}"
    template.SOPInstanceUID = placeholder
    template.file_meta.MediaStorageSOPInstanceUID = placeholder
    blob = to_bytes(template)
    needle = placeholder.encode()
    if blob.count(needle) != 2:
        raise RuntimeError("the burst template must carry its UID exactly twice")
    head, middle, tail = blob.split(needle)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        uid = f"2.25.1{seed % 10_000:04d}{i:014d}".encode()
        path = folder / f"b_{i:06d}.dcm"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"".join((head, uid, middle, uid, tail)))
        finally:
            os.close(fd)
        paths.append(path)
    return Corpus(folder, tuple(paths), n * len(blob))
