"""The one configuration object, validated once at load.

Everything dcmwatch does is decided by a `Config`: an immutable pydantic model built from one TOML
file (or the embedded default) and passed explicitly to whoever needs it, worker processes
included (it pickles). No module reads settings from anywhere else, so what `check-config`
prints is what runs.

Errors name the file and the dotted key, never just "invalid config": the operator reading the
journal at 3 a.m. must know which line to fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, ValidationError, field_validator

from dcmwatch import config_messages
from dcmwatch.deid.settings import DeidSettings
from dcmwatch.errors import ConfigError
from dcmwatch.ocr.settings import OcrSettings
from dcmwatch.pixels.settings import CONFIG_DIR_CONTEXT, PixelRule, PixelSettings

#: Fields a layout template may use. All are values *after* de-identification (pseudonymous
#: PatientID, remapped UIDs) or carry no identity (Modality, numbers: `pipeline.output_relpath`
#: takes only a standard Modality term and short numbers). Dates and names are not offered:
#: they would put PHI into paths if a site ever retained them.
LAYOUT_FIELDS = frozenset(
    {
        "PatientID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "Modality",
        "SeriesNumber",
        "InstanceNumber",
        "SOPClassUID",
    }
)
_FIELD_RE = re.compile(r"\{([^{}]*)\}")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Paths(_Section):
    """Folders; relative ones are resolved against the config file's folder (or the current
    folder for the embedded default) once, at load."""

    #: Where senders drop files; each is taken once it is complete.
    inbox: Path = Path("inbox")
    #: De-identified outputs, laid out by `output.layout`.
    outbox: Path = Path("outbox")
    #: Untouched originals that could not be processed, each with a `.json` sidecar giving the
    #: reason. They hold PHI: keep the folder closed, apart from the inbox and the outbox.
    quarantine: Path = Path("quarantine")
    #: The state database (journal, re-identification map) and the work area; by default also
    #: the archive and the generated key.
    state: Path = Path("state")
    #: Where `output.on_success = "archive"` keeps processed originals (default: state/archive).
    archive: Path | None = None


class Watch(_Section):
    #: "auto": the kernel's events (inotify) where they work, else polling; "polling" for NFS
    #: and SMB mounts, where files written by other hosts raise no local event.
    observer: Literal["auto", "native", "polling"] = "auto"
    #: A file whose size and mtime have not changed for this long is complete (polling observer,
    #: files found by a rescan, files created without a close event). Also the window in which a
    #: file that looks truncated is given back to its writer instead of being quarantined.
    settle_seconds: Annotated[float, Field(gt=0, le=3600)] = 2.0
    #: Polling observer: how often to look.
    poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 1.0
    #: Names ignored until renamed (fnmatch, matched on the file name only).
    ignore: tuple[str, ...] = (".*", "*.part", "*.tmp", "*.partial", "*~")


class Workers(_Section):
    #: Worker processes (default: the number of CPUs). De-identification is CPU-bound Python:
    #: threads would share one core.
    count: Annotated[int, Field(ge=1, le=512)] = Field(default_factory=lambda: os.cpu_count() or 1)
    #: Files claimed and handed to the pool per worker: two wait in each worker's socket (it
    #: never waits for the daemon between files), the rest in the pool, which refills a
    #: worker the moment it answers, without the daemon's main loop.
    prefetch: Annotated[int, Field(ge=1, le=64)] = 4
    #: A file whose worker died this many times is quarantined (a poison file must not loop).
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    #: Files in flight and none finished for this long: the workers are wedged, the liveness
    #: check fails and the systemd watchdog pings stop (systemd then restarts the service).
    #: Longer than the slowest legitimate file; it must exceed the time limit's backstop,
    #: `limits.file_seconds` plus the larger of half of it and one second.
    stall_seconds: Annotated[float, Field(gt=0, le=86_400)] = 300.0


class Queue(_Section):
    #: Paths waiting to be claimed. Beyond it, events are dropped (the files stay in the inbox and
    #: the next rescan finds them): memory stays bounded whatever lands in the inbox.
    max_pending: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000


class Output(_Section):
    #: Relative path of each output inside the outbox, from de-identified values only.
    layout: str = "{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"
    #: What happens to an input once its output is durable.
    on_success: Literal["delete", "archive"] = "delete"
    #: Mode of output, quarantine and state files (directories get the matching x bits).
    file_mode: Annotated[int, Field(ge=0, le=0o777)] = 0o640

    @field_validator("layout")
    @classmethod
    def _layout_is_safe(cls, v: str) -> str:
        if not v.endswith(".dcm"):
            raise ValueError("must end in '.dcm'")
        if v.startswith("/") or ".." in Path(v).parts:
            raise ValueError("must be a relative path inside the outbox")
        names = _FIELD_RE.findall(v)
        if not names:
            raise ValueError("must use at least one field, e.g. {SOPInstanceUID}")
        unknown = sorted(set(names) - LAYOUT_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(LAYOUT_FIELDS))
            raise ValueError(f"unknown field(s) {unknown}; allowed: {allowed}")
        if "{SOPInstanceUID}" not in v:
            raise ValueError("must contain {SOPInstanceUID} so that each instance has its own file")
        return v


class Limits(_Section):
    #: Inputs larger than this are quarantined unread.
    max_file_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024**3
    #: A deflated dataset may not inflate beyond this (decompression bombs).
    max_inflated_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024**3
    #: Intake pauses (files wait in the inbox) while the outbox or state folder has less free
    #: space than this, and resumes by itself; 0 turns the check off. Reloadable (SIGHUP).
    min_free_mb: Annotated[int, Field(ge=0)] = 100
    #: Rows x Columns x Frames x samples x bits the header may declare, checked before anything
    #: is decoded or allocated (a small file may claim gigabytes of pixels).
    max_pixel_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024**3
    #: Decode compressed pixel data once (each frame, discarded) so that a file whose frames
    #: cannot be decoded is quarantined instead of being passed on broken. Costs one decode.
    verify_compressed: bool = True
    #: Wall-clock seconds one file may take in a worker before it is stopped and quarantined
    #: (`time_limit`); a worker stuck in C code past the limit is ended and replaced.
    file_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    #: Memory, in MB, that the files being processed may need together: a file starts only when
    #: its estimated peak fits beside those running, so a burst of large files waits instead of
    #: being killed; one that cannot fit even alone is quarantined (`too_large_for_budget`).
    #: 0: half of the service's `MemoryMax` (its cgroup), or of the machine's memory.
    memory_budget_mb: Annotated[int, Field(ge=0)] = 0


class Log(_Section):
    #: "auto": JSON lines, or colourful console lines when stdout is a terminal.
    format: Literal["auto", "json", "console"] = "auto"
    #: The least severe event written; "info" has one line per file received and processed.
    level: Literal["debug", "info", "warning", "error"] = "info"
    #: Also write JSON lines to this file (mode 0640), reopened when logrotate renames or removes
    #: it. Relative to the config file's folder. With a file, every output is JSON.
    file: Path | None = None
    #: Write to stdout as well (journald). Off: the file only.
    stdout: bool = True


class Schedule(_Section):
    #: Full walk of the inbox, catching anything the kernel's events missed.
    rescan_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    #: How often the `heartbeat` event (backlog, rates, free space) is logged and stored.
    heartbeat_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    #: Archived inputs and quarantine entries older than this many days are deleted; 0 keeps
    #: them forever (the default: deleting is the operator's decision).
    retention_days: Annotated[float, Field(ge=0)] = 0.0
    #: How often the retention job looks for entries older than `retention_days`.
    retention_seconds: Annotated[float, Field(gt=0, le=86_400)] = 3600.0
    #: How often the journal is maintained: WAL checkpoint, old rows pruned.
    maintenance_seconds: Annotated[float, Field(gt=0, le=86_400)] = 3600.0
    #: Journal rows older than this many days are pruned (the re-identification map never is);
    #: 0 keeps every row, since the journal is the audit record.
    journal_keep_days: Annotated[float, Field(ge=0)] = 0.0


class Metrics(_Section):
    """Prometheus endpoint. Bound to loopback by default: put a proxy in front to expose it."""

    #: Serve `/metrics` over HTTP for Prometheus.
    enabled: bool = False
    #: The address to listen on; loopback, so that nothing off the host reads it unproxied.
    address: str = "127.0.0.1"
    #: 0 picks a free port (the `metrics.started` event says which).
    port: Annotated[int, Field(ge=0, le=65_535)] = 9464


class Config(_Section):
    paths: Paths = Paths()
    watch: Watch = Watch()
    workers: Workers = Workers()
    queue: Queue = Queue()
    output: Output = Output()
    limits: Limits = Limits()
    log: Log = Log()
    schedule: Schedule = Schedule()
    metrics: Metrics = Metrics()
    deid: DeidSettings = DeidSettings()
    pixels: PixelSettings = PixelSettings()
    rules: tuple[PixelRule, ...] = ()
    ocr: OcrSettings = OcrSettings()
    #: Where this configuration came from ("<embedded default>" or a file path). Not a TOML key.
    source: str = Field(default="<embedded default>", exclude=True)
    #: The de-identification key, resolved at the edge (see `dcmwatch.keys`). Not a TOML key.
    secret: SecretBytes | None = Field(default=None, exclude=True, repr=False)

    def with_secret(self, key: bytes) -> Config:
        return self.model_copy(update={"secret": SecretBytes(key)})

    def key(self) -> bytes:
        if self.secret is None:
            raise ConfigError("no de-identification key was resolved for this configuration")
        return self.secret.get_secret_value()


def backstop_seconds(file_seconds: float) -> float:
    """When a worker whose file outlived `limits.file_seconds` inside C code is ended."""
    return file_seconds + max(1.0, file_seconds / 2)


def default_text() -> str:
    return resources.files("dcmwatch").joinpath("default.toml").read_text(encoding="utf-8")


def load(path: str | os.PathLike[str] | None, *, cwd: Path | None = None) -> Config:
    """Read and validate a config file (or the embedded default when `path` is None)."""
    if path is None:
        return parse(default_text(), source="<embedded default>", base=cwd or Path.cwd())
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the config file ({exc.strerror})") from None
    return parse(text, source=str(file), base=file.resolve().parent)


def parse(text: str, *, source: str, base: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    pixels = data.get("pixels")
    if isinstance(pixels, dict) and "max_pixel_bytes" in pixels:
        raise ConfigError(f"{source}: pixels.max_pixel_bytes: moved to limits.max_pixel_bytes, "
                          "which every file is checked against before any pixel is read")
    try:
        # Relative mask files are read against the config file's folder, once, here.
        config = Config.model_validate(data, context={CONFIG_DIR_CONTEXT: base})
    except ValidationError as exc:
        raise ConfigError(config_messages.describe(exc, source, Config)) from None
    quoted = config_messages.strings_for_numbers(data, config)
    if quoted:
        raise ConfigError("\n".join(f"{source}: {line}" for line in quoted))
    config = _resolve_paths(config, base)
    _check_folders(config.paths, source)
    backstop = backstop_seconds(config.limits.file_seconds)
    if config.workers.stall_seconds <= backstop:
        # A slow file would read as wedged workers: systemd would restart the daemon, which
        # takes the file again, for ever. The time limit (and, for a worker stuck in C code,
        # its backstop at 1.5 x the limit) must act first.
        raise ConfigError(f"{source}: workers.stall_seconds: must be longer than "
                          f"{backstop:g} s (limits.file_seconds and the worker backstop)")
    # One pixel-size limit: the pixel step, the preview and the guard use the one in [limits].
    config = config.model_copy(update={"pixels": config.pixels.model_copy(
        update={"max_pixel_bytes": config.limits.max_pixel_bytes})})
    return config.model_copy(update={"source": source})


def _check_folders(paths: Paths, source: str) -> None:
    """The archive and the quarantine hold untouched originals (PHI), and retention deletes
    whole trees below the archive: inside the outbox they would reach its readers, inside the
    inbox they would be taken again, and an archive around another folder would have retention
    delete inputs not yet processed, outputs or the state database."""
    real = {name: Path(os.path.realpath(folder)) for name, folder in
            (("inbox", paths.inbox), ("outbox", paths.outbox), ("quarantine", paths.quarantine),
             ("state", paths.state), ("archive", paths.archive)) if folder is not None}
    for key, others in (("quarantine", ("inbox", "outbox")),
                        ("archive", ("inbox", "outbox", "quarantine"))):
        for name in others:
            a, b = real.get(key), real[name]
            if a is not None and (a.is_relative_to(b) or b.is_relative_to(a)):
                raise ConfigError(f"{source}: paths.{key}: must be apart from paths.{name} "
                                  f"(neither inside the other): {a} and {b}")
    archive = real.get("archive")
    if archive is not None and real["state"].is_relative_to(archive):
        raise ConfigError(f"{source}: paths.archive: must not be paths.state or contain it "
                          f"(retention deletes below it): {archive}")


def _resolve_paths(config: Config, base: Path) -> Config:
    p = config.paths

    def resolve(value: Path) -> Path:
        value = value.expanduser()
        return value if value.is_absolute() else (base / value)

    state = resolve(p.state)
    paths = Paths(
        inbox=resolve(p.inbox),
        outbox=resolve(p.outbox),
        quarantine=resolve(p.quarantine),
        state=state,
        archive=resolve(p.archive) if p.archive is not None else state / "archive",
    )
    deid = config.deid
    if deid.key_file is not None:
        deid = deid.model_copy(update={"key_file": str(resolve(Path(deid.key_file)))})
    log = config.log
    if log.file is not None:
        log = log.model_copy(update={"file": resolve(log.file)})
    return config.model_copy(update={"paths": paths, "deid": deid, "log": log})


def effective(config: Config) -> dict[str, Any]:
    """The configuration as it will run, for `check-config` (secrets never included)."""
    data: dict[str, Any] = config.model_dump(mode="json")
    return {"source": config.source, **data}


def diff_requires_restart(old: Config, new: Config) -> list[str]:
    """Sections a SIGHUP cannot apply to a running daemon: they move folders, rebind the metrics
    port or reopen the log, which the process configured once at start."""
    out = []
    for name in ("paths", "watch", "queue", "metrics", "log"):
        if getattr(old, name) != getattr(new, name):
            out.append(name)
    return out


def env_config_path(env: Mapping[str, str]) -> str | None:
    return env.get("DCMWATCH_CONFIG") or None
