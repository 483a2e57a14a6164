"""The pixel step: match rules, apply their actions, write pixels back, mark the instance.

Pure: no file system, clock, environment, randomness or logging; the same dataset and rules give
the same bytes. When no rule matches only the header is read (and, for the burned-in policy,
(0028,0301) *Burned In Annotation*): Pixel Data is never decoded.

**When pixels change** the result is a new instance:

* (0008,0018) *SOP Instance UID* = ``derive_uid(old)`` (PS3.3 C.12.1.1.1: changed pixel data
  is a new instance); the file meta that names it is written from it (`dicomfile.encode`);
* (0008,0008) *Image Type* value 1 becomes ``DERIVED`` (PS3.3 C.7.6.1.1.2: pixel values derived
  from another image's), when Image Type is present; the other values are kept;
* (0028,0106)/(0028,0107) *Smallest/Largest Image Pixel Value* are removed (they may be stale);
* after a ``bake`` window the instance becomes a Secondary Capture (`window.as_secondary_capture`).

**Big endian in, little endian out.** Every Explicit VR Big Endian dataset leaves the step as
Explicit VR Little Endian with the same values (`codec.to_little_endian`), whether a rule matched
or not: the syntax is retired, receivers refuse it, and pydicom writes it only for datasets that
were read that way. For the same reason this is the one case where a file no rule matches has
its Pixel Data bytes rewritten (byte-swapped, never re-compressed); the SOP Instance UID stays.

**No pixels, nothing to do.** A rule that matches a dataset without pixel data (a structured
report, an RT plan, a waveform: a catch-all rule matches those too) leaves it alone, and names no
rule as applied. Float pixel data, which no action can edit exactly, is refused instead
(quarantined), so a mask rule never lets an image it cannot mask through.

**Burned In Annotation after a mask.** A mask action that covered at least one pixel of every
frame (no ``frames`` restriction) and has ``clears_burned_in`` (the default) sets (0028,0301)
*Burned In Annotation* to ``NO``. dcmwatch cannot see text; the operator who wrote a mask for a
device's annotation area asserts it is gone, and downstream systems that refuse ``YES`` images
should then accept the result. A frame-restricted mask leaves the attribute as it was. Only an
explicit ``YES`` triggers the ``burned_in_annotation`` policy; an absent attribute does not.

**require-mask needs pixels covered.** Under ``burned_in_annotation = "require-mask"`` a ``YES``
image passes only when the masks of its matching rules covered at least one pixel of every frame
(together). A matching mask that covers nothing (a circle between index points, a ``keep_inside``
region holding the whole image, a dataset without pixels) or only some frames does not count.
A mask shape outside the image is refused before that (`dcmwatch.pixels.geometry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dcmwatch.pixels import codec, header
from dcmwatch.pixels.codec import PixelLayout, Pixels
from dcmwatch.pixels.errors import BurnedInAnnotationError, UnsupportedPixelsError
from dcmwatch.pixels.fill import default_fill, explicit_fill
from dcmwatch.pixels.hu import ModalityLut, modality_luts
from dcmwatch.pixels.masks import blend, fill_where, paint, region_for
from dcmwatch.pixels.rules import matching_rules
from dcmwatch.pixels.settings import (
    HuClipAction,
    HuThresholdAction,
    MaskAction,
    PixelAction,
    PixelRule,
    PixelSettings,
    WindowAction,
    changes_pixels,
)
from dcmwatch.pixels.window import (
    Window,
    as_secondary_capture,
    bake,
    header_window,
    set_window_tags,
)

__all__ = ["PixelStep", "PixelsApplied", "apply_actions", "make_pixel_step"]


@dataclass(frozen=True, slots=True)
class PixelsApplied:
    """What the pixel step did to one dataset, returned beside it."""

    #: Names of the matching rules whose actions ran, in order; empty when none matched or the
    #: dataset has no pixels.
    rules: tuple[str, ...] = ()
    #: Whether Pixel Data changed, and with it the SOP Instance UID.
    changed: bool = False


#: ``step(ds) -> (ds, applied)``: edits ``ds`` in place and returns it with what was applied.
PixelStep = Callable[[Dataset], tuple[Dataset, PixelsApplied]]
_NOTHING = PixelsApplied()

# Tags as BaseTag objects: pydicom's lookups take them without converting.
_IMAGE_TYPE, _SOP_INSTANCE_UID = Tag(0x00080008), Tag(0x00080018)
_BURNED_IN_ANNOTATION = Tag(0x00280301)
_SMALLEST_LARGEST = (Tag(0x00280106), Tag(0x00280107))
#: (7FE0,0010) Pixel Data, (7FE0,0008) Float Pixel Data, (7FE0,0009) Double Float Pixel Data.
_ANY_PIXEL_DATA = (Tag(0x7FE00010), Tag(0x7FE00008), Tag(0x7FE00009))


def make_pixel_step(
    rules: Sequence[PixelRule],
    settings: PixelSettings,
    derive_uid: Callable[[str], str],
) -> PixelStep:
    """Build the configured pixel step, ``step(ds) -> (ds, applied)`` (edits ``ds``)."""
    frozen_rules = tuple(rules)

    def pixel_step(ds: Dataset) -> tuple[Dataset, PixelsApplied]:
        burned_in = header.text(ds, _BURNED_IN_ANNOTATION).upper() == "YES"
        if burned_in and settings.burned_in_annotation == "reject":
            raise BurnedInAnnotationError(
                "(0028,0301) Burned In Annotation is YES and the policy is 'reject'"
            )
        matched = matching_rules(frozen_rules, ds, all_matching=settings.all_matching_rules)
        require_mask = burned_in and settings.burned_in_annotation == "require-mask"
        if require_mask and not any(isinstance(a, MaskAction) for r in matched for a in r.actions):
            raise BurnedInAnnotationError(
                "(0028,0301) Burned In Annotation is YES and no matching rule has a mask "
                "(policy 'require-mask')"
            )
        codec.to_little_endian(ds, settings.max_pixel_bytes)
        has_pixels = any(tag in ds for tag in _ANY_PIXEL_DATA)
        state = None
        applied = _NOTHING  # without pixels (a report, a plan, a waveform) nothing is done
        if matched and has_pixels:
            actions = tuple(a for rule in matched for a in rule.actions)
            state = _apply(ds, actions, settings=settings, derive_uid=derive_uid)
            changed = state is not None and state.touched
            applied = PixelsApplied(tuple(rule.name for rule in matched), changed)
        if require_mask and (state is None or not state.every_frame_masked):
            raise BurnedInAnnotationError(
                "(0028,0301) Burned In Annotation is YES and no mask of a matching rule "
                "covered a pixel of every frame (policy 'require-mask')"
            )
        return ds, applied

    return pixel_step


def apply_actions(
    ds: Dataset,
    actions: Sequence[PixelAction],
    *,
    settings: PixelSettings,
    derive_uid: Callable[[str], str],
) -> bool:
    """Apply ``actions`` in order to ``ds``; True when pixel data changed.

    Nothing in ``ds`` changes until every action succeeded, except for ``tags`` windows: pixels
    are edited on a copy (or a decoded array) and written back at the end.
    """
    state = _apply(ds, actions, settings=settings, derive_uid=derive_uid)
    return state is not None and state.touched


def _apply(
    ds: Dataset,
    actions: Sequence[PixelAction],
    *,
    settings: PixelSettings,
    derive_uid: Callable[[str], str],
) -> _State | None:
    """`apply_actions`, returning what the actions did (None when no action edits pixels)."""
    if not any(changes_pixels(a) for a in actions):
        for action in actions:
            if isinstance(action, WindowAction):
                set_window_tags(ds, action)
        return None
    original = codec.read_layout(ds)
    codec.check_size(original, settings.max_pixel_bytes)
    tsyntax = codec.transfer_syntax(ds)
    pixels = codec.open_pixels(ds, original, tsyntax)
    windows = [a for a in actions if isinstance(a, WindowAction)]
    # The fill renders black under the window the output is shown with: the rules' last one
    # (a tags window is written, a bake applied), else the image's own.
    display = Window(windows[-1].center, windows[-1].width) if windows else None
    state = _State(ds, pixels, display)
    for action in _run(state, actions):
        set_window_tags(ds, action)
    if not state.touched:
        return state
    codec.write_back(ds, state.pixels, original, tsyntax)
    _mark_derived(ds, derive_uid)
    if state.baked:
        as_secondary_capture(ds, state.layout.frames)
    if state.burned_in_cleared:
        ds.BurnedInAnnotation = "NO"
    return state


def _run(state: _State, actions: Sequence[PixelAction]) -> list[WindowAction]:
    """Apply the pixel actions; return the ``tags`` windows still to write afterwards."""
    deferred_tags: list[WindowAction] = []
    for action in actions:
        if isinstance(action, WindowAction):
            if action.mode == "tags":
                deferred_tags.append(action)
            else:
                state.pixels = bake(state.ds, state.pixels, state.luts(), action)
                state.touched = state.baked = True
                state.reset_luts()  # the modality LUT is now the identity
                deferred_tags.clear()  # the bake's identity window supersedes earlier tags
        elif isinstance(action, HuThresholdAction):
            state.threshold(action)
        elif isinstance(action, HuClipAction):
            state.clip(action)
        else:
            state.mask(action)
    return deferred_tags


class _State:
    """The pixels being edited and what the actions did to them so far."""

    def __init__(self, ds: Dataset, pixels: Pixels, display: Window | None) -> None:
        self.ds = ds
        self.pixels = pixels
        self.touched = False
        self.baked = False
        self.burned_in_cleared = False
        #: 0-based frames in which a mask covered at least one pixel.
        self.masked_frames: set[int] = set()
        self._luts: tuple[ModalityLut, ...] | None = None
        self._display = display
        self._display_read = display is not None

    @property
    def every_frame_masked(self) -> bool:
        return len(self.masked_frames) == self.layout.frames

    def display_window(self) -> Window | None:
        """The window the output is shown with, read from the header on first need."""
        if not self._display_read:
            self._display = header_window(self.ds)
            self._display_read = True
        return self._display

    @property
    def layout(self) -> PixelLayout:
        return self.pixels.layout

    def luts(self) -> tuple[ModalityLut, ...]:
        if self._luts is None:
            layout = self.layout
            self._luts = modality_luts(
                self.ds, layout.frames, layout.stored_min, layout.stored_max
            )
        return self._luts

    def reset_luts(self) -> None:
        self._luts = None

    def lut(self, frame: int) -> ModalityLut:
        luts = self.luts()
        return luts[frame] if len(luts) > 1 else luts[0]

    def frame_indices(self, frames: tuple[int, ...] | None) -> range | list[int]:
        total = self.layout.frames
        if frames is None:
            return range(total)
        if max(frames) > total:
            raise UnsupportedPixelsError("a rule names a frame beyond (0028,0008) Number of Frames")
        return sorted({f - 1 for f in frames})

    def _require_hu_image(self) -> None:
        if self.layout.photometric not in ("MONOCHROME1", "MONOCHROME2"):
            raise UnsupportedPixelsError("a HU action matched a colour image")
        for lut in self.luts():
            lut.require_hu()

    def threshold(self, action: HuThresholdAction) -> None:
        self._require_hu_image()
        for f in self.frame_indices(action.frames):
            lut = self.lut(f)
            frame = self.pixels.array[f]
            fill = frame.dtype.type(lut.nearest_stored(action.fill_hu))
            for op, limit in (("<", action.below), (">", action.above)):
                if limit is None:
                    continue
                selected = lut.select(frame, op, limit)
                if not selected.any():
                    continue
                pixels = self.pixels
                if not pixels.is_writable and pixels.flat is not None and pixels.layout.frames == 1:
                    # Copy on write, fused: the blend writes its result into a new array
                    # anyway, so the file's bytes need no copy of their own first.
                    blended = blend(pixels.flat, fill, selected.reshape(-1))
                    self.pixels = codec.with_flat(pixels, blended)
                else:
                    fill_where(self.editable()[f], fill, selected)
                frame = self.pixels.array[f]
                self.touched = True

    def editable(self) -> npt.NDArray[Any]:
        """The pixel array, made writable (a copy of the file's bytes on first need)."""
        self.pixels = codec.writable(self.pixels)
        return self.pixels.array

    def clip(self, action: HuClipAction) -> None:
        self._require_hu_image()
        for f in self.frame_indices(action.frames):
            if self.lut(f).clip(self.editable()[f], action.min, action.max):
                self.touched = True

    def mask(self, action: MaskAction) -> None:
        layout = self.layout
        region = region_for(action, layout.rows, layout.columns)
        indices = self.frame_indices(action.frames)
        monochrome = layout.photometric in ("MONOCHROME1", "MONOCHROME2")
        if action.fill_hu is not None:
            self._require_hu_image()
        groups: list[tuple[range | list[int], list[int]]]
        if action.fill is None and monochrome and len(self.luts()) > 1:
            # Per-frame modality LUTs (enhanced objects): each frame its own stored fill.
            groups = [([f], self._fill(action, f)) for f in indices]
        else:
            groups = [(indices, self._fill(action, indices[0] if indices else 0))]
        covered = False
        for frames, fill in groups:
            covered |= paint(self.editable(), frames, region, fill, keep_inside=action.keep_inside)
        if covered:
            self.touched = True
            self.masked_frames.update(indices)
            if action.clears_burned_in and action.frames is None:
                self.burned_in_cleared = True

    def _fill(self, action: MaskAction, frame: int) -> list[int]:
        layout = self.layout
        lo, hi = layout.stored_min, layout.stored_max
        if action.fill_hu is not None:
            return [self.lut(frame).nearest_stored(action.fill_hu)]
        if action.fill is not None:
            return explicit_fill(action.fill, layout.samples, lo, hi)
        monochrome = layout.photometric in ("MONOCHROME1", "MONOCHROME2")
        return default_fill(
            self.ds,
            layout.photometric,
            samples=layout.samples,
            lo=lo,
            hi=hi,
            lut=self.lut(frame) if monochrome else None,
            window=self.display_window() if monochrome else None,
        )


def _mark_derived(ds: Dataset, derive_uid: Callable[[str], str]) -> None:
    old = header.text(ds, _SOP_INSTANCE_UID)
    if not old:
        raise UnsupportedPixelsError("changed pixels need a new instance, but there is no SOP UID")
    new = derive_uid(old)
    header.set_value(ds, _SOP_INSTANCE_UID, "UI", new)
    values = header.texts(ds, _IMAGE_TYPE)
    if values and any(values):
        values[0] = "DERIVED"
        header.set_value(ds, _IMAGE_TYPE, "CS", values if len(values) > 1 else values[0])
    for tag in _SMALLEST_LARGEST:
        if tag in ds:
            del ds[tag]
