"""Where a backfill reads and writes: local/NFS folders or S3-compatible URLs (through fsspec).

One small surface, so the worker code is the same for both: read an input whole, write an output
whole, copy an original into quarantine. Local writes are the daemon's durable writes (temp name
in the same folder, fsync, rename, fsync the folder); an S3 write is one whole-object PUT, which
S3 makes visible atomically, so a reader never sees half a file and a recomputation simply
replaces the object with identical bytes. Credentials and endpoints come from the standard AWS
environment and config files (botocore's chain): nothing here reads or logs them.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from dcmwatch import store
from dcmwatch.errors import (
    EmptyFileError,
    InputError,
    OutputError,
    TooLargeError,
    TransientError,
)

REMOTE_PREFIXES = ("s3://",)


def is_remote(url: str) -> bool:
    return url.startswith(REMOTE_PREFIXES)


def join(root: str, relpath: str) -> str:
    if is_remote(root):
        return root.rstrip("/") + "/" + relpath
    return str(Path(root) / relpath)


def _fs(url: str) -> Any:
    import fsspec  # noqa: PLC0415 - only remote runs need it (the [cluster] extra)

    fs, _ = fsspec.core.url_to_fs(url)
    return fs


def read(url: str, *, max_bytes: int) -> bytes | bytearray:
    """The input's bytes, or an `InputError`/`TransientError` saying why not (PHI-free)."""
    if not is_remote(url):
        return store.read_input(url, max_bytes=max_bytes, allow_hardlinks=True).data
    fs = _fs(url)
    try:
        data: bytes = fs.cat_file(url, start=0, end=max_bytes + 1)
    except FileNotFoundError:
        raise InputError("the input object is gone") from None
    except PermissionError:
        raise TransientError("access to the input object was denied") from None
    except OSError as exc:
        if exc.errno == errno.EINVAL and _is_empty(fs, url):
            raise EmptyFileError("the file is empty") from None
        raise TransientError(f"cannot read the input object ({type(exc).__name__})") from None
    except Exception as exc:  # network, throttling: the world, not the input
        raise TransientError(f"cannot read the input object ({type(exc).__name__})") from None
    if len(data) > max_bytes:
        raise TooLargeError("the file is larger than limits.max_file_bytes")
    if not data:
        raise EmptyFileError("the file is empty")
    return data


def _is_empty(fs: Any, url: str) -> bool:
    """Whether the object has no bytes. S3 (AWS, SeaweedFS) answers a ranged GET of an empty
    object with 416 InvalidRange, which s3fs raises as EINVAL: without this look, an empty
    object would fail as transient on every run instead of being quarantined as empty, as an
    empty local file is. Asked only on that error, so a readable object costs one request."""
    try:
        size: int | None = fs.size(url)
    except Exception:  # the look failed: keep the read's transient failure
        return False
    return size == 0


def write(root: str, relpath: str, data: bytes | bytearray, *, tag: str, mode: int) -> None:
    """Put `data` at `root/relpath`: durable rename locally, one whole-object PUT on S3."""
    if not is_remote(root):
        base = Path(root).resolve()
        dest = (base / relpath).resolve()
        if base not in dest.parents:
            raise OutputError("the output path would leave the outbox")
        store.write_durable(dest, data, tag=tag, mode=mode)
        return
    try:
        _fs(root).pipe_file(join(root, relpath), data)
    except Exception as exc:
        raise TransientError(f"cannot write the output object ({type(exc).__name__})") from None


def quarantine(source: str, root: str, name: str, sidecar: dict[str, Any], *, mode: int) -> None:
    """Copy the untouched original to `root/name.dcm` with `name.json` beside it.

    The original is copied, never moved or parsed (a backfill never modifies its inputs), so
    the driver may call this too, for a file that killed its workers.
    """
    body = json.dumps(sidecar, indent=2, sort_keys=True).encode() + b"\n"
    if not is_remote(source) and not is_remote(root):
        store.quarantine(Path(source), Path(root), name, sidecar, mode=mode, keep_source=True)
        return
    write(root, f"{name}.json", body, tag=f"{name}.json", mode=mode)
    write(root, f"{name}.dcm", _read_raw(source), tag=name, mode=mode)


def _read_raw(url: str) -> bytes:
    if not is_remote(url):
        try:
            return store.read_input_unchecked(Path(url))
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, "unknown")
            raise TransientError(f"cannot read the input for quarantine ({name})") from None
    try:
        data: bytes = _fs(url).cat_file(url)
    except FileNotFoundError:
        return b""
    except Exception as exc:
        raise TransientError(f"cannot read the input object ({type(exc).__name__})") from None
    return data
