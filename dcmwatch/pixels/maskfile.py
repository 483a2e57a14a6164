"""Masks drawn as images: a ``.npy`` array or a PNG, read once when the config is loaded.

Some devices burn text into irregular places (ultrasound scan-converter screens, a vendor logo
beside a curved sector) that are easier to paint than to describe as rectangles. The operator
paints a black-and-white image of the device's geometry; dcmwatch reads it **at config load**,
checks it (2-D, binary, inside DICOM's size limits, not empty) and keeps it in the frozen config
as packed bits. Workers and the pure core never open the file: the mask travels with the config
(it pickles) and a SIGHUP reload reads it again.

Binary means: at most two distinct values, one of them 0. Zero keeps the pixel, the other value
(1, ``True``, 255, white) masks it. A colour PNG is judged by its grey level.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_MASK_FILE_BYTES", "MaskFileError", "load_mask_file", "pack", "unpack"]

#: A 65535 x 65535 bitmap packs into 512 MiB; no sane mask file comes near this.
MAX_MASK_FILE_BYTES = 64 * 1024**2
_MAX_DIMENSION = 65535


class MaskFileError(ValueError):
    """A mask file that cannot be used; the message names the file, never its contents."""


def load_mask_file(path: Path) -> npt.NDArray[np.bool_]:
    """Read a ``.npy`` or ``.png`` mask into a 2-D boolean array (True = mask the pixel)."""
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".png"):
        raise MaskFileError(f"{path}: a mask file must be .npy or .png")
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        raise MaskFileError(f"{path}: cannot read the mask file ({exc.strerror})") from None
    if size > MAX_MASK_FILE_BYTES:
        raise MaskFileError(f"{path}: larger than {MAX_MASK_FILE_BYTES} bytes")
    array = _read_npy(path) if suffix == ".npy" else _read_png(path)
    return _binary(path, array)


def _read_npy(path: Path) -> npt.NDArray[np.generic]:
    try:
        array = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise MaskFileError(f"{path}: cannot read the mask file ({exc.strerror})") from None
    except ValueError:
        raise MaskFileError(f"{path}: not a numpy .npy array (or it holds objects)") from None
    if not isinstance(array, np.ndarray):
        raise MaskFileError(f"{path}: not a numpy .npy array")
    return array


def _read_png(path: Path) -> npt.NDArray[np.generic]:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - only configs with PNG masks

    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                raise MaskFileError(f"{path}: not a PNG image")
            width, height = image.size
            if width > _MAX_DIMENSION or height > _MAX_DIMENSION:
                raise MaskFileError(f"{path}: larger than any DICOM image ({width} x {height})")
            grey = image.convert("L") if image.mode not in ("1", "L", "I", "I;16") else image
            return np.asarray(grey)
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise MaskFileError(f"{path}: not a readable PNG image") from None
        reason = exc.strerror or type(exc).__name__
        raise MaskFileError(f"{path}: cannot read the mask file ({reason})") from None


def _binary(path: Path, array: npt.NDArray[np.generic]) -> npt.NDArray[np.bool_]:
    if array.ndim != 2:
        raise MaskFileError(f"{path}: a mask must be 2-D (rows x columns), not {array.ndim}-D")
    rows, columns = array.shape
    if not (1 <= rows <= _MAX_DIMENSION and 1 <= columns <= _MAX_DIMENSION):
        raise MaskFileError(f"{path}: {rows} x {columns} is not a DICOM image size")
    if array.dtype == np.bool_:
        covered = np.asarray(array, dtype=np.bool_)
    else:
        if array.dtype.kind not in "uif":
            raise MaskFileError(f"{path}: the mask must hold numbers or booleans")
        values = np.unique(array)
        two_with_zero = len(values) < 2 or (len(values) == 2 and values[0] == 0)
        if not (two_with_zero and np.isfinite(values).all()):
            raise MaskFileError(
                f"{path}: not binary: use 0 for pixels to keep and one other value "
                "(1 or 255) for pixels to mask"
            )
        covered = array != 0
    if not covered.any():
        raise MaskFileError(f"{path}: the mask covers no pixel")
    return covered


def pack(bitmap: npt.NDArray[np.bool_]) -> bytes:
    """The bitmap as packed bits (row-major, 1 bit a pixel): compact and picklable."""
    return np.packbits(bitmap, axis=None).tobytes()


def unpack(packed: bytes, rows: int, columns: int) -> npt.NDArray[np.bool_]:
    """The inverse of `pack`."""
    bits = np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=rows * columns)
    return bits.reshape(rows, columns).view(np.bool_)
