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

from dcmwatch.deid.settings import DeidSettings
from dcmwatch.errors import ConfigError
from dcmwatch.pixels.settings import PixelRule, PixelSettings

#: Fields a layout template may use. All are values *after* de-identification (pseudonymous
#: PatientID, remapped UIDs) or carry no identity (Modality, numbers). Dates and names are not
#: offered: they would put PHI into paths if a site ever retained them.
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

    inbox: Path = Path("inbox")
    outbox: Path = Path("outbox")
    quarantine: Path = Path("quarantine")
    state: Path = Path("state")
    #: Where `on_success = "archive"` keeps processed originals (default: state/archive).
    archive: Path | None = None


class Watch(_Section):
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
    #: Worker processes. De-identification is CPU-bound Python: threads would share one core.
    count: Annotated[int, Field(ge=1, le=512)] = Field(default_factory=lambda: os.cpu_count() or 1)
    #: Files handed to the pool ahead of the idle workers, per worker (hides claim/IPC latency).
    prefetch: Annotated[int, Field(ge=1, le=64)] = 2
    #: A file whose worker died this many times is quarantined (a poison file must not loop).
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3


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
    #: Rows x Columns x Frames x samples x bits the header may declare, checked before anything
    #: is decoded or allocated (a small file may claim gigabytes of pixels).
    max_pixel_bytes: Annotated[int, Field(ge=1024)] = 2 * 1024**3
    #: Decode compressed pixel data once (each frame, discarded) so that a file whose frames
    #: cannot be decoded is quarantined instead of being passed on broken. Costs one decode.
    verify_compressed: bool = True
    #: Wall-clock seconds one file may take in a worker before it is stopped and quarantined
    #: (`time_limit`); a worker stuck in C code past the limit is ended and replaced.
    file_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0


class Log(_Section):
    #: "auto": JSON lines, or colourful console lines when stdout is a terminal.
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class Schedule(_Section):
    #: Full walk of the inbox, catching anything the kernel's events missed.
    rescan_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    heartbeat_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0


class Config(_Section):
    paths: Paths = Paths()
    watch: Watch = Watch()
    workers: Workers = Workers()
    queue: Queue = Queue()
    output: Output = Output()
    limits: Limits = Limits()
    log: Log = Log()
    schedule: Schedule = Schedule()
    deid: DeidSettings = DeidSettings()
    pixels: PixelSettings = PixelSettings()
    rules: tuple[PixelRule, ...] = ()
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
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    return _resolve_paths(config, base).model_copy(update={"source": source})


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        key = _dotted(err["loc"])
        lines.append(f"{source}: {key or '(top level)'}: {err['msg']}")
    return "\n".join(lines)


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


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
    return config.model_copy(update={"paths": paths, "deid": deid})


def effective(config: Config) -> dict[str, Any]:
    """The configuration as it will run, for `check-config` (secrets never included)."""
    data: dict[str, Any] = config.model_dump(mode="json")
    return {"source": config.source, **data}


def diff_requires_restart(old: Config, new: Config) -> list[str]:
    """Sections a SIGHUP cannot apply to a running daemon (they move folders or the pool)."""
    out = []
    for name in ("paths", "watch", "queue"):
        if getattr(old, name) != getattr(new, name):
            out.append(name)
    return out


def env_config_path(env: Mapping[str, str]) -> str | None:
    return env.get("DCMWATCH_CONFIG") or None
