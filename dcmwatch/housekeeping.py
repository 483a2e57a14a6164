"""Scheduled housekeeping and the free-space check: what keeps the daemon running for years.

Retention works from the names dcmwatch gave its files (claim ids start with the claim time in
hex nanoseconds), not from mtimes: an archived or quarantined original keeps the mtime its
scanner gave it, which may be years old or in the future. A quarantine entry counts from when
its sidecar was written if that is later (a file may wait through retries before quarantine).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from dcmwatch import store

_CLAIM_RE = re.compile(r"^([0-9a-f]{12,17})-[0-9a-f]+$")


def claimed_at(name: str) -> float | None:
    """Wall-clock seconds at which the claim id `name` (file stem) was made, if it is one."""
    m = _CLAIM_RE.match(name)
    return int(m.group(1), 16) / 1e9 if m else None


def _age_reference(path: Path) -> float:
    when = claimed_at(path.name.split(".", 1)[0])
    return when if when is not None else path.lstat().st_mtime


@dataclass(frozen=True, slots=True)
class Purged:
    archived: int = 0
    quarantined: int = 0
    bytes: int = 0


def purge(archive: Path | None, quarantine: Path, older_than_days: float,
          *, now: float | None = None) -> Purged:
    """Delete archived inputs and quarantine entries (original, then sidecar) older than the
    cutoff. A quarantine entry goes original first: a crash leaves a sidecar without its file,
    which the next run removes, never a PHI-bearing file without its explanation."""
    now = time.time() if now is None else now
    cutoff = now - older_than_days * 86_400
    archived = quarantined = freed = 0
    if archive is not None and archive.is_dir():
        for root, dirs, files in os.walk(archive, topdown=False):
            for name in files:
                p = Path(root) / name
                with contextlib.suppress(FileNotFoundError):
                    if _age_reference(p) < cutoff:
                        freed += p.lstat().st_size
                        p.unlink()
                        archived += 1
            for name in dirs:  # emptied day folders go too
                with contextlib.suppress(OSError):
                    (Path(root) / name).rmdir()
    if quarantine.is_dir():
        for sidecar in sorted(quarantine.glob("*.json")):
            stem = sidecar.name[: -len(".json")]
            with contextlib.suppress(FileNotFoundError):
                # Quarantined when its sidecar was written (ours, so its mtime is honest), which
                # may be long after the claim if the file waited through retries.
                if max(_age_reference(sidecar), sidecar.lstat().st_mtime) >= cutoff:
                    continue
                original = quarantine / f"{stem}.dcm"
                with contextlib.suppress(FileNotFoundError):
                    freed += original.lstat().st_size
                    original.unlink()
                sidecar.unlink()
                quarantined += 1
        if quarantined:
            store.fsync_dir(quarantine)
    return Purged(archived, quarantined, freed)


def free_mb(folder: Path) -> float:
    """Space an unprivileged writer can still use in `folder`'s filesystem, in MiB."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize / (1024 * 1024)


def low_space(folders: dict[str, Path], min_free_mb: int) -> tuple[str, float] | None:
    """The first (role, free MiB) below `min_free_mb`, or None. A folder that cannot be
    examined is not reported here: the daemon's own writes will say what is wrong with it."""
    if min_free_mb <= 0:
        return None
    for role, folder in folders.items():
        try:
            free = free_mb(folder)
        except OSError:
            continue
        if free < min_free_mb:
            return role, free
    return None
