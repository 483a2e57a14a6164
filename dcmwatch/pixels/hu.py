"""Modality values (HU for CT) from stored values and back, exactly.

PS3.3 C.11.1: the modality LUT maps stored values to modality values either linearly,
``value = stored * (0028,1053) *Rescale Slope* + (0028,1052) *Rescale Intercept*``, or through
the (0028,3000) *Modality LUT Sequence* table. Enhanced multi-frame objects carry the same in the
(0028,9145) *Pixel Value Transformation Sequence* of the shared or per-frame functional groups.

HU comparisons are never done by converting whole images to float: a HU limit is turned into a
stored-value limit (searched on the same float64 arithmetic a reference computation uses, so the
two agree on every pixel), and the comparison runs on the stored integers in place. That is both
exact and fast enough for the per-slice budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_modality_lut
from pydicom.tag import Tag

from dcmwatch.pixels import header
from dcmwatch.pixels.errors import UnsupportedPixelsError

__all__ = ["ModalityLut", "modality_luts"]

# Tags as BaseTag objects: pydicom's lookups take them without converting.
_MODALITY_LUT_SEQUENCE = Tag(0x00283000)
_RESCALE_INTERCEPT = Tag(0x00281052)
_RESCALE_SLOPE = Tag(0x00281053)
_RESCALE_TYPE = Tag(0x00281054)

#: A table for (0028,3000) *Modality LUT Sequence* is built over the whole stored range.
_MAX_TABLE = 1 << 16


@dataclass(frozen=True, slots=True, eq=False)
class ModalityLut:
    """The stored -> modality value map of one frame, over the stored range ``[lo, hi]``.

    Either linear (``table`` is None) or a table indexed by ``stored - lo``.
    """

    lo: int
    hi: int
    slope: float = 1.0
    intercept: float = 0.0
    table: npt.NDArray[np.float64] | None = None
    #: False when the image has no modality LUT at all (identity, e.g. MR).
    present: bool = True
    #: (0028,1054) *Rescale Type*, upper-cased, when given.
    rescale_type: str | None = None

    def require_hu(self) -> None:
        """Refuse a HU action on an image whose modality values are not known to be HU."""
        if not self.present:
            raise UnsupportedPixelsError(
                "a HU action matched an image without a modality LUT "
                "((0028,1052) Rescale Intercept / (0028,3000) Modality LUT Sequence)"
            )
        if self.rescale_type not in (None, "HU"):
            raise UnsupportedPixelsError(
                "a HU action matched an image whose (0028,1054) Rescale Type is not HU"
            )

    def value(self, stored: int) -> float:
        """The modality value of one stored value (float64, as a reference computation)."""
        if self.table is not None:
            return float(self.table[min(max(stored, self.lo), self.hi) - self.lo])
        # Python floats are IEEE doubles: the same products and sums as numpy's float64 arrays.
        return float(stored) * self.slope + self.intercept

    def apply(self, stored: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Modality values of an array of stored values."""
        if self.table is not None:
            return self.table[stored.astype(np.int64) - self.lo]
        return stored.astype(np.float64) * self.slope + self.intercept

    def select(self, stored: npt.NDArray[Any], op: str, limit: float) -> npt.NDArray[np.bool_]:
        """Boolean mask of pixels whose modality value is ``< limit`` (op "<") or ``> limit``."""
        if self.table is not None:
            values = self.apply(stored)
            return values < limit if op == "<" else values > limit

        def pred(s: int) -> bool:
            v = self.value(s)
            return v < limit if op == "<" else v > limit

        guess = (limit - self.intercept) / self.slope  # the inverse LUT: where the boundary is
        return _select_linear(
            stored, pred, self.lo, self.hi, increasing=self._increasing(op), guess=guess
        )

    def nearest_stored(self, target: float) -> int:
        """The stored value in ``[lo, hi]`` whose modality value is nearest ``target`` (ties: the
        lower stored value); the inverse transform, rounded and clipped."""
        if self.table is not None:
            idx = int(np.argmin(np.abs(self.table - target)))
            return self.lo + idx
        guess = (target - self.intercept) / self.slope
        centre = min(max(math.floor(guess + 0.5), self.lo), self.hi)
        candidates = [s for s in (centre - 1, centre, centre + 1) if self.lo <= s <= self.hi]
        return min(candidates, key=lambda s: (abs(self.value(s) - target), s))

    def clip(self, stored: npt.NDArray[Any], low: float | None, high: float | None) -> bool:
        """Clip modality values into ``[low, high]`` in place; True when any pixel changed.

        A pixel below ``low`` becomes the stored value whose modality value is the smallest one
        not below ``low`` (likewise above ``high``), so results lie in the interval exactly.
        """
        changed = False
        for limit, op in ((low, "<"), (high, ">")):
            if limit is None:
                continue
            selected = self.select(stored, op, limit)
            if not selected.any():
                continue
            replacement = self._bound_stored(limit, op, low, high)
            np.putmask(stored, selected, replacement)
            changed = True
        return changed

    def _bound_stored(self, limit: float, op: str, low: float | None, high: float | None) -> int:
        allowed_lo = -math.inf if low is None else low
        allowed_hi = math.inf if high is None else high
        domain = np.arange(self.lo, self.hi + 1, dtype=np.int64) if self.table is not None else None
        if domain is not None and self.table is not None:
            ok = (self.table >= allowed_lo) & (self.table <= allowed_hi)
            if not ok.any():
                raise UnsupportedPixelsError("hu_clip: no stored value maps into the HU interval")
            candidates = domain[ok]
            values = self.table[ok]
            pick = np.argmin(values) if op == "<" else np.argmax(values)
            return int(candidates[pick])
        # Linear: the boundary stored value next to the limit, inside the interval.
        near = self.nearest_stored(limit)
        for s in sorted(
            (near - 1, near, near + 1), key=lambda s: abs(self.value(s) - limit)
        ):
            if self.lo <= s <= self.hi and allowed_lo <= self.value(s) <= allowed_hi:
                return s
        raise UnsupportedPixelsError("hu_clip: no stored value maps into the HU interval")

    def darkest_stored(self, *, inverted: bool) -> int:
        """The stored value shown darkest: lowest modality value (highest for MONOCHROME1)."""
        if self.table is not None:
            idx = int(np.argmax(self.table) if inverted else np.argmin(self.table))
            return self.lo + idx
        low_first = (self.slope >= 0) != inverted
        return self.lo if low_first else self.hi

    def nearest_at_or_below(self, limit: float) -> int | None:
        """The stored value whose modality value is the highest one ``<= limit`` (None when
        every stored value lies above): the value just under a window's lower edge."""
        if self.table is not None:
            ok = self.table <= limit
            if not ok.any():
                return None
            return self.lo + int(np.argmax(np.where(ok, self.table, -np.inf)))
        return self._boundary(lambda s: self.value(s) <= limit, low_end=self.slope > 0)

    def nearest_above(self, limit: float) -> int | None:
        """The stored value whose modality value is the lowest one ``> limit`` (None when none
        is): the value just over a window's upper edge."""
        if self.table is not None:
            ok = self.table > limit
            if not ok.any():
                return None
            return self.lo + int(np.argmin(np.where(ok, self.table, np.inf)))
        return self._boundary(lambda s: self.value(s) > limit, low_end=self.slope < 0)

    def _boundary(self, pred: Callable[[int], bool], *, low_end: bool) -> int | None:
        """The stored value where monotone ``pred`` stops holding, on its side: ``pred`` holds on
        a prefix of ``[lo, hi]`` (``low_end``) or a suffix; None when it holds nowhere."""
        if low_end:
            end = _prefix_end(pred, self.lo, self.hi, None)
            return end - 1 if end > self.lo else None
        start = _suffix_start(pred, self.lo, self.hi, None)
        return start + 1 if start < self.hi else None

    def _increasing(self, op: str) -> bool:
        """Whether ``pred`` holds for the low end of the stored range (True) or the high end."""
        return (self.slope > 0) == (op == "<")


