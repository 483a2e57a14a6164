"""The driver: list lazily, submit batches of paths, keep K in flight, journal what comes back.

Memory is O(K): the listing is a generator, at most K batches (of `batch_files` paths) are in
flight, and the journal answers "done already?" per input from disk. Nothing else is held, so a
50-million-file archive costs the driver what a 500-file folder does. The driver never reads an
input (except to copy a file that killed its workers into quarantine) and never writes an
output; workers do, wherever they run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dcmwatch import config as config_mod
from dcmwatch import store
from dcmwatch.backfill import sources
from dcmwatch.backfill.batch import Batch, FileResult, Item, quarantine
from dcmwatch.backfill.engine import Done, Engine
from dcmwatch.backfill.journal import BackfillJournal
from dcmwatch.backfill.report import Reporter, Tally
from dcmwatch.config import Config
from dcmwatch.errors import DcmwatchError
from dcmwatch.journal import Journal as StateJournal
from dcmwatch.journal import open_state
from dcmwatch.ocr.findings import redaction_record

#: Consecutive batches failing as a whole (not per file) before the run gives up: the engine
#: or the cluster is broken, and a rerun resumes where this one stopped.
MAX_BATCH_ERRORS = 3


class EngineFailed(DcmwatchError):
    reason = "engine"


@dataclass(frozen=True, slots=True)
class Options:
    sources: tuple[str, ...]
    outbox: str
    quarantine: str
    journal: Path
    manifest: str | None = None
    batch_files: int = 64
    #: Batches in flight; default twice the engine's slots.
    inflight: int | None = None
    resume: bool = False


def identity(key: bytes, source: str) -> str:
    """An input's journal identity: keyed, so the journal does not reveal file names.

    A Linux file name is bytes, and one that is not UTF-8 reaches us with surrogate escapes
    (PEP 383): hashing the name's own bytes keeps every valid name's identity as it was and
    gives the others one, where a strict encode would end the run.
    """
    name = source.encode("utf-8", "surrogateescape")
    h = hashlib.blake2b(name, key=key[:64], digest_size=16, person=b"dcmw-backfill")
    return h.hexdigest()


def config_digest(config: Config, options: Options) -> str:
    """What decides an output's bytes and place: the effective config, the key, the outbox."""
    data = config_mod.effective(config)
    data.pop("source", None)
    text = json.dumps([data, options.outbox, options.quarantine], sort_keys=True, default=str)
    h = hashlib.blake2b(text.encode(), key=config.key()[:64], digest_size=16,
                        person=b"dcmw-bf-config")
    return h.hexdigest()


