"""What feeds the engine, and what the engine asks back of where a file came from.

Two intakes exist: the watched inbox (`inbox.InboxIntake`: settle, claim by rename, release the
input once its output is durable) and listings (`listing.ListingIntake`: folders, manifests,
`s3://` prefixes, inputs left where they are). They differ only in where a file comes from and
what happens to the input afterwards; everything between is the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dcmwatch.engine.outcome import Batch, Outcome, WorkItem


@dataclass(slots=True)
class Entry:
    """A file the engine holds, from its intake until it settles. Kept in memory only: `origin`
    is a file name, which may carry PHI and is never logged or journaled."""

    item: WorkItem
    #: Bytes, as the intake saw them (0 when unknown: a listing does not stat).
    size: int = 0
    #: The inbox path it was claimed from; None for a listing or work left by a crash.
    origin: str | None = None
    mtime_ns: int = 0
    #: Wall-clock time of the claim: how long it waited, for the heartbeat.
    claimed_wall: float = 0.0
    #: First sight in the inbox (monotonic): `latency_ms` runs from here to `file.processed`.
    seen: float | None = None
    #: Estimated peak memory of processing it (`engine.admission`); 0 when unknown.
    need: int = 0


class Intake(Protocol):
    #: Whether `release` does anything: the settle stage skips the I/O threads otherwise.
    releases: bool

    @property
    def exhausted(self) -> bool:
        """Nothing more will come (a listing at its end; an inbox never)."""
        ...

    def take(self, files: int) -> list[Entry]:
        """Up to `files` new files, claimed and ready to run; fewer (or none) if none wait."""
        ...

    def batch(self, entries: list[Entry], *, isolated: bool = False) -> Batch: ...

    def release(self, entry: Entry) -> None:
        """In an I/O thread, once the output is durable and journaled: the input goes."""
        ...

    def quarantine(self, entry: Entry, sidecar: dict[str, object]) -> None:
        """The untouched original and its sidecar, durable in quarantine (raises if not)."""
        ...

    def give_back(self, entry: Entry, outcome: Outcome) -> bool:
        """A file that looks unfinished goes back to wait for its writer: True if it did."""
        ...

    def return_unstarted(self, entry: Entry) -> bool:
        """Stopping: a claimed file no worker started goes back where it came from (False:
        it stays in the work area for the next start)."""
        ...
