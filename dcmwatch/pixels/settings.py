"""The ``[pixels]`` section and the ``[[rules]]`` tables of the TOML config, validated at load.

Everything an operator can get wrong is caught here, before the daemon takes a single file: an
unknown action ``type`` (pydantic's discriminated union names the offending tag), a rectangle that
cannot lie in any DICOM image, a HU action on a rule that could match images whose stored values
are not Hounsfield units. Error locations are pydantic's ``loc`` (``actions.0.mask.rects``); the
config loader prefixes the file name and ``rules[i]``.

**Which rules may use HU.** Only CT images carry Hounsfield units: PS3.3 C.8.2.1 makes
(0028,1052) *Rescale Intercept* / (0028,1053) *Rescale Slope* mandatory in the CT Image module
and defines their output as HU. PET rescales to activity (Bq/ml, SUV), MR has no modality LUT at
all. A rule with a HU action (``hu_threshold``, ``hu_clip``, a mask with ``fill_hu``) must
therefore say ``Modality = "CT"`` (or a list whose every entry is exactly ``"CT"``), without glob
characters. At run time a matched image without a usable modality LUT, or whose (0028,1054)
*Rescale Type* is present and not ``HU``, is refused with a `TransformError`.

The models are frozen and hashable, so a whole `Config` can key a cache.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydicom.datadict import dictionary_VR, tag_for_keyword

from dcmwatch.pixels.geometry import first_outside
from dcmwatch.pixels.maskfile import load_mask_file, pack, unpack

__all__ = [
    "CONFIG_DIR_CONTEXT",
    "HuClipAction",
    "HuThresholdAction",
    "MaskAction",
    "MaskFile",
    "PixelAction",
    "PixelRule",
    "PixelSettings",
    "WindowAction",
]

#: Validation context key: the folder relative mask ``file`` paths are resolved against (the
#: config file's folder; the current folder when absent).
CONFIG_DIR_CONTEXT = "config_dir"

#: (0028,0010) *Rows* and (0028,0011) *Columns* are US: no image is larger than this.
MAX_DIMENSION = 65535

MatchScalar = str | int | float
MatchValue = MatchScalar | tuple[MatchScalar, ...]

#: VRs whose values are bulk data or nested datasets: nothing an operator can glob against.
_UNMATCHABLE_VRS = frozenset({"SQ", "OB", "OW", "OD", "OF", "OL", "OV", "UN", "OB or OW"})
_GLOB_CHARS = frozenset("*?[")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Frames = tuple[Annotated[int, Field(ge=1, le=2**31 - 1)], ...]


class HuThresholdAction(_Frozen):
    """Replace every pixel whose HU is below ``below`` and/or above ``above`` with ``fill_hu``.

    The comparison is made in HU through the modality LUT and is exact: the HU limit is turned into
    a stored-value limit such that ``stored * slope + intercept < below`` holds for exactly the
    pixels the HU comparison selects. ``fill_hu`` is written back as the stored value whose HU is
    nearest to it (clipped to the (0028,0101) *Bits Stored* range).
    """

    type: Literal["hu_threshold"]
    #: Pixels whose HU is below this get `fill_hu`.
    below: float | None = None
    #: Pixels whose HU is above this get `fill_hu`.
    above: float | None = None
    #: The HU written into the selected pixels (-1000: air).
    fill_hu: float = -1000.0
    #: 1-based frame numbers; all frames when absent.
    frames: Frames | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if self.below is None and self.above is None:
            raise ValueError("hu_threshold needs 'below' and/or 'above'")
        for name in ("below", "above", "fill_hu"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"'{name}' must be a finite number")
        return self


class HuClipAction(_Frozen):
    """Clip HU into ``[min, max]``: a pixel below ``min`` becomes the lowest stored value whose HU
    is at least ``min`` (likewise for ``max``), so the result lies in the interval exactly."""

    type: Literal["hu_clip"]
    #: The lowest HU kept; lower pixels are raised to it.
    min: float | None = None
    #: The highest HU kept; higher pixels are lowered to it.
    max: float | None = None
    #: 1-based frame numbers; all frames when absent.
    frames: Frames | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("hu_clip needs 'min' and/or 'max'")
        if any(v is not None and not math.isfinite(v) for v in (self.min, self.max)):
            raise ValueError("'min' and 'max' must be finite numbers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' must not exceed 'max'")
        return self


class MaskFile(_Frozen):
    """A mask image read at config load (`dcmwatch.pixels.maskfile`), kept as packed bits."""

    path: str
    rows: Annotated[int, Field(ge=1, le=MAX_DIMENSION)]
    columns: Annotated[int, Field(ge=1, le=MAX_DIMENSION)]
    packed: bytes = Field(repr=False)

    @model_validator(mode="after")
    def _packed_fits(self) -> Self:
        if len(self.packed) != (self.rows * self.columns + 7) // 8:
            raise ValueError("the packed mask does not match its rows and columns")
        return self

    def bitmap(self) -> npt.NDArray[np.bool_]:
        return unpack(self.packed, self.rows, self.columns)


class MaskAction(_Frozen):
    """Overwrite regions (burned-in text) or, with ``keep_inside``, everything outside them
    (a field of view).

    Coordinates are ``x`` = column, ``y`` = row, origin at the top-left pixel. ``rects`` are
    ``[x, y, width, height]``, ``circles`` ``[cx, cy, radius]``, ``polygons`` lists of ``[x, y]``
    vertices (a pixel is inside when its index point is, even-odd rule). With ``fractions = true``
    every coordinate is a fraction of the image (x of Columns, y of Rows, a radius of the smaller
    side), rounded outwards for rectangles.

    **Inside the image, or refused.** Every shape must lie within ``0..Columns`` x ``0..Rows``
    (`dcmwatch.pixels.geometry`): a shape that does not fit means the configured geometry does
    not describe the device's image, so the text may be elsewhere. Where the rule's ``match``
    pins ``Rows``/``Columns`` a shape that cannot fit is a configuration error; otherwise the
    image is quarantined (reason ``mask_outside_image``), never clipped and passed.

    The fill: ``fill`` is a stored value (one for all samples, or one per sample), ``fill_hu`` a
    HU value (CT rules only), by default what renders black in the image's own display
    (`dcmwatch.pixels.fill`): -1000 HU (air) for HU images, else black under the image's window.

    ``file`` names a ``.npy`` or ``.png`` mask of exactly the image's size (nonzero / white =
    mask), relative to the config file's folder; it is read and checked once, at load, and its
    pixels join the shapes. **Geometry:** an image whose (0028,0010) *Rows* / (0028,0011)
    *Columns* differ from the file's is quarantined (reason ``mask_geometry``), never passed
    unmasked: a device that sends several geometries gets one rule per geometry with ``Rows``
    and ``Columns`` in its ``match`` (first match wins), and a rule whose ``match`` names a
    geometry its mask file does not have is refused at load.
    """

    type: Literal["mask"]
    #: A black-and-white image of exactly the device's geometry, white where to mask; relative
    #: to the config file's folder, read once at load.
    file: MaskFile | None = None
    #: Coordinates are fractions of the image (0..1) instead of pixels.
    fractions: bool = False
    #: Rectangles `[x, y, width, height]`, x the column and y the row of the top-left pixel.
    rects: tuple[tuple[float, float, float, float], ...] = ()
    #: Circles `[cx, cy, radius]`.
    circles: tuple[tuple[float, float, float], ...] = ()
    #: Polygons, each a list of `[x, y]` vertices (even-odd rule).
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    #: Keep the regions and overwrite everything outside them (a field of view).
    keep_inside: bool = False
    #: The stored value written (one, or one per sample); default: black in the image's display.
    fill: int | tuple[int, ...] | None = None
    #: The fill as a HU value instead (CT rules only).
    fill_hu: float | None = None
    #: 1-based frame numbers; all frames when absent.
    frames: Frames | None = None
    #: Whether applying this mask (to every frame) means the burned-in annotation is gone, so
    #: (0028,0301) *Burned In Annotation* becomes ``NO``. Set false for masks with another purpose.
    clears_burned_in: bool = True

    @field_validator("file", mode="before")
    @classmethod
    def _load_file(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None or isinstance(v, MaskFile):
            return v
        if not isinstance(v, str) or not v.strip():
            raise ValueError("must be the path of a .npy or .png mask file")
        path = Path(v).expanduser()
        if not path.is_absolute():
            context = info.context if isinstance(info.context, dict) else {}
            path = Path(context.get(CONFIG_DIR_CONTEXT) or Path.cwd()) / path
        bitmap = load_mask_file(path)  # MaskFileError is a ValueError naming the file
        rows, columns = bitmap.shape
        return MaskFile(path=str(path), rows=rows, columns=columns, packed=pack(bitmap))

    @field_serializer("file")
    def _file_as_path(self, v: MaskFile | None) -> str | None:
        return None if v is None else v.path

    @field_validator("rects")
    @classmethod
    def _rects_plausible(
        cls, v: tuple[tuple[float, float, float, float], ...], info: ValidationInfo
    ) -> tuple[tuple[float, float, float, float], ...]:
        fractions = bool(info.data.get("fractions", False))
        for i, (x, y, w, h) in enumerate(v):
            if any(not math.isfinite(c) for c in (x, y, w, h)):
                raise ValueError(f"rects[{i}]: coordinates must be finite numbers")
            if fractions:
                if min(x, y) < 0 or w <= 0 or h <= 0 or x + w > 1 or y + h > 1:
                    raise ValueError(
                        f"rects[{i}]: with fractions = true, x, y >= 0, width, height > 0 "
                        "and x + width, y + height <= 1"
                    )
                continue
            if any(not float(c).is_integer() for c in (x, y, w, h)):
                raise ValueError(f"rects[{i}]: pixel coordinates must be whole numbers")
            if min(x, y) < 0 or w < 1 or h < 1:
                raise ValueError(f"rects[{i}]: x, y must be >= 0 and width, height >= 1")
            if x + w > MAX_DIMENSION or y + h > MAX_DIMENSION:
                raise ValueError(
                    f"rects[{i}]: lies beyond {MAX_DIMENSION} pixels, outside any DICOM image"
                )
        return v

    @field_validator("circles")
    @classmethod
    def _circles_plausible(
        cls, v: tuple[tuple[float, float, float], ...], info: ValidationInfo
    ) -> tuple[tuple[float, float, float], ...]:
        limit = 1.0 if info.data.get("fractions", False) else float(MAX_DIMENSION)
        for i, (cx, cy, r) in enumerate(v):
            if any(not math.isfinite(c) for c in (cx, cy, r)):
                raise ValueError(f"circles[{i}]: coordinates must be finite numbers")
            if r <= 0 or not (0 <= cx <= limit and 0 <= cy <= limit):
                raise ValueError(
                    f"circles[{i}]: the centre must lie in 0..{limit:g} and the radius be > 0"
                )
        return v

    @field_validator("polygons")
    @classmethod
    def _polygons_plausible(
        cls, v: tuple[tuple[tuple[float, float], ...], ...], info: ValidationInfo
    ) -> tuple[tuple[tuple[float, float], ...], ...]:
        limit = 1.0 if info.data.get("fractions", False) else float(MAX_DIMENSION)
        for i, poly in enumerate(v):
            if len(poly) < 3:
                raise ValueError(f"polygons[{i}]: needs at least 3 vertices")
            for x, y in poly:
                if not (math.isfinite(x) and math.isfinite(y)) or not (
                    0 <= x <= limit and 0 <= y <= limit
                ):
                    raise ValueError(f"polygons[{i}]: every vertex must lie in 0..{limit:g}")
        return v

    @field_validator("fill")
    @classmethod
    def _fill_sane(cls, v: int | tuple[int, ...] | None) -> int | tuple[int, ...] | None:
        if isinstance(v, tuple) and len(v) not in (1, 3):
            raise ValueError("a per-sample fill needs 1 or 3 values")
        return v

    @field_validator("fill_hu")
    @classmethod
    def _one_fill(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and info.data.get("fill") is not None:
            raise ValueError("give either 'fill' (stored value) or 'fill_hu', not both")
        return v

    @model_validator(mode="after")
    def _has_shape(self) -> Self:
        if not (self.rects or self.circles or self.polygons or self.file):
            raise ValueError(
                "a mask needs at least one of 'rects', 'circles', 'polygons', 'file'"
            )
        if self.fill_hu is not None and not math.isfinite(self.fill_hu):
            raise ValueError("'fill_hu' must be a finite number")
        return self


class WindowAction(_Frozen):
    """A linear VOI window (PS3.3 C.11.2.1.2.1) in modality units (HU for CT).

    ``mode = "tags"`` writes (0028,1050) *Window Center* / (0028,1051) *Window Width* and leaves
    the pixels alone. ``mode = "bake"`` replaces the pixels by the 8-bit windowed image (0..255,
    unsigned), a derived image that no longer carries modality values; it must be the last action.
    """

    type: Literal["window"]
    #: Window centre, in modality units.
    center: float
    #: Window width, in modality units.
    width: Annotated[float, Field(ge=1)]
    #: "tags" writes Window Center/Width only; "bake" writes the 8-bit windowed image.
    mode: Literal["tags", "bake"] = "tags"

    @field_validator("center")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


PixelAction = Annotated[
    HuThresholdAction | HuClipAction | MaskAction | WindowAction,
    Field(discriminator="type"),
]


def uses_hu(action: HuThresholdAction | HuClipAction | MaskAction | WindowAction) -> bool:
    """Whether the action reads or writes Hounsfield units."""
    if isinstance(action, HuThresholdAction | HuClipAction):
        return True
    return isinstance(action, MaskAction) and action.fill_hu is not None


def changes_pixels(action: HuThresholdAction | HuClipAction | MaskAction | WindowAction) -> bool:
    """Whether the action edits pixel values (a ``tags`` window edits attributes only)."""
    return not (isinstance(action, WindowAction) and action.mode == "tags")


class PixelRule(_Frozen):
    """One ``[[rules]]`` table: which images (``match``) get which ``actions``, in order.

    ``match`` maps DICOM keywords to a value or a list of values (any of them), all keys must
    hold. Strings are glob patterns (``fnmatch``, case-insensitive); numbers compare numerically.
    A multi-valued attribute matches when one of its values matches or the backslash-joined
    whole does, so ``ImageType = "LOCALIZER"`` means "ImageType contains LOCALIZER". An attribute
    that is absent or empty never matches. An empty ``match`` matches every image.
    """

    #: Named in the `rules` field of `file.processed` and in error messages.
    name: Annotated[str, Field(min_length=1, max_length=128)]
    #: DICOM keyword = value or list of values; every key must hold. Empty: every image.
    match: dict[str, MatchValue] = Field(default_factory=dict)
    #: What to do to a matching image, in order (`[[rules.actions]]`, by `type`, below).
    actions: tuple[PixelAction, ...] = Field(min_length=1)

    def __hash__(self) -> int:
        # pydantic hashes the field values; a dict is not hashable, its sorted items are.
        return hash((self.name, tuple(sorted(self.match.items())), self.actions))

    @field_validator("match", mode="before")
    @classmethod
    def _lists_to_tuples(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        for keyword, value in v.items():
            values = value if isinstance(value, list | tuple) else [value]
            if any(isinstance(x, bool) for x in values):
                raise ValueError(f"'{keyword}': use strings or numbers, not booleans")
        return {k: tuple(x) if isinstance(x, list) else x for k, x in v.items()}

    @field_validator("match")
    @classmethod
    def _keywords_known(cls, v: dict[str, MatchValue]) -> dict[str, MatchValue]:
        for keyword, value in v.items():
            tag = tag_for_keyword(keyword)
            if tag is None:
                raise ValueError(f"'{keyword}' is not a DICOM keyword")
            if dictionary_VR(tag) in _UNMATCHABLE_VRS:
                raise ValueError(f"'{keyword}' holds bulk data or a sequence, it cannot be matched")
            values = value if isinstance(value, tuple) else (value,)
            if not values:
                raise ValueError(f"'{keyword}': an empty list can never match")
        return v

    @field_validator("actions")
    @classmethod
    def _actions_fit_match(
        cls, v: tuple[PixelAction, ...], info: ValidationInfo
    ) -> tuple[PixelAction, ...]:
        for i, action in enumerate(v):
            if isinstance(action, WindowAction) and action.mode == "bake" and i != len(v) - 1:
                raise ValueError(
                    f"actions[{i}]: a window with mode = 'bake' must be the last action "
                    "(after it the pixels no longer hold modality values)"
                )
        match = info.data.get("match")
        if match is not None:
            _check_geometry(v, match)
        hu_actions = [i for i, a in enumerate(v) if uses_hu(a)]
        if hu_actions and match is not None and not _matches_only_ct(match):
            first = hu_actions[0]
            raise ValueError(
                f"actions[{first}] ({v[first].type}) works in Hounsfield units, which only CT "
                "images carry: the rule's match must include Modality = \"CT\""
            )
        return v


def _check_geometry(actions: tuple[PixelAction, ...], match: dict[str, MatchValue]) -> None:
    """Refuse mask shapes and files that cannot fit the images ``match`` admits.

    Raised as a `ValidationError` whose locations name each offending shape
    (``actions[0].rects[1]``), so the config loader reports ``rules[i].actions[0].rects[1]``.
    """
    rows, columns = _pinned(match, "Rows"), _pinned(match, "Columns")
    errors: list[InitErrorDetails] = []
    for i, action in enumerate(actions):
        if not isinstance(action, MaskAction):
            continue
        file = action.file
        if file is not None:
            for keyword, extent, pinned in (("Rows", file.rows, rows),
                                            ("Columns", file.columns, columns)):
                if pinned is not None and extent not in pinned:
                    errors.append(_error((i, "file"), (
                        f"the mask file is {file.rows} x {file.columns} (rows x columns) but "
                        f"the rule matches only {keyword} = {list(pinned)}")))
                    break
        seen: set[str] = set()
        for r in rows or (None,):
            for c in columns or (None,):
                key = first_outside(action, r, c)
                if key is None or key in seen:
                    continue
                seen.add(key)
                errors.append(_error((i, *_key_loc(key)), _outside_message(r, c)))
    if errors:
        raise ValidationError.from_exception_data("PixelRule", errors)


def _outside_message(rows: int | None, columns: int | None) -> str:
    spans = "(an image spans 0..Columns x 0..Rows)"
    if rows is None and columns is None:
        return f"reaches below 0, outside every image {spans}"
    known = " x ".join(f"{name} {value}" for name, value in (("Columns", columns), ("Rows", rows))
                       if value is not None)
    return (f"lies partly or wholly outside an image of {known}, which the rule's match admits "
            f"{spans}: a mask that does not fit means its geometry does not describe the image")


def _pinned(match: dict[str, MatchValue], keyword: str) -> tuple[int, ...] | None:
    """The sizes a ``Rows``/``Columns`` match admits, or None when it is absent or a pattern."""
    value = match.get(keyword)
    if value is None:
        return None
    sizes: list[int] = []
    for x in value if isinstance(value, tuple) else (value,):
        if isinstance(x, str) and not x.strip().isdigit():
            return None  # a glob or something else: any size may match
        number = float(x)
        if number.is_integer():  # 512.5 never matches a US value
            sizes.append(int(number))
    return tuple(sizes)


def _key_loc(key: str) -> tuple[str, int]:
    """``"rects[1]"`` as a pydantic location ``("rects", 1)``."""
    name, index = key.rstrip("]").split("[")
    return name, int(index)


def _error(loc: tuple[int | str, ...], message: str) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("mask_outside_image", message),
        loc=loc,
        input=None,
    )


def _matches_only_ct(match: dict[str, MatchValue]) -> bool:
    value = match.get("Modality")
    if value is None:
        return False
    values = value if isinstance(value, tuple) else (value,)
    return all(
        isinstance(x, str) and x.strip().upper() == "CT" and not (_GLOB_CHARS & set(x))
        for x in values
    )


class PixelSettings(_Frozen):
    """The ``[pixels]`` section: policies that hold whatever rule matches."""

    #: What to do with an image whose (0028,0301) *Burned In Annotation* is ``YES``:
    #: ``reject`` quarantines it, ``require-mask`` quarantines it unless a matching rule has a
    #: mask action, ``pass`` lets it through.
    burned_in_annotation: Literal["reject", "require-mask", "pass"] = "pass"
    #: Apply the actions of every matching rule (in rule order) instead of the first one only.
    all_matching_rules: bool = False
    #: Refuse to decode when Rows*Columns*Samples*Frames*BitsAllocated/8 exceeds this.
    max_pixel_bytes: Annotated[int, Field(ge=1)] = 2 * 1024**3
    #: Whole-slide microscopy images that show (or may show) the slide's paper label — LABEL
    #: and OVERVIEW images, and any whose header cannot rule it out (`dcmwatch.pixels.slide`):
    #: ``quarantine`` (the default) keeps the original in the quarantine for a person to look
    #: at, reason ``slide_label``; ``drop`` withholds it by policy (reason
    #: ``slide_label_withheld``: kept with its sidecar, never sent, nothing to fix); ``keep``
    #: passes it like any image, label and all. Quarantine is the default because a label is
    #: handwriting, barcodes and names that no header rule or mask removes, and because a file
    #: whose claims were wrong (a tissue image taken for a label) should reach a person who can
    #: requeue it, not vanish into a policy folder nobody reads.
    slide_label: Literal["quarantine", "drop", "keep"] = "quarantine"
