"""What `run` checks before it starts, and `check-config` checks the same way.

A configuration that `check-config` calls valid must start: so both commands call `check` (one
function, no copy). It looks without changing anything: the folders `run` will create, the log
file it will open, the key it will read and the state database it will write are tested for
access as the user who runs the check (docs/operations.md runs `check-config` as the service user).
The OCR engine's presence is part of loading the configuration, so it is checked before this.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dcmwatch import keys
from dcmwatch.config import Config
from dcmwatch.errors import ConfigError
from dcmwatch.journal import FILENAME as JOURNAL_FILE

#: A problem in the configuration itself (`run` exits 2, not restarted by systemd), or in the
#: world around it (a folder `run` cannot create or write: exit 3, which may pass).
Kind = Literal["config", "folder"]


@dataclass(frozen=True, slots=True)
class Problem:
    key: str
    message: str
    kind: Kind

    def render(self, source: str) -> str:
        return f"{source}: {self.key}: {self.message}"


@dataclass(frozen=True, slots=True)
class Report:
    key_origin: str | None
    problems: tuple[Problem, ...]
    #: Folders that exist but cannot be written now. `run` starts anyway and retries each
    #: write with back-off (an operator fixes a mode, a read-only mount comes back), as it does
    #: for a full disk; both commands say so.
    warnings: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def check(config: Config, env: Mapping[str, str]) -> Report:
    """Every problem `run` would meet before its first file, without creating anything."""
    problems: list[Problem] = []
    origin: str | None = None
    try:
        origin = keys.resolve(config.deid, env, create=False).origin
    except ConfigError as exc:
        problems.append(Problem("deid.key_file", str(exc), "config"))
    else:
        if origin.startswith("key_file (generated") and config.deid.key_file is not None:
            # Generated at first run in its folder, which is created with its parents.
            problems.extend(_creatable("deid.key_file", Path(config.deid.key_file).parent,
                                       "config", folder=True))
    if config.log.file is not None:
        problems.extend(_creatable("log.file", config.log.file, "config", folder=False))
    p = config.paths
    for key, folder in (("paths.inbox", p.inbox), ("paths.state", p.state)):
        problems.extend(_creatable(key, folder, "folder", folder=True))
    # Where outputs, quarantined files and archived inputs are written, each write is retried.
    retried: list[tuple[str, Path]] = [("paths.outbox", p.outbox),
                                       ("paths.quarantine", p.quarantine)]
    if config.output.on_success == "archive":
        retried.append(("paths.archive", p.archive or p.state / "archive"))
    warnings: list[Problem] = []
    for key, folder in retried:
        found = _creatable(key, folder, "folder", folder=True)
        (warnings if os.path.isdir(folder) else problems).extend(found)
    db = p.state / JOURNAL_FILE
    state_ok = not any(problem.key == "paths.state" for problem in problems)
    if state_ok and _exists(db) and not os.access(db, os.R_OK | os.W_OK):
        problems.append(Problem("paths.state", "the state database is not readable and "
                                "writable by this user", "folder"))
    return Report(origin, tuple(problems), tuple(warnings))


def _creatable(key: str, path: Path, kind: Kind, *, folder: bool) -> list[Problem]:
    """`path` exists as the right kind of thing and may be written, or can be created."""
    what = "folder" if folder else "file"
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return _parent_writable(key, path, kind, folder=folder)
    except OSError as exc:
        return [Problem(key, f"cannot look at the {what} ({exc.strerror})", kind)]
    if folder and not stat.S_ISDIR(st.st_mode):
        return [Problem(key, "exists and is not a folder", kind)]
    if not folder and not stat.S_ISREG(st.st_mode):
        return [Problem(key, "exists and is not a regular file", kind)]
    access = os.W_OK | os.X_OK if folder else os.W_OK
    if not os.access(path, access):
        return [Problem(key, f"the {what} is not writable by this user", kind)]
    return []


def _parent_writable(key: str, path: Path, kind: Kind, *, folder: bool) -> list[Problem]:
    # A folder is created with its missing parents (mkdir -p); a file only in an existing folder.
    parent = path.parent
    try:
        if folder:
            while not _exists(parent) and parent.parent != parent:
                parent = parent.parent
        st = os.stat(parent)
    except (FileNotFoundError, NotADirectoryError):
        return [Problem(key, "cannot be created: its folder does not exist", kind)]
    except OSError as exc:  # a folder above it closed to this user: say so, never a traceback
        return [Problem(key, f"cannot be created: cannot look at its folder ({exc.strerror})",
                        kind)]
    if not stat.S_ISDIR(st.st_mode):
        return [Problem(key, "cannot be created: its parent is not a folder", kind)]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [Problem(key, "cannot be created: its folder is not writable by this user", kind)]
    return []


def _exists(path: Path) -> bool:
    """Like `Path.exists`, which raises on EACCES in Python 3.11: a name we may not look at
    counts as there, so the caller's own stat reports why."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True
    return True
