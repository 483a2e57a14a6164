"""The per-file core: input bytes + config -> output bytes, output path and what was done.

Pure and picklable: `process_bytes(data, config)` touches no file system, clock, environment or
logger, so it runs the same in a worker process, in batch mode and on a cluster engine, and a
re-run after a crash yields the same bytes at the same path (which is what makes recovery
exactly-once). The steps are built once per configuration and cached per process. One clock:
the OCR guard's per-image time limit, which decides only whether a slow image is quarantined,
never what bytes come out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, TypeVar

from pydicom.dataset import Dataset

from dcmwatch import dicomfile, inplace
from dcmwatch.config import Config
from dcmwatch.deid import make_deidentifier
from dcmwatch.deid.pseudonyms import Keyed
from dcmwatch.deid.reid import ReidPair, reid_pairs, reid_snapshot
from dcmwatch.errors import FATAL, DcmwatchError, TransformError
from dcmwatch.ocr import Finding, OcrStep, make_ocr_step
from dcmwatch.ocr import collect as collect_identifiers
from dcmwatch.pixels import PixelStep, make_pixel_step
from dcmwatch.pixels.slide import check_slide_label
from dcmwatch.pixels.streams import StreamReport, clean_pixel_data

Step = Callable[[Dataset], Dataset]
_T = TypeVar("_T")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_FIELD = re.compile(r"\{([A-Za-z]+)\}")
_MAX_COMPONENT = 64
#: Series and instance numbers in a path: an Integer String can hold a birth date or an ID,
#: real numbers of either are short.
_SHORT_NUMBER = re.compile(r"[+-]?[0-9]{1,6}")
#: (0008,0060) Modality's Defined Terms (PS3.3 C.7.3.1.1.1), retired ones included: the only
#: values a layout puts in a path.
MODALITIES: Final = frozenset({
    "AR", "ASMT", "AU", "BDUS", "BI", "BMD", "CFM", "CR", "CT", "CTPROTOCOL", "DG", "DMS", "DOC",
    "DX", "ECG", "EEG", "EMG", "EOG", "EPS", "ES", "FID", "GM", "HC", "HD", "IO", "IOL", "IVOCT",
    "IVUS", "KER", "KO", "LEN", "LS", "M3D", "MG", "MR", "NM", "OAM", "OCT", "OP", "OPM", "OPT",
    "OPTBSV", "OPTENF", "OPV", "OSS", "OT", "PA", "PLAN", "POS", "PR", "PT", "PX", "REG", "RESP",
    "RF", "RG", "RTDOSE", "RTIMAGE", "RTINTENT", "RTPLAN", "RTRAD", "RTRECORD", "RTSEGANN",
    "RTSTRUCT", "RWV", "SEG", "SM", "SMR", "SR", "SRF", "STAIN", "TEXTUREMAP", "TG", "US", "VA",
    "XA", "XAPROTOCOL", "XC", "AS", "CD", "CF", "CP", "CS", "DD", "DF", "DM", "DS", "EC", "FA",
    "FS", "LP", "MA", "MS", "OPR", "ST", "VF",
})


@dataclass(frozen=True, slots=True)
class Processed:
    """A file that came out: where it goes (relative to the outbox) and its bytes."""

    relpath: str
    #: The output file: bytes, or the input's own bytearray edited in place (a large file).
    data: bytes | bytearray
    #: Digest of the input: the journal's identity of the file, and the output name's fallback.
    sha256_in: str
    #: Names of the pixel rules applied (empty when none matched).
    rules: tuple[str, ...] = ()
    #: (kind, pseudonym, original) pairs for the re-identification map; only with
    #: ``[deid] reid_map``. PHI: never in the repr.
    reid: tuple[ReidPair, ...] = field(default=(), repr=False)
    #: What the burned-in text guard found (policies redact and flag; quarantine raises).
    findings: tuple[Finding, ...] = ()
    #: What was removed from encapsulated Pixel Data (counts and sizes); None when native.
    stream: StreamReport | None = None


@dataclass(frozen=True, slots=True)
class Steps:
    deidentify: Step
    pixels: PixelStep
    ocr: OcrStep


def build_steps(config: Config) -> Steps:
    """The steps for `config`, built once per process. The last config is recognised by
    identity first: hashing a frozen pydantic model walks all of it (~15 nested hashes, tens of
    microseconds) and a worker asks for every file."""
    global _last_steps  # noqa: PLW0603 - a per-process cache, like the lru_cache below it
    last = _last_steps
    if last is not None and last[0] is config:
        return last[1]
    steps = _build_steps(config)
    _last_steps = (config, steps)
    return steps


#: The config and steps of the last call: a worker's config never changes.
_last_steps: tuple[Config, Steps] | None = None


@lru_cache(maxsize=4)
def _build_steps(config: Config) -> Steps:
    key = config.key()
    deidentify = make_deidentifier(config.deid, key)
    derive = _uid_deriver(key)
    pixels = make_pixel_step(config.rules, config.pixels, derive)
    ocr = make_ocr_step(config.ocr, config.pixels, derive)
    return Steps(deidentify=deidentify, pixels=pixels, ocr=ocr)


def _uid_deriver(key: bytes) -> Callable[[str], str]:
    """A new UID for an instance whose pixels changed: the de-identifier's keyed UID map applied
    to ``pixels:<current UID>``. Same format as every remapped UID; the prefix is no UID, so the
    result cannot equal the map of any real UID."""
    keyed = Keyed(key)

    def derive(uid: str) -> str:
        return keyed.uid("pixels:" + uid)

    return derive


def process_bytes(data: bytes | bytearray, config: Config) -> Processed:
    """Run the whole per-file step. Raises `InputError` subclasses for files to quarantine.

    A bytearray (a large file, see `store.read_input`) is the caller's to give away: a native
    image in it is edited in place and the buffer returned as the output (`dcmwatch.inplace`),
    so that peak memory stays near the file's size.
    """
    steps = build_steps(config)
    digest = hashlib.sha256(data).hexdigest()  # before any edit in place
    limits = config.limits
    span = dicomfile.native_pixel_span(data) if isinstance(data, bytearray) else None
    view: memoryview | None = None
    if isinstance(data, bytearray) and span is not None:
        ds, view = inplace.decode_around(data, span, max_inflated=limits.max_inflated_bytes)
    else:
        ds = dicomfile.decode(data, max_inflated=limits.max_inflated_bytes)
    dicomfile.check_pixels(ds, max_pixel_bytes=limits.max_pixel_bytes,
                           verify_compressed=limits.verify_compressed)
    # On the original header, before the profile removes what tells a label from tissue.
    check_slide_label(ds, config.pixels.slide_label)
    before = reid_snapshot(ds) if config.deid.reid_map else None
    # The guard compares what it reads with the original header: collect before it is gone.
    identifiers = collect_identifiers(ds) if config.ocr.enabled else None
    ds = run_step(steps.deidentify, ds)
    ds, applied = run_step(steps.pixels, ds)
    findings: tuple[Finding, ...] = ()
    if identifiers is not None:
        ds, findings = steps.ocr(ds, identifiers)
    # Last, so that frames a rule or the guard re-encoded are cleaned like untouched ones.
    stream = clean_stream(ds)
    relpath = output_relpath(ds, config.output.layout, fallback=digest)
    reid = reid_pairs(before, ds) if before is not None else ()
    try:
        if isinstance(data, bytearray) and span is not None and view is not None:
            out: bytes | bytearray = inplace.write_around(data, span, ds, view)
        else:
            out = dicomfile.encode(ds)
    except DcmwatchError:
        raise
    except Exception as exc:  # pydicom's writer messages may quote values
        name = type(exc).__name__
        raise TransformError(f"the de-identified dataset cannot be written ({name})") from None
    return Processed(
        relpath=relpath, data=out, sha256_in=digest, rules=applied.rules, reid=reid,
        findings=findings, stream=stream,
    )


def clean_stream(ds: Dataset) -> StreamReport | None:
    """`clean_pixel_data` behind the same error boundary as the steps."""
    try:
        return clean_pixel_data(ds)
    except DcmwatchError:
        raise
    except BaseException as exc:
        if isinstance(exc, FATAL):
            raise
        name = type(exc).__name__
        raise TransformError(f"the compressed pixel data cannot be cleaned ({name})") from None


def run_step(step: Callable[[Dataset], _T], ds: Dataset) -> _T:
    """``step(ds)`` behind the steps' error boundary: our errors pass, anything else becomes a
    `TransformError` naming only the exception's class."""
    try:
        return step(ds)
    except DcmwatchError:
        raise
    except BaseException as exc:  # a bug, an unforeseen dataset, a decoder's panic
        if isinstance(exc, FATAL):
            raise
        raise TransformError(f"a processing step failed ({type(exc).__name__})") from exc


