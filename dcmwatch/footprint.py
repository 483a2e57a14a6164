"""How much memory processing one file may need at its peak: for admission by memory budget.

The engine admits files against a budget (issue 21, point 2) before it reads them: it knows
each file's size and can read its first bytes. What the core then holds depends on the path
the file will take, which the transfer syntax and the size decide:

* **in place** (native Little Endian, at least `store.IN_PLACE_BYTES`): the file once, edited
  where it lies and written back from the same buffer (`dcmwatch.inplace`); the header is
  copied a few times: ``size + HEADER_ALLOWANCE``;
* **held as bytes** (smaller files, big endian, deflate): the input, pydicom's copy of the
  pixel data, the copy a rule edits and the joined output: ``COPIES * size``;
* **compressed** (encapsulated): the input, pydicom's copy and the output (three), plus, when a
  rule decodes it, the decoded frames (the array, its edited copy and the re-encoder's check
  decode): ``3 * size + DECODED_COPIES * declared pixel bytes``. The declared size comes from
  the header when the first bytes hold it, else from `DECODED_PER_BYTE`.

The numbers count copies in the code as it is; the interpreter and libraries a worker holds
before any file are not included. An estimate errs high: a file that needs less
than its estimate only waits longer for admission, one that needs more can be killed.
"""

from __future__ import annotations

from io import BytesIO
from typing import Final

import pydicom
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dcmwatch import dicomfile
from dcmwatch.store import IN_PLACE_BYTES

__all__ = ["HEADER_ALLOWANCE", "peak_bytes"]

#: Header copies of an in-place file (the parse copy, the writer's pieces, the new header).
HEADER_ALLOWANCE: Final = 16 << 20
#: Full copies of a file held as bytes.
COPIES: Final = 5
#: Copies of the decoded frames of a compressed image a rule edits.
DECODED_COPIES: Final = 3
#: Decoded bytes per compressed byte assumed when the header cannot be read from the first
#: bytes: lossless medical images compress about 2-3 : 1, lossy ones far more.
DECODED_PER_BYTE: Final = 4
_NATIVE_LE: Final = frozenset({ExplicitVRLittleEndian, ImplicitVRLittleEndian})


def peak_bytes(head: bytes, size: int) -> int:
    """The most memory processing a file of ``size`` bytes, whose first bytes are ``head``
    (64 KiB is plenty for any ordinary header), should need above the worker's own."""
    syntax = dicomfile.meta_syntax(head)
    uid = UID(syntax) if syntax else None
    if uid in _NATIVE_LE and size >= IN_PLACE_BYTES:
        return size + HEADER_ALLOWANCE
    if uid is None or not uid.is_transfer_syntax or not uid.is_compressed:
        return COPIES * size
    decoded = _decoded_bytes(head)
    if decoded is None:
        decoded = DECODED_PER_BYTE * size
    return 3 * size + DECODED_COPIES * decoded


def _decoded_bytes(head: bytes) -> int | None:
    """Rows x Columns x Frames x Samples x Bits Allocated / 8, when ``head`` holds them: the
    decoded array a rule edits, not the native size a file stores (the decoder gives every
    pixel all its samples, also for YBR_FULL_422, whose native form stores fewer)."""
    try:
        ds = pydicom.dcmread(BytesIO(head), stop_before_pixels=True, force=True)
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.BitsAllocated)
    except Exception:  # a header cut short by `head`, or garbled: the fallback ratio decides
        return None
    if min(rows, columns, frames, samples, bits) <= 0:
        return None
    return rows * columns * frames * samples * ((bits + 7) // 8)
