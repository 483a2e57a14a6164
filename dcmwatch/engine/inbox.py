"""The watched inbox as the engine's intake: claim by rename, release once the output is durable.

A file is claimed by renaming it into the work area under a claim id (atomic, same filesystem),
so a sender never sees it half-taken and a restart finds it by name: work left by a crash is
processed again first (its output path is deterministic). Which paths are ready, settled and in
what order is `dcmwatch.intake.Intake`'s business; this module is the file's side of it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path
from typing import Any

from dcmwatch import store
from dcmwatch.config import Config
from dcmwatch.engine import admission
from dcmwatch.engine.intakes import Entry
from dcmwatch.engine.outcome import Batch, Outcome, WorkItem
from dcmwatch.intake import Intake as Queue
from dcmwatch.intake import NameFilter
from dcmwatch.journal import Journal
from dcmwatch.store import WORK_DIR_NAME


def new_claim_id() -> str:
    """Sortable by time, unique, and carrying nothing of the input."""
    return f"{time.time_ns():x}-{secrets.token_hex(4)}"


class InboxIntake:
    releases = True

    def __init__(self, config: Config, log: Any) -> None:
        self.config = config
        self.log = log
        p = config.paths
        self.inbox, self.qdir, self.state = p.inbox, p.quarantine, p.state
        self.work = self.state / "work"
        self.queue = Queue(self.inbox, settle_seconds=config.watch.settle_seconds,
                           max_pending=config.queue.max_pending,
                           names=NameFilter(config.watch.ignore))
        #: Claims of this turn, for the ledger (set by the daemon once the journal is open).
        self.ledger_claimed: Any = None
        self._recovered: list[Entry] = []
        #: Inbox path -> (claim id, inode) of files given back while still being written,
        #: oldest first: the same file keeps its claim id when it comes back.
        self._given_back: dict[str, tuple[str, int]] = {}

    @property
    def exhausted(self) -> bool:
        return False

    # -- start-up --------------------------------------------------------------------------------
    def prepare_folders(self) -> None:
        mode = 0o750
        for folder in (self.inbox, self.config.paths.outbox, self.qdir, self.state):
            store.ensure_dir(folder, mode)
        if not store.same_filesystem(self.inbox, self.state):
            # The claim is an atomic rename: the work area must share the inbox's filesystem.
            self.work = self.inbox / WORK_DIR_NAME
            self.log.info("work.location", where="inbox", reason="state on another filesystem")
        store.ensure_dir(self.work, mode)

    def recover(self, journal: Journal) -> int:
        """Work left by a crash is processed again first (its output path is deterministic)."""
        for entry in sorted(os.scandir(self.work), key=lambda e: e.name):
            if entry.name.endswith(".dcm") and not entry.name.startswith("."):
                st = entry.stat(follow_symlinks=False)
                self._recovered.append(Entry(WorkItem(entry.path, entry.name[:-4]), st.st_size,
                                             None, st.st_mtime_ns, time.time(),
                                             need=admission.estimate(entry.path, st.st_size)))
            else:
                store.remove(Path(entry.path))
        # A kill between quarantining a file and journaling it leaves a "claimed" row whose
        # work file is gone and whose quarantine entry exists: record what happened.
        left = {e.item.claim_id for e in self._recovered}
        for claim_id in journal.unfinished():
            if claim_id not in left and (self.qdir / f"{claim_id}.dcm").exists():
                journal.finished(claim_id, outcome="quarantined", reason="recovered")
        return len(self._recovered)

    # -- the engine's side -----------------------------------------------------------------------
    def take(self, files: int) -> list[Entry]:
        out: list[Entry] = []
        while len(out) < files:
            if self._recovered:
                out.append(self._recovered.pop(0))
                continue
            taken = self.queue.take_seen()
            if taken is None:
                break
            entry = self._claim(taken[0])
            if entry is not None:
                entry.seen = taken[1]
                out.append(entry)
        return out

    def _claim(self, path: str) -> Entry | None:
        claim_id = self._reclaimed_id(path) or new_claim_id()
        work = self.work / f"{claim_id}.dcm"
        try:
            st = store.claim(Path(path), work)
        except FileNotFoundError:
            return None  # gone already (renamed away, claimed earlier, deleted)
        except OSError as exc:
            self.log.warning("file.claim_failed", errno=exc.errno)
            self.queue.watch(path, delay=self.config.watch.settle_seconds)
            return None
        self.ledger_claimed(claim_id, st.st_size)
        self.log.info("file.received", claim_id=claim_id, bytes=st.st_size)
        return Entry(WorkItem(str(work), claim_id), st.st_size, path, st.st_mtime_ns,
                     time.time(), need=admission.estimate(str(work), st.st_size))

    def batch(self, entries: list[Entry], *, isolated: bool = False) -> Batch:
        return Batch(tuple(e.item for e in entries), str(self.config.paths.outbox),
                     defer_commit=True, isolated=isolated)

    def release(self, entry: Entry) -> None:
        """In an I/O thread: the input of a processed file goes (or to the archive)."""
        work = Path(entry.item.source)
        if self.config.output.on_success != "archive":
            store.remove(work)
            return
        archive = self.config.paths.archive or (self.state / "archive")
        folder = archive / time.strftime("%Y%m%d", time.gmtime())
        store.ensure_dir(folder)
        store.move_durable(work, folder / f"{entry.item.claim_id}.dcm", tag=entry.item.claim_id,
                           mode=self.config.output.file_mode)

    def quarantine(self, entry: Entry, sidecar: dict[str, object]) -> None:
        store.quarantine(Path(entry.item.source), self.qdir, entry.item.claim_id, sidecar,
                         mode=self.config.output.file_mode)

    # -- files still being written ---------------------------------------------------------------
    def give_back(self, entry: Entry, outcome: Outcome) -> bool:
        """Truncated or empty, and written to within the settle window: its writer may come
        back. It returns to its inbox name, keeping its claim id for when it is taken again."""
        if outcome.reason not in ("truncated", "empty") or entry.origin is None:
            return False
        if entry.claimed_wall - entry.mtime_ns / 1e9 >= self.config.watch.settle_seconds:
            return False
        inode = None
        with contextlib.suppress(OSError):  # the same inode will be back under its inbox name
            st = os.lstat(entry.item.source)
            inode = st.st_ino
            self.queue.hold(entry.origin, st, delay=self.config.watch.settle_seconds)
        if not store.unclaim(Path(entry.item.source), Path(entry.origin)):
            return False  # its name was taken by a new file meanwhile: it can only be quarantined
        if inode is not None:
            self._given_back[entry.origin] = (entry.item.claim_id, inode)
            while len(self._given_back) > self.config.queue.max_pending:  # bounded
                del self._given_back[next(iter(self._given_back))]
        return True

    def _reclaimed_id(self, path: str) -> str | None:
        """Only the same file keeps its id: another one dropped under its name gets its own."""
        given = self._given_back.pop(path, None)
        if given is None:
            return None
        claim_id, inode = given
        try:
            return claim_id if os.lstat(path).st_ino == inode else None
        except OSError:
            return None

    def return_unstarted(self, entry: Entry) -> bool:
        """Claimed but not started: back to the inbox, untouched. Work left by a crash (no
        inbox name) and a name a new file took stay in the work area for the next start."""
        return entry.origin is not None and store.unclaim(Path(entry.item.source),
                                                          Path(entry.origin))

    def depth(self) -> int:
        return self.queue.depth() + len(self._recovered)
