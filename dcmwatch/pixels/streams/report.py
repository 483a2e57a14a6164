"""What the stream walkers removed: counts and byte totals by kind, never content."""

from __future__ import annotations

from dataclasses import dataclass


class Tally:
    """Mutable counters the walkers add to while they clean one Pixel Data value."""

    __slots__ = ("bytes", "counts")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.bytes: dict[str, int] = {}

    def drop(self, kind: str, nbytes: int) -> None:
        """Record one removed (or shortened) piece of kind `kind`, `nbytes` long."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.bytes[kind] = self.bytes.get(kind, 0) + nbytes


@dataclass(frozen=True, slots=True)
class StreamReport:
    """The outcome of cleaning one encapsulated Pixel Data value, for the log.

    ``removed`` holds (kind, count, bytes) for every kind of piece taken out: a marker segment
    by its name (``APP1``, ``COM``, ``J2K_COM``), ``JFIF`` / ``Adobe`` for a kept segment cut
    down to what decoding needs, ``trailing`` for bytes after a stream's end, ``fragments`` for
    fragments after the last frame, ``JP2_box`` for a JP2 wrapper's metadata boxes, and
    ``JP2_ftyp`` / ``JP2_colr`` for its file type and colour boxes rebuilt (an ICC profile
    replaced by an enumerated space), ``JP2_ihdr``, ``JP2_bpcc``, ``JP2_cdef``, ``JP2_pclr`` and
    ``JP2_cmap`` for header boxes cut to their defined fields.
    """

    frames: int
    fragments_in: int
    bytes_in: int
    bytes_out: int
    removed: tuple[tuple[str, int, int], ...]

    @property
    def changed(self) -> bool:
        """Whether anything but the offset tables was taken out."""
        return bool(self.removed)

    def as_dict(self) -> dict[str, object]:
        return {
            "frames": self.frames,
            "fragments_in": self.fragments_in,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "removed": {kind: {"count": n, "bytes": b} for kind, n, b in self.removed},
        }


def report(tally: Tally, *, frames: int, fragments_in: int, bytes_in: int,
           bytes_out: int) -> StreamReport:
    removed = tuple(sorted((k, n, tally.bytes[k]) for k, n in tally.counts.items()))
    return StreamReport(frames, fragments_in, bytes_in, bytes_out, removed)
