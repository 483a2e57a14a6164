"""`dcmwatch requeue`: quarantined files go back to the inbox, after the operator fixed the cause.

Safe while the daemon runs, and against a crash at any step, because every step is a durable
move and the sidecar goes last:

1. the original moves into a hidden staging folder of the inbox (`.dcmwatch-requeue/`; the
   daemon never takes anything below a hidden folder), by rename or by durable copy;
2. it is renamed into the inbox as `<quarantine id>.dcm`, never replacing an existing name
   (the original file name is gone for good: it may have carried PHI);
3. only then is the sidecar removed and the journal told.

A crash after 1 leaves the file in staging with its sidecar still in the quarantine; the next
`requeue` finishes the move. A crash after 2 leaves a sidecar whose file is gone (in the inbox,
or claimed already): the next `requeue` removes it (`file.requeue_orphan`), else `status` would
count it in the quarantine forever. The daemon claims the file under a new claim id.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcmwatch import store
from dcmwatch.config import Config
from dcmwatch.housekeeping import claimed_at
from dcmwatch.journal import open_state

STAGING_DIR_NAME = ".dcmwatch-requeue"


@dataclass(slots=True)
class Summary:
    requeued: int = 0
    skipped: int = 0
    failed: int = 0
    #: Sidecars left without their file (a requeue stopped after the move): removed.
    orphans: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)

    def as_fields(self) -> dict[str, Any]:
        return {"requeued": self.requeued, "skipped": self.skipped, "failed": self.failed,
                "orphans": self.orphans, "by_reason": dict(sorted(self.by_reason.items()))}


@dataclass(frozen=True, slots=True)
class Entry:
    claim_id: str
    reason: str


def entries(quarantine: Path, reason: str | None = None) -> list[Entry]:
    """Quarantine entries (sidecars with dcmwatch's names), oldest first, optionally one reason."""
    out: list[Entry] = []
    if not quarantine.is_dir():
        return out
    for sidecar in sorted(quarantine.glob("*.json")):
        claim_id = sidecar.name[: -len(".json")]
        if claimed_at(claim_id) is None:
            continue  # not ours: its name is not a claim id
        try:
            why = str(json.loads(sidecar.read_text(encoding="utf-8")).get("reason", "unknown"))
        except (OSError, ValueError):
            why = "unknown"
        if reason is None or why == reason:
            out.append(Entry(claim_id, why))
    return out


def requeue(config: Config, log: Any, *, reason: str | None = None,
            dry_run: bool = False) -> Summary:
    quarantine, inbox = config.paths.quarantine, config.paths.inbox
    summary = Summary()
    todo = entries(quarantine, reason)
    if dry_run:
        for entry in todo:
            summary.by_reason[entry.reason] += 1
        summary.requeued = len(todo)
        return summary
    if not todo:
        return summary
    staging = inbox / STAGING_DIR_NAME
    store.ensure_dir(staging)
    journal = open_state(config) if config.paths.state.is_dir() else None
    try:
        for entry in todo:
            outcome = _one(entry, quarantine, inbox, staging, config.output.file_mode, log)
            if outcome == "requeued":
                summary.requeued += 1
                summary.by_reason[entry.reason] += 1
                if journal is not None:
                    journal.requeued(entry.claim_id)
            elif outcome == "skipped":
                summary.skipped += 1
            elif outcome == "orphan":
                summary.orphans += 1
            else:
                summary.failed += 1
    finally:
        if journal is not None:
            journal.close()
        with contextlib.suppress(OSError):
            staging.rmdir()  # only when empty
    return summary


def _one(entry: Entry, quarantine: Path, inbox: Path, staging: Path, mode: int,
         log: Any) -> str:
    cid = entry.claim_id
    original = quarantine / f"{cid}.dcm"
    staged = staging / f"{cid}.dcm"
    target = inbox / f"{cid}.dcm"
    try:
        has_original = original.exists() or original.is_symlink()
        if not has_original and not (staged.exists() or staged.is_symlink()):
            # Moved on already (a requeue stopped before the sidecar went) or removed by hand:
            # the sidecar explains nothing any more.
            store.remove(quarantine / f"{cid}.json")
            store.fsync_dir(quarantine)
            log.warning("file.requeue_orphan", claim_id=cid, reason=entry.reason,
                        in_inbox=target.exists())
            return "orphan"
        if target.exists():
            log.warning("file.requeue_skipped", claim_id=cid, reason="name_taken")
            return "skipped"
        if has_original:
            store.move_durable(original, staged, tag=cid, mode=mode)
        try:
            store.rename_noreplace(staged, target)
        except FileExistsError:
            store.move_durable(staged, original, tag=cid, mode=mode)  # back where it was
            log.warning("file.requeue_skipped", claim_id=cid, reason="name_taken")
            return "skipped"
        store.fsync_dir(inbox)
        store.fsync_dir(staging)
        store.remove(quarantine / f"{cid}.json")
        store.fsync_dir(quarantine)
    except OSError as exc:
        log.error("file.requeue_failed", claim_id=cid, errno=exc.errno)
        return "failed"
    log.info("file.requeued", claim_id=cid, reason=entry.reason)
    return "requeued"