def _select_linear(
    stored: npt.NDArray[Any],
    pred: Callable[[int], bool],
    lo: int,
    hi: int,
    *,
    increasing: bool,
    guess: float | None = None,
) -> npt.NDArray[np.bool_]:
    """``pred`` is monotone over ``[lo, hi]``: true on a prefix (``increasing``) or a suffix.

    Find the boundary by bisection on the exact float64 predicate, then compare integers. The
    inverse LUT's ``guess`` narrows the search to a few values once it is verified (``pred`` on
    either side of the window), so a slice costs five float comparisons, not seventeen; a guess
    that does not verify (rounding at the edge, a huge slope) falls back to the whole range.
    """
    centre = None
    if guess is not None and math.isfinite(guess):
        centre = min(max(math.floor(guess), lo - 1), hi + 1)
    if increasing:
        first_false = _prefix_end(pred, lo, hi, centre)
        if first_false <= lo:
            return np.zeros(stored.shape, dtype=np.bool_)
        if first_false > hi:
            return np.ones(stored.shape, dtype=np.bool_)
        below: npt.NDArray[np.bool_] = stored < stored.dtype.type(first_false)
        return below
    last_false = _suffix_start(pred, lo, hi, centre)
    if last_false >= hi:
        return np.zeros(stored.shape, dtype=np.bool_)
    if last_false < lo:
        return np.ones(stored.shape, dtype=np.bool_)
    above: npt.NDArray[np.bool_] = stored > stored.dtype.type(last_false)
    return above


