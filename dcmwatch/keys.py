"""Where the de-identification key comes from (an edge: it reads files and the environment).

The key makes pseudonyms and UIDs consistent across files, restarts and machines, and makes a
re-processed file byte-identical to its first output (which is what makes crash recovery exactly
once). So a missing key is an error, not something to paper over with a random one: a random
per-run key must be asked for explicitly (`random_key = true`).

Order: a systemd credential `dcmwatch.key` in `$CREDENTIALS_DIRECTORY`, then `key_file`, then the
environment variable named by `key_env`, then `random_key`. `generate_key` creates `key_file`
(mode 0600) on first use, which is what the embedded default does so that `dcmwatch run` works
out of the box while still keeping its pseudonyms stable across restarts.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dcmwatch.deid.pseudonyms import check_key
from dcmwatch.deid.settings import DeidSettings
from dcmwatch.errors import ConfigError

CREDENTIAL_NAME = "dcmwatch.key"


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    key: bytes
    #: Where it came from, for the `daemon.started` event: never the key itself.
    origin: str


def resolve(settings: DeidSettings, env: Mapping[str, str], *, create: bool) -> ResolvedKey:
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / CREDENTIAL_NAME
        if cred.exists():
            return ResolvedKey(_read_key_file(cred, check_mode=False), "systemd-credential")
    if settings.key_file is not None:
        path = Path(settings.key_file)
        if path.exists():
            return ResolvedKey(_read_key_file(path, check_mode=True), "key_file")
        if settings.generate_key:
            if not create:
                return ResolvedKey(b"\0" * 32, "key_file (generated at first run)")
            return ResolvedKey(_generate(path), "key_file (generated)")
    if settings.key_env and env.get(settings.key_env):
        return ResolvedKey(_decode(env[settings.key_env], settings.key_env), "env")
    if settings.random_key:
        return ResolvedKey(secrets.token_bytes(32), "random (per run)")
    raise ConfigError(
        "no de-identification key: set deid.key_file, the environment variable named by "
        "deid.key_env, a systemd credential 'dcmwatch.key', or deid.random_key = true"
    )


def _read_key_file(path: Path, *, check_mode: bool) -> bytes:
    try:
        st = path.stat()
        if check_mode and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path}: the key file is readable by group or others; chmod 600 it"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the key file ({exc.strerror})") from None
    return _decode(raw.decode("ascii", errors="replace").strip(), str(path))


def _decode(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError:
            key = text.encode()
    return check_key(key, source=where)


def _generate(path: Path) -> bytes:
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _read_key_file(path, check_mode=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the key file ({exc.strerror})") from None
    try:
        os.write(fd, key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
