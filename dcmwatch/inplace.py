"""A large native image processed inside its own input buffer: one copy of the pixels, not four.

Read the ordinary way, a large multi-frame is held four times over: the input bytes, pydicom's
copy of the Pixel Data value, the writable copy a mask edits, and the joined output. Two
workers on tomosynthesis files would exhaust a gateway's memory. Here the input is a
bytearray (`store.read_input` reads large files so) and:

* the header is parsed from a small copy of the file with the Pixel Data value cut out (its
  length field set to 0), then the element's value becomes a writable memoryview on the
  pixels where they lie in the input buffer;
* the pixel step's numpy view on that memoryview is writable, so masks and thresholds edit the
  input buffer in place (`codec.write_back` sees that and leaves the value alone);
* the writer returns its pieces unjoined with the memoryview among them, and the new header
  and whatever follows the pixels are written into the buffer around them: the buffer becomes
  the output. Only the header moves (a memmove within the buffer when its length changed).

The caller gives the bytearray away: it holds the output afterwards. Whenever the pixels were
replaced rather than edited (a bake to 8 bits, a decode-path edit, big endian), or a view on
the buffer is still alive at the end, the output is joined as for any file: correct, only not
bounded. A failure part-way leaves the buffer edited, which is harmless: a file that fails is
quarantined from its copy on disk, never from memory.
"""

from __future__ import annotations

import gc

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from dcmwatch import dicomfile
from dcmwatch.errors import NotDicomError

__all__ = ["decode_around", "write_around"]

_PIXEL_DATA = Tag(0x7FE00010)
_LENGTH_FIELD = 4  # the value length is the last 4 bytes of both element header forms


def decode_around(
    data: bytearray, span: tuple[int, int], *, max_inflated: int
) -> tuple[Dataset, memoryview]:
    """The dataset of ``data`` whose Pixel Data value is a writable view on ``data[span]``.

    ``span`` is `dicomfile.native_pixel_span` of ``data``. The header is parsed (and checked,
    as `dicomfile.decode` checks every file) from a copy that leaves the pixels out.
    """
    start, end = span
    whole = memoryview(data)
    try:
        thin = b"".join((whole[: start - _LENGTH_FIELD], b"\0" * _LENGTH_FIELD, whole[end:]))
    finally:
        whole.release()
    ds = dicomfile.decode(thin, max_inflated=max_inflated)
    raw = ds._dict.get(_PIXEL_DATA)
    if not isinstance(raw, RawDataElement) or raw.length != 0:  # pragma: no cover - by span
        raise NotDicomError("the pixel data is not where the file's structure puts it")
    view = memoryview(data)[start:end]
    # pydicom types a raw value as bytes; every reader of it here takes any buffer.
    ds._dict[_PIXEL_DATA] = raw._replace(value=view, length=end - start)  # type: ignore[arg-type]
    return ds, view


def write_around(
    data: bytearray, span: tuple[int, int], ds: Dataset, view: memoryview
) -> bytes | bytearray:
    """The output file for ``ds``, made of ``data`` itself when its pixels are still ``view``.

    Consumes ``ds`` (its Pixel Data is taken out) and ``data`` (which becomes the output).
    """
    parts = dicomfile.encode_parts(ds)
    at = next((i for i, part in enumerate(parts) if part is view), None)
    if at is None:  # the pixels were replaced, not edited: a file like any other
        return b"".join(parts)
    head = b"".join(parts[:at])
    tail = b"".join(parts[at + 1 :])
    parts.clear()
    del ds[_PIXEL_DATA]
    view.release()
    start, end = span
    for attempt in range(2):
        try:
            # Tail first: the head's memmove then moves as little as possible.
            data[end:] = tail
            data[:start] = head
        except BufferError:  # a numpy view on the buffer is still alive: it cannot move
            if attempt == 0:
                gc.collect()  # one that only a reference cycle keeps
        else:
            return data
    whole = memoryview(data)
    try:
        return b"".join((head, whole[start:end], tail))
    finally:
        whole.release()
