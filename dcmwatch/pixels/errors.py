"""Why a pixel rule could not be applied: subclasses of `TransformError`, so the job quarantines.

Messages are ours and PHI-free: they name attributes and conditions, never element values nor a
library's exception message (pydicom's may quote values); a library exception's *class* name may
appear, for engineers.
"""

from __future__ import annotations

from dcmwatch.errors import TransformError, WithheldError

__all__ = [
    "BurnedInAnnotationError",
    "MaskGeometryError",
    "MaskOutsideImageError",
    "PixelDataTooLargeError",
    "PixelDecodeError",
    "PixelStreamError",
    "PixelStreamUnsupportedError",
    "SlideLabelError",
    "SlideLabelWithheld",
    "UnsupportedPixelsError",
]


class BurnedInAnnotationError(TransformError):
    """(0028,0301) *Burned In Annotation* is YES and the ``burned_in_annotation`` policy refuses
    the image: a person must look at it (or a mask rule must be configured for its source)."""

    reason = "burned_in_annotation"


class SlideLabelError(TransformError):
    """A whole-slide microscopy image that shows (or may show) the slide's label, under
    ``[pixels] slide_label = "quarantine"``: a person decides (see `dcmwatch.pixels.slide`)."""

    reason = "slide_label"


class SlideLabelWithheld(WithheldError):
    """The same image under ``slide_label = "drop"``: withheld by policy, kept, not passed."""

    reason = "slide_label_withheld"


class MaskGeometryError(TransformError):
    """A rule with a mask file matched an image of another size: the mask cannot be placed, and
    passing the image unmasked could leak burned-in text."""

    reason = "mask_geometry"


class MaskOutsideImageError(TransformError):
    """A mask shape lies wholly or partly outside the image it matched: the configured geometry
    does not describe this image, so its burned-in text may be elsewhere. Never clipped and
    passed; the rule needs a ``match`` on Rows/Columns, or shapes for this geometry."""

    reason = "mask_outside_image"


class PixelDataTooLargeError(TransformError):
    """The pixel data the header declares exceeds ``[limits] max_pixel_bytes``; nothing decoded."""

    reason = "pixel_data_too_large"


class PixelDecodeError(TransformError):
    """The pixel data is inconsistent with its header or no installed decoder can read it."""

    reason = "pixel_decode"


class UnsupportedPixelsError(TransformError):
    """A rule matched an image whose pixel format it cannot be applied to exactly (for example a
    HU action on an image without a modality LUT, or float pixel data)."""

    reason = "pixel_unsupported"


class PixelStreamError(TransformError):
    """A frame of encapsulated Pixel Data is not a stream dcmwatch can walk for the declared
    transfer syntax (unknown bytes, an unknown marker, lengths that run past the data). Such a
    stream could carry metadata nobody looked at, so it never passes."""

    reason = "pixel_stream_unrecognised"


class PixelStreamUnsupportedError(PixelStreamError):
    """Encapsulated Pixel Data in a syntax dcmwatch does not walk at all (MPEG-2, MPEG-4, HEVC
    video; JPEG XL; private syntaxes): user data and SEI messages could carry text."""

    reason = "pixel_stream_unsupported"
