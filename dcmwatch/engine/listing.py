"""Listings as the engine's intake: folders, manifests and `s3://` prefixes, read lazily.

Memory is O(window): the listing is a generator and the journal answers "done already?" per
input from disk, so a 50-million-file archive costs what a 500-file folder does. Inputs are
never modified or removed: a backfill copies a quarantined original and leaves the rest where
it is. Each input is named by a keyed digest of its path (`identity`), never by the path.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dcmwatch.backfill import locations, sources
from dcmwatch.engine import admission
from dcmwatch.engine.intakes import Entry
from dcmwatch.engine.outcome import Batch, Outcome, WorkItem
from dcmwatch.errors import DcmwatchError


class ListingError(DcmwatchError):
    """A source cannot be listed (a bucket that does not exist, access refused): the run
    stops with a clear event; a rerun resumes once it can be listed."""

    reason = "listing"


@dataclass(frozen=True, slots=True)
class Listing:
    sources: tuple[str, ...]
    outbox: str
    quarantine: str
    manifest: str | None = None
    file_mode: int = 0o640
    #: Outputs left for the settle stage's I/O threads to commit, as the daemon's are: only
    #: where the settle stage can reach them (a local outbox, workers on this machine).
    defer_commit: bool = False


def identity(key: bytes, source: str) -> str:
    """An input's journal identity: keyed, so the journal does not reveal file names.

    A Linux file name is bytes, and one that is not UTF-8 reaches us with surrogate escapes
    (PEP 383): hashing the name's own bytes keeps every valid name's identity as it was and
    gives the others one, where a strict encode would end the run.
    """
    name = source.encode("utf-8", "surrogateescape")
    h = hashlib.blake2b(name, key=key[:64], digest_size=16, person=b"dcmw-backfill")
    return h.hexdigest()


class ListingIntake:
    releases = False

    def __init__(self, listing: Listing, key: bytes, is_done: Callable[[str], bool], *,
                 window: int, batch_files: int, on_skip: Callable[[], None]) -> None:
        self.listing = listing
        self._key = key
        self._is_done = is_done
        self._on_skip = on_skip
        self._window = window
        self._size = batch_files
        self._todo = self._iter()
        self._head: deque[Entry] | None = None
        self._exhausted = False

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    def _iter(self) -> Iterator[Entry]:
        listed = sources.iter_sources(self.listing.sources, self.listing.manifest)
        while True:
            try:
                source = next(listed)
            except StopIteration:
                return
            except DcmwatchError:
                raise
            except Exception as exc:  # its message may name a path or a key: the class only
                raise ListingError(f"cannot list the inputs ({type(exc).__name__})") from None
            ident = identity(self._key, source)
            if self._is_done(ident):
                self._on_skip()
                continue
            yield self._entry(source, ident)

    @staticmethod
    def _entry(source: str, ident: str) -> Entry:
        """A local input's size and memory estimate (one stat, and its head when large); an
        object's are not known before it is read."""
        if locations.is_remote(source):
            return Entry(WorkItem(source, ident))
        try:
            size = os.stat(source).st_size
        except OSError:
            return Entry(WorkItem(source, ident))  # the worker says why, as for any read
        return Entry(WorkItem(source, ident), size, need=admission.estimate(source, size))

    def take(self, files: int) -> list[Entry]:
        """Full batches; but a run that fits in the first window is spread over all slots (a
        50-file run must not be one batch on one worker)."""
        if self._head is None:
            head = list(itertools.islice(self._todo, self._window * self._size))
            if len(head) < self._window * self._size:
                self._size = max(1, min(self._size, math.ceil(len(head) / self._window)))
            self._head = deque(head)
        want = min(files, self._size)
        out = [self._head.popleft() for _ in range(min(want, len(self._head)))]
        if len(out) < want:
            out.extend(itertools.islice(self._todo, want - len(out)))
        if not out:
            self._exhausted = True
        return out

    def batch(self, entries: list[Entry], *, isolated: bool = False) -> Batch:
        return Batch(tuple(e.item for e in entries), self.listing.outbox,
                     defer_commit=self.listing.defer_commit, allow_hardlinks=True,
                     digest_output=True, isolated=isolated)

    def release(self, entry: Entry) -> None:
        return None  # a backfill's inputs stay where they are

    def quarantine(self, entry: Entry, sidecar: dict[str, object]) -> None:
        """A copy of the untouched original: a backfill never modifies its inputs."""
        locations.quarantine(entry.item.source, self.listing.quarantine, entry.item.claim_id,
                             {**sidecar, "mode": "backfill"}, mode=self.listing.file_mode)

    def give_back(self, entry: Entry, outcome: Outcome) -> bool:
        return False  # an archive's file is as complete as it will ever be

    def return_unstarted(self, entry: Entry) -> bool:
        return True  # it never left its place