def _prefix_end(pred: Callable[[int], bool], lo: int, hi: int, centre: int | None) -> int:
    """The smallest s in [lo, hi + 1] where ``pred`` (true on a prefix) is false."""
    a, b = lo, hi + 1
    if centre is not None:
        a0, b0 = max(lo, centre - 2), min(hi + 1, centre + 3)
        if (a0 == lo or pred(a0 - 1)) and (b0 == hi + 1 or not pred(b0)):
            a, b = a0, b0
    while a < b:
        mid = (a + b) // 2
        if pred(mid):
            a = mid + 1
        else:
            b = mid
    return a


def _suffix_start(pred: Callable[[int], bool], lo: int, hi: int, centre: int | None) -> int:
    """The largest s in [lo - 1, hi] where ``pred`` (true on a suffix) is false."""
    a, b = lo - 1, hi
    if centre is not None:
        a0, b0 = max(lo - 1, centre - 3), min(hi, centre + 2)
        if (a0 == lo - 1 or not pred(a0)) and (b0 == hi or pred(b0 + 1)):
            a, b = a0, b0
    while a < b:
        mid = (a + b + 1) // 2
        if pred(mid):
            b = mid - 1
        else:
            a = mid
    return a


def modality_luts(ds: Dataset, frames: int, lo: int, hi: int) -> tuple[ModalityLut, ...]:
    """One `ModalityLut` shared by all frames, or one per frame (enhanced per-frame groups)."""
    if _MODALITY_LUT_SEQUENCE in ds and len(ds.ModalityLUTSequence) > 0:
        return (_table_lut(ds, lo, hi),)
    if _RESCALE_SLOPE in ds or _RESCALE_INTERCEPT in ds:
        return (_linear(ds, lo, hi),)
    shared = _pvt_item(ds.get("SharedFunctionalGroupsSequence"), 0)
    if shared is not None:
        return (_linear(shared, lo, hi),)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and len(per_frame) == frames:
        items = [_pvt_item(per_frame, i) for i in range(frames)]
        if all(item is not None for item in items):
            return tuple(_linear(item, lo, hi) for item in items if item is not None)
    return (ModalityLut(lo, hi, present=False),)


def _pvt_item(groups: Any, index: int) -> Dataset | None:
    if groups is None or len(groups) <= index:
        return None
    seq = groups[index].get("PixelValueTransformationSequence")
    if seq is None or len(seq) == 0:
        return None
    item: Dataset = seq[0]
    return item


def _linear(item: Dataset, lo: int, hi: int) -> ModalityLut:
    try:
        slope = float(header.number(item, _RESCALE_SLOPE) or 1.0)
        intercept = float(header.number(item, _RESCALE_INTERCEPT) or 0.0)
    except (TypeError, ValueError):
        raise UnsupportedPixelsError(
            "(0028,1053) Rescale Slope / (0028,1052) Rescale Intercept are not numbers"
        ) from None
    if slope == 0 or not (math.isfinite(slope) and math.isfinite(intercept)):
        raise UnsupportedPixelsError("(0028,1053) Rescale Slope is zero or not finite")
    rescale_type = header.text(item, _RESCALE_TYPE) or None
    return ModalityLut(
        lo,
        hi,
        slope=slope,
        intercept=intercept,
        rescale_type=str(rescale_type).strip().upper() if rescale_type else None,
    )


def _table_lut(ds: Dataset, lo: int, hi: int) -> ModalityLut:
    if hi - lo + 1 > _MAX_TABLE:
        raise UnsupportedPixelsError("a Modality LUT Sequence on more than 16-bit stored values")
    dtype = np.int32 if lo < 0 else np.uint32
    domain = np.arange(lo, hi + 1, dtype=dtype)
    try:
        table = np.asarray(apply_modality_lut(domain, ds), dtype=np.float64)
    except Exception as exc:  # pydicom's message may quote values
        raise UnsupportedPixelsError(
            f"the (0028,3000) Modality LUT Sequence cannot be used ({type(exc).__name__})"
        ) from None
    item = ds.ModalityLUTSequence[0]
    lut_type = item.get("ModalityLUTType")
    return ModalityLut(
        lo,
        hi,
        table=table,
        rescale_type=str(lut_type).strip().upper() if lut_type else None,
    )