class Driver:
    def __init__(self, config: Config, options: Options, engine: Engine, log: Any,
                 reporter: Reporter | None = None,
                 on_batch: Callable[[Tally], None] | None = None) -> None:
        self.config = config
        self.options = options
        self.engine = engine
        self.log = log
        self.reporter = reporter or Reporter(log, bar=False)
        self.on_batch = on_batch
        self.tally = Tally()
        self.digest = config_digest(config, options)
        self._key = config.key()
        self._errors = 0
        self._isolating = False
        self._reid: StateJournal | None = None

    def run(self) -> Tally:
        journal = BackfillJournal(self.options.journal)
        self._reid = self._open_reid_map()
        try:
            window = self.options.inflight or 2 * self.engine.slots
            self.log.info("backfill.started", **self.engine.describe(),
                          batch_files=self.options.batch_files, inflight=window,
                          resume=self.options.resume,
                          already_done=journal.done_count(self.digest))
            fresh = self._batches(journal, window)
            retry: deque[Batch] = deque()
            suspects: deque[Batch] = deque()
            inflight = 0
            while True:
                while inflight < window and not suspects and not self._isolating:
                    batch = retry.popleft() if retry else next(fresh, None)
                    if batch is None:
                        break
                    self.engine.submit(batch)
                    inflight += 1
                if suspects and inflight == 0:
                    self.engine.submit(suspects.popleft())
                    self._isolating = True
                    inflight = 1
                if inflight == 0:
                    break
                for done in self.engine.wait():
                    inflight -= 1
                    self._isolating = False
                    self._settle(done, journal, retry, suspects)
        finally:
            journal.close()
            if self._reid is not None:
                self._reid.close()
            self.reporter.close(self.tally)
        self.log.info("process.finished", engine=self.engine.name,
                      **self.reporter.numbers(self.tally))
        return self.tally

    def _batches(self, journal: BackfillJournal, window: int) -> Iterator[Batch]:
        """Full batches; but a run that fits in the first window is spread over all slots
        (a 50-file run must not be one batch on one worker)."""
        todo = self._todo(journal)
        size = self.options.batch_files
        head = list(itertools.islice(todo, window * size))
        if len(head) < window * size:
            size = max(1, min(size, math.ceil(len(head) / window)))
        for start in range(0, len(head), size):
            yield self._batch(head[start:start + size])
        del head
        while chunk := list(itertools.islice(todo, size)):
            yield self._batch(chunk)

    def _todo(self, journal: BackfillJournal) -> Iterator[Item]:
        for source in sources.iter_sources(self.options.sources, self.options.manifest):
            ident = identity(self._key, source)
            if journal.is_done(ident, self.digest):
                self.tally.skipped += 1
                continue
            yield Item(source, ident)

    def _batch(self, items: list[Item]) -> Batch:
        return Batch(tuple(items), self.options.outbox, self.options.quarantine)

    def _settle(self, done: Done, journal: BackfillJournal, retry: deque[Batch],
                suspects: deque[Batch]) -> None:
        if done.results is not None:
            self._errors = 0
            self._record(done.results, journal)
            return
        failure = done.failure
        assert failure is not None
        batch = done.batch
        if failure.kind == "error":
            self._errors += 1
            self.log.error("backfill.batch_failed", error=failure.error, files=len(batch.items))
            self._record([FileResult(i.ident, "failed", reason="engine",
                                     message=f"the batch failed ({failure.error})")
                          for i in batch.items], journal)
            if self._errors >= MAX_BATCH_ERRORS:
                raise EngineFailed(f"{self._errors} batches in a row failed ({failure.error})")
            return
        if failure.kind == "crashed":
            self._settle_crash(batch, journal, suspects)
            return
        # Dask blamed this batch (`KilledWorker`, after its own retries): halve it until the
        # file that kills workers stands alone.
        if len(batch.items) > 1:
            self._split(batch, retry, failure.error)
            return
        if not batch.isolated:
            # Dask blames every batch on a dying worker, and a worker holds more than one when
            # the scheduler does not queue them (few batches known to it: a run's start and
            # end, right after a death, when the survivors take everything). A lone file is
            # called poison only after it killed workers with nothing else in flight.
            suspects.append(replace(batch, isolated=True))
            return
        self._quarantine_poison(batch, journal)

    def _settle_crash(self, batch: Batch, journal: BackfillJournal,
                      suspects: deque[Batch]) -> None:
        """A local pool broke: every batch in flight failed, the innocent with the guilty.
        Each is rerun alone; only a batch that crashes alone is halved, and only a single file
        that crashes alone `workers.max_attempts` times is declared poison."""
        if not batch.isolated:
            suspects.append(replace(batch, isolated=True))
            return
        if len(batch.items) > 1:
            self._split(batch, suspects, "BrokenProcessPool", front=True)
            return
        if batch.crashes + 1 < self.config.workers.max_attempts:
            suspects.appendleft(replace(batch, crashes=batch.crashes + 1))
            return
        self._quarantine_poison(batch, journal)

    def _split(self, batch: Batch, queue: deque[Batch], error: str, *,
               front: bool = False) -> None:
        mid = len(batch.items) // 2
        halves = [replace(batch, items=batch.items[:mid], crashes=0),
                  replace(batch, items=batch.items[mid:], crashes=0)]
        if front:
            queue.extendleft(reversed(halves))
        else:
            queue.extend(halves)
        self.tally.splits += 1
        self.log.warning("backfill.batch_split", error=error, files=len(batch.items))

    def _quarantine_poison(self, batch: Batch, journal: BackfillJournal) -> None:
        item = batch.items[0]
        result = quarantine(item, batch, self.config, "killed_worker",
                            "the file ended the worker process that read it")
        self._record([result], journal)

    def _open_reid_map(self) -> StateJournal | None:
        """The state database, opened only to keep the re-identification map when it is on."""
        if not self.config.deid.reid_map:
            return None
        store.ensure_dir(self.config.paths.state)
        return open_state(self.config)

    def _record(self, results: list[FileResult], journal: BackfillJournal) -> None:
        # The map first: once the journal says done, a rerun skips the file and its pairs.
        pairs = [pair for r in results for pair in r.reid]
        if pairs and self._reid is not None:
            self._reid.record_reid(pairs)
        for r in results:
            if r.findings:  # the burned-in text guard's boxes: workers cannot log
                self.log.warning("ocr.finding", claim_id=r.ident, policy=self.config.ocr.policy,
                                 count=len(r.findings), findings=[f.as_dict() for f in r.findings])
                redacted = redaction_record(r.findings)
                if redacted is not None and r.status == "processed":
                    self.log.info("ocr.redacted", claim_id=r.ident, **redacted)
            if r.stream is not None and r.stream.changed:
                self.log.info("pixels.stream_cleaned", claim_id=r.ident, **r.stream.as_dict())
        journal.record(results, self.digest)
        t = self.tally
        t.batches += 1
        for r in results:
            t.bytes_in += r.bytes_in
            if r.status == "processed":
                t.processed += 1
                self.log.debug("file.processed", claim_id=r.ident, output=r.output,
                               bytes=r.bytes_in, duration_ms=r.duration_ms)
            elif r.status == "quarantined":
                t.quarantined += 1
                t.quarantine_reasons[r.reason or "unknown"] += 1
                self.log.warning("file.quarantined", claim_id=r.ident, reason=r.reason,
                                 message=r.message, bytes=r.bytes_in)
            else:
                t.failed += 1
                self.log.error("file.failed", claim_id=r.ident, reason=r.reason,
                               message=r.message)
        self.reporter.update(t)
        if self.on_batch is not None:
            self.on_batch(t)