def output_relpath(ds: Dataset, layout: str, *, fallback: str) -> str:
    """Fill the layout with (de-identified) values, each made into one safe path component.

    The UIDs and the Patient ID are ours after de-identification. Modality and the numbers
    are the file's own, kept by the profile, and a file can put a name or a date in them: a
    Modality outside the standard's terms, or a number longer than any real series or instance
    number, becomes the fallback instead, so no header value the profile kept can name a folder.
    """

    def value(match: re.Match[str]) -> str:
        field = match.group(1)
        raw = ds.get(field)
        if raw is not None and not _plausible(field, raw):
            raw = None
        return _component(raw, fallback)

    return _FIELD.sub(value, layout)


def _plausible(field: str, raw: Any) -> bool:
    text = str(raw).strip()
    if field == "Modality":
        return text in MODALITIES
    if field in ("SeriesNumber", "InstanceNumber"):
        return _SHORT_NUMBER.fullmatch(text) is not None
    return True


def _component(raw: Any, fallback: str) -> str:
    if raw is None:
        text = ""
    elif isinstance(raw, (list, tuple)) or type(raw).__name__ == "MultiValue":
        text = "_".join(str(v) for v in raw)
    else:
        text = str(raw)
    text = _UNSAFE.sub("_", text.strip()).lstrip(".")[:_MAX_COMPONENT]
    return text or f"unknown-{fallback[:16]}"
