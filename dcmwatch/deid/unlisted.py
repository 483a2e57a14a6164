"""What happens to a standard attribute that PS3.15 Table E.1-1 does not name (``[deid] unlisted``).

The profile keeps such attributes, yet hundreds of them can carry free text, names, dates or URLs
((0010,0033) *Patient's Birth Date in Alternative Calendar*, (0008,1190) *Retrieve URL*,
(0040,A160) *Text Value* …). The policy is decided per tag from pydicom's data dictionary,
never from the VR a file claims, and compiled once into a dict, so the walk pays one lookup:

* ``keep``: the profile as written; nothing here applies.
* ``remove-text``: an attribute whose dictionary VR can carry text, a name, a date, a time or a
  URL (:data:`TEXT_VRS`), or that holds bytes of unknown content (OB/OW/UN outside
  :data:`BULK_DATA`), or that the dictionary does not know at all, is removed. Numbers, codes
  (CS), UIDs (remapped as before) and known bulk data (pixels, LUTs, waveforms, meshes) stay.
* ``remove``: every such attribute goes except :data:`ESSENTIAL` (what keeps the image
  decodable and its identity) — numbers, codes and UIDs included.

In both, :data:`TECHNICAL` (and ``[deid] keep_unlisted``) stay, and :data:`PLACEHOLDER`
attributes get the profile's dummy instead of going, since an IOD requires them. Sequences are
never removed as such: the profile applies inside them at any depth. Private attributes and
the curve/overlay groups (50xx, 60xx) keep their own rules.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Final, Literal

from pydicom._dicom_dict import DicomDictionary
from pydicom.datadict import get_entry

__all__ = [
    "BULK_DATA",
    "ESSENTIAL",
    "PLACEHOLDER",
    "TECHNICAL",
    "TEXT_VRS",
    "Kind",
    "UnlistedMode",
    "classify",
    "decide",
]

UnlistedMode = Literal["keep", "remove-text", "remove"]

#: Dictionary VRs whose values can be text, a person's name, a date, a time or a URL.
TEXT_VRS: Final = frozenset(
    {"AE", "DA", "DT", "TM", "PN", "LO", "LT", "SH", "ST", "UC", "UR", "UT"}
)
_OPAQUE_VRS: Final = frozenset({"OB", "OW", "UN"})

#: Technical descriptors research needs, kept by ``remove-text`` and ``remove`` alike. Each is
#: written by the device or a coding scheme, not typed about a patient.
TECHNICAL: Final[dict[str, str]] = {
    "Manufacturer": "the vendor: scanner harmonisation; Type 2 in General Equipment",
    "ManufacturerModelName": "the scanner model: harmonisation, protocol comparison",
    "SoftwareVersions": "reconstruction and firmware versions change the numbers",
    "ConvolutionKernel": "CT reconstruction kernel: texture and noise depend on it",
    "SequenceName": "MR pulse sequence as the scanner names it",
    "PulseSequenceName": "MR pulse sequence of enhanced objects",
    "ReceiveCoilName": "MR receive coil: signal profile",
    "TransmitCoilName": "MR transmit coil",
    "FilterType": "CT/X-ray beam filter",
    "RescaleType": "units of the rescaled pixel values (HU …)",
    "PositionReferenceIndicator": "anatomical reference of the frame of reference; Type 2",
    "ReconstructionMethod": "PET/NM reconstruction algorithm",
    "AttenuationCorrectionMethod": "PET/NM attenuation correction",
    "ScatterCorrectionMethod": "PET/NM scatter correction",
    "Radiopharmaceutical": "PET/NM tracer, needed to read the values",
    "ChannelLabel": "waveform channel (lead) name",
    "PatientSpeciesDescription": "an animal's species; Type 1C for a non-human patient",
    "PatientBreedDescription": "an animal's breed; Type 2C for a non-human patient",
    "StrainDescription": "a laboratory animal's strain: the science depends on it",
    "CodeValue": "coded concept of a code item (PS3.3 Table 8.8-1), Type 1 in it",
    "CodingSchemeDesignator": "coding scheme of a code item, Type 1 in it",
    "CodingSchemeVersion": "coding scheme version of a code item",
    "CodeMeaning": "the coding scheme's meaning of a code, Type 1 in a code item",
    "LongCodeValue": "a code value longer than 16 characters",
    "URNCodeValue": "a code value that is a URN (a coding scheme's, not a site's, URL)",
    "MappingResourceName": "name of the coding resource (DCMR …)",
}

#: Attributes ``remove`` keeps: the image decodable and displayable as acquired (Image Pixel,
#: Multi-frame, Modality and VOI LUT, Image Plane), the instance's class and character set, the
#: Type 1/2 attributes that keep CT and MR images valid. Other IODs (RT, SR, waveforms) lose
#: required content under ``remove``. The output's de-identification marks are written after
#: the walk, whatever it removed.
ESSENTIAL: Final = frozenset(
    {
        # SOP Common, General Series/Image: what the object is and how to decode its text
        "SOPClassUID", "SpecificCharacterSet", "Modality", "ImageType", "InstanceNumber",
        "SeriesNumber", "ReferencedSOPClassUID", "PatientOrientation", "BurnedInAnnotation",
        "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
        # Image Pixel and Multi-frame
        "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "Rows",
        "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
        "PixelAspectRatio", "SmallestImagePixelValue", "LargestImagePixelValue",
        "NumberOfFrames", "FrameIncrementPointer", "PixelPaddingValue", "PixelPaddingRangeLimit",
        "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
        "BluePaletteColorLookupTableDescriptor", "AlphaPaletteColorLookupTableDescriptor",
        "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
        "BluePaletteColorLookupTableData", "AlphaPaletteColorLookupTableData",
        "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
        "SegmentedBluePaletteColorLookupTableData", "SegmentedAlphaPaletteColorLookupTableData",
        "PaletteColorLookupTableUID", "ICCProfile", "ColorSpace",
        "PixelData", "FloatPixelData", "DoubleFloatPixelData", "ExtendedOffsetTable",
        "ExtendedOffsetTableLengths",
        # Modality and VOI LUT, Presentation LUT
        "RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth", "VOILUTFunction",
        "LUTDescriptor", "LUTData", "PresentationLUTShape",
        # Image Plane: where the pixels are
        "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
        "SliceLocation", "SpacingBetweenSlices",
        # Type 1/2 of General Series and the CT and MR Image modules: CT and MR stay valid
        "Laterality", "BodyPartExamined", "PatientPosition", "AcquisitionNumber", "KVP",
        "ScanningSequence",
        "SequenceVariant", "ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength",
        "RepetitionTime",
    }
)  # fmt: skip

#: Bulk data of known, numeric or bitmap content: kept by ``remove-text`` (their own rules, the
#: pixel step and the OCR guard, deal with pixels). Every other OB/OW/UN attribute holds bytes
#: nobody can vouch for (record keys, encrypted content, HPGL documents, signatures) and goes.
BULK_DATA: Final = frozenset(
    {
        "PixelData", "FloatPixelData", "DoubleFloatPixelData", "ExtendedOffsetTable",
        "ExtendedOffsetTableLengths", "VariablePixelData", "CoefficientsSDVN", "CoefficientsSDHN",
        "CoefficientsSDDN", "VariableCoefficientsSDVN", "VariableCoefficientsSDHN",
        "VariableCoefficientsSDDN", "FileMetaInformationVersion", "RTVMetaInformationVersion",
        "InteroperabilityVersion", "ICCProfile", "GrayLookupTableData", "LUTData",
        "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData",
        "BluePaletteColorLookupTableData", "AlphaPaletteColorLookupTableData",
        "LargeRedPaletteColorLookupTableData", "LargeGreenPaletteColorLookupTableData",
        "LargeBluePaletteColorLookupTableData", "SegmentedRedPaletteColorLookupTableData",
        "SegmentedGreenPaletteColorLookupTableData", "SegmentedBluePaletteColorLookupTableData",
        "SegmentedAlphaPaletteColorLookupTableData", "BlendingLookupTableData",
        "WeightingLookupTableData", "CoordinateSystemAxisValues", "DarkCurrentCounts",
        "AirCounts", "BadPixelImage", "FillPattern", "ThreatROIBitmap",
        "TrianglePointIndexList", "EdgePointIndexList", "VertexPointIndexList",
        "PrimitivePointIndexList", "RecommendedDisplayCIELabValueList", "SelectorOWValue",
        "ChannelMinimumValue", "ChannelMaximumValue", "WaveformPaddingValue", "WaveformData",
    }
)  # fmt: skip

#: Attributes an IOD requires that are neither technical nor safe to keep: written as the
#: profile's dummy (D) instead of removed, so the output stays valid without the original value.
PLACEHOLDER: Final = frozenset(
    {
        "UnformattedTextValue",  # Type 1C in Waveform Annotation and Text Objects, free text
    }
)


class Kind(enum.Enum):
    """What an unlisted attribute is, as far as this policy cares."""

    SEQUENCE = "sequence"  # never removed as such; the profile applies inside
    KEPT = "kept"  # technical: kept by every mode
    TEXT = "text"  # text, name, date, time or URL
    OPAQUE = "opaque"  # bytes of unknown content, or a tag the dictionary does not know
    VALUE = "value"  # numbers, codes, UIDs, known bulk data
    PLACEHOLDER = "placeholder"  # text an IOD requires: dummied, not removed


_TECHNICAL: Final = frozenset(TECHNICAL)


@functools.lru_cache(maxsize=8192)  # bounded: a file may carry any number of unknown tags
def classify(tag: int) -> Kind:  # noqa: PLR0911 (one return per kind, in order of precedence)
    """The kind of a public attribute by its tag alone (repeating entries included)."""
    try:
        vr_text, _vm, _name, _retired, keyword = get_entry(tag)
    except KeyError:
        return Kind.OPAQUE  # not in the dictionary: nothing can be said of its content
    vr = vr_text[:2]
    if vr == "SQ":
        return Kind.SEQUENCE
    if keyword in _TECHNICAL:
        return Kind.KEPT
    if keyword in PLACEHOLDER:
        return Kind.PLACEHOLDER
    if vr in TEXT_VRS:
        return Kind.TEXT
    if vr in _OPAQUE_VRS and keyword not in BULK_DATA:
        return Kind.OPAQUE
    return Kind.VALUE


@dataclass(frozen=True, slots=True)
class Decision:
    """Which unlisted attributes ``mode`` removes (or dummies), by tag."""

    removed: frozenset[int]
    dummied: frozenset[int]


def _removes(kind: Kind, mode: UnlistedMode, keyword: str) -> bool:
    if kind in (Kind.SEQUENCE, Kind.KEPT, Kind.PLACEHOLDER):
        return False
    if mode == "remove":
        return keyword not in ESSENTIAL
    return kind in (Kind.TEXT, Kind.OPAQUE)


def decide(
    mode: UnlistedMode, listed: Collection[int], keep: Iterable[int] = ()
) -> Decision:
    """The dictionary's tags that ``mode`` removes or dummies, outside ``listed`` and ``keep``."""
    if mode == "keep":
        return Decision(frozenset(), frozenset())
    kept = frozenset(keep)
    removed: set[int] = set()
    dummied: set[int] = set()
    for tag, entry in DicomDictionary.items():
        if tag in listed or tag in kept or not _public(tag):
            continue
        kind = classify(tag)
        if kind is Kind.PLACEHOLDER:
            dummied.add(tag)
        elif _removes(kind, mode, entry[4]):
            removed.add(tag)
    return Decision(frozenset(removed), frozenset(dummied))


def unknown_removed(tag: int, mode: UnlistedMode, keep: Collection[int]) -> bool:
    """For a tag outside the dictionary's exact entries (repeating entries, unknown tags)."""
    if mode == "keep" or tag in keep or not _public(tag):
        return False
    kind = classify(tag)
    keyword = _keyword(tag)
    return _removes(kind, mode, keyword)


def _keyword(tag: int) -> str:
    try:
        return str(get_entry(tag)[4])
    except KeyError:
        return ""


def _public(tag: int) -> bool:
    """Neither private, nor a group length, nor in a curve (5000-501E) or overlay (6000-601E)
    group: those have their own rules. An even 50xx/60xx group beyond 1E is no repeating group
    and is judged like any other public attribute."""
    group = tag >> 16
    if group & 1 or not tag & 0xFFFF:
        return False
    return (group >> 8) not in (0x50, 0x60) or (group & 0xFF) > 0x1E
