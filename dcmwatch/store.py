"""Files on disk: reading inputs safely, writing outputs durably, claiming and quarantining.

The maildir discipline, because "never lose a file" is the second promise: a result is written
to a temporary name in its destination folder, fsynced, renamed over its final name and the
folder fsynced; only then may the input go. Inputs are opened with O_NOFOLLOW|O_NONBLOCK and
checked with fstat, so a symlink, FIFO or device dropped into the inbox is never followed, never
blocks, never read.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcmwatch.errors import (
    EmptyFileError,
    InputError,
    NotRegularFileError,
    OutputError,
    TooLargeError,
    TransientError,
)

#: errnos that mean "the world is in the way, try again later", not "the input is bad".
TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EACCES, errno.EPERM, errno.EROFS,
     errno.EAGAIN, errno.EBUSY, errno.ENFILE, errno.EMFILE, errno.ESTALE, errno.ENOMEM}
)
TMP_SUFFIX = ".dcmwatch-tmp"
#: The daemon's work area inside the inbox, used when `[paths] state` is on another filesystem
#: (a claim is a rename). Hidden: intake never takes anything below it.
WORK_DIR_NAME = ".dcmwatch-work"


#: Inputs at least this large are read into a bytearray the core may edit in place and write
#: back from (`dcmwatch.inplace`): one buffer for input and output, instead of several copies.
#: Smaller files stay immutable bytes, which pydicom reads without a copy.
IN_PLACE_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class InputBytes:
    #: bytes, or for a large file a bytearray the caller hands on to `process_bytes` (which
    #: may turn it into the output: nobody must use it afterwards).
    data: bytes | bytearray
    size: int
    mtime_ns: int


def read_input(path: str | os.PathLike[str], *, max_bytes: int,
               allow_hardlinks: bool = False) -> InputBytes:
    """Read a regular, singly-linked file whole, or raise an `InputError` saying why not.

    A hard link dropped into the inbox could expose a file its dropper cannot read; batch mode,
    where the operator names the inputs, allows them.
    """
    try:
        # Not even opened unless it is a regular file: opening a device can act on it (a tape
        # rewinds). fstat after the open still decides (the name may be swapped in between).
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise NotRegularFileError("a symbolic link or special file, not read")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise NotRegularFileError("a symbolic link or special file, not read") from None
        name = errno.errorcode.get(exc.errno or 0, "unknown")
        if exc.errno in TRANSIENT_ERRNOS:
            raise TransientError(f"cannot open the input ({name})") from None
        raise InputError(f"cannot open the input ({name})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFileError("not a regular file, not read")
        if st.st_nlink > 1 and not allow_hardlinks:
            raise NotRegularFileError("a hard link to another file, not read")
        if st.st_size == 0:
            raise EmptyFileError("the file is empty")
        if st.st_size > max_bytes:
            raise TooLargeError("the file is larger than limits.max_file_bytes")
        if st.st_size >= IN_PLACE_BYTES:
            data: bytes | bytearray = _read_into(fd, st.st_size, max_bytes)
        else:
            data = _read_all(fd, st.st_size, max_bytes)
        return InputBytes(data, len(data), st.st_mtime_ns)
    finally:
        os.close(fd)


def _read_all(fd: int, size_hint: int, max_bytes: int) -> bytes:
    chunks = []
    total = 0
    want = size_hint
    while True:
        chunk = os.read(fd, max(want, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise TooLargeError("the file is larger than limits.max_file_bytes")
        want = 1 << 16
    if total == 0:
        raise EmptyFileError("the file is empty")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_into(fd: int, size_hint: int, max_bytes: int) -> bytearray:
    """The whole file in one bytearray, read in place (no chunk list, no join)."""
    buf = bytearray(size_hint)
    view = memoryview(buf)
    total = 0
    while total < size_hint:
        n = os.readv(fd, [view[total:]])
        if not n:
            break
        total += n
    view.release()
    if total < size_hint:  # the file shrank while it was read
        del buf[total:]
    while chunk := os.read(fd, 1 << 16):  # or grew
        buf += chunk
        if len(buf) > max_bytes:
            raise TooLargeError("the file is larger than limits.max_file_bytes")
    if not buf:
        raise EmptyFileError("the file is empty")
    return buf


def fsync_dir(path: str | os.PathLike[str]) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path, mode: int = 0o750) -> None:
    """mkdir -p, fsyncing each parent that gained an entry so the new folder survives a crash."""
    missing = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=mode)
        except FileExistsError:
            continue
        fsync_dir(d.parent)


def write_durable(dest: Path, data: bytes | bytearray, *, tag: str, mode: int = 0o640) -> None:
    """Atomically replace `dest` with `data`: tmp in the same folder, fsync, rename, fsync dir.

    `tag` names the temporary file (`.<tag>.dcmwatch-tmp`): a retry of the same work item uses the
    same name and so removes a partial file a killed worker left behind.
    """
    commit(write_unsynced(dest, data, tag=tag, mode=mode), dest)


def write_unsynced(dest: Path, data: bytes | bytearray, *, tag: str,
                   mode: int = 0o640) -> Path:
    """The first half of `write_durable`: `data` in the hidden temporary file beside `dest`,
    neither synced nor visible. The daemon's workers stop here and hand the wait for the disk
    (`commit`) to the main process's I/O threads, so a worker's core never idles on fsync."""
    tmp = dest.parent / f".{tag}{TMP_SUFFIX}"
    try:
        ensure_dir(dest.parent, _dir_mode(mode))
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, mode)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _output_error(exc, "write the output") from None
    return tmp


def commit(tmp: Path, dest: Path) -> None:
    """The second half: fsync the temporary file, rename it over `dest`, fsync the folder. Only
    then is the output durable (and only then may its input go)."""
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _output_error(exc, "write the output") from None


def _output_error(exc: OSError, what: str) -> OutputError:
    name = errno.errorcode.get(exc.errno or 0, "unknown")
    if exc.errno in TRANSIENT_ERRNOS:
        return TransientError(f"cannot {what} ({name})")
    return OutputError(f"cannot {what} ({name})")


def _dir_mode(file_mode: int) -> int:
    return file_mode | ((file_mode & 0o444) >> 2)


def claim(src: Path, work: Path) -> os.stat_result:
    """Move an inbox file into the work area (atomic rename, same filesystem); return its lstat.

    A rename never opens the file, so it is safe for symlinks and FIFOs too: they are claimed
    like anything else and refused by `read_input`.
    """
    st = os.lstat(src)
    os.rename(src, work)
    return st


def unclaim(work: Path, src: Path) -> bool:
    """Give a claimed file back to its inbox name, unless something new took that name."""
    try:
        # A rename, not a link, wherever the filesystem can: with fs.protected_hardlinks (the
        # default) linking another user's file that we may not write fails.
        rename_noreplace(work, src)
    except OSError:  # a new file took the name, or its folder is gone
        return False
    fsync_dir(src.parent)
    return True


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def quarantine(work: Path, dest_dir: Path, name: str, sidecar: dict[str, Any], *,
               mode: int = 0o640, keep_source: bool = False) -> Path:
    """Put the untouched original at `dest_dir/name.dcm` with `name.json` beside it.

    The sidecar is written first, then the original; a crash between the two leaves the work
    item in place, so it is quarantined again under the same name. With `keep_source` (batch
    mode) the original is copied, never moved.
    """
    ensure_dir(dest_dir, _dir_mode(mode))
    body = json.dumps(sidecar, indent=2, sort_keys=True).encode() + b"\n"
    write_durable(dest_dir / f"{name}.json", body, tag=f"{name}.json", mode=mode)
    target = dest_dir / f"{name}.dcm"
    st = os.lstat(work)
    if not keep_source and (not stat.S_ISREG(st.st_mode) or st.st_nlink > 1):
        # A link, FIFO or device, or a hard link to a file elsewhere: moved as it is, the
        # quarantine would hand whoever reads it the other file (or block them on a FIFO).
        # An empty placeholder takes its place; the thing itself is removed unread.
        write_durable(target, b"", tag=name, mode=mode)
        work.unlink()
        return target
    move_durable(work, target, tag=name, mode=mode, keep_source=keep_source)
    return target


def move_durable(src: Path, dest: Path, *, tag: str, mode: int = 0o640,
                 keep_source: bool = False) -> None:
    """Move (or copy, with `keep_source`) a file so that `dest` is durable before `src` goes.

    A rename when both share a filesystem; else a durable copy, then the unlink. A link or
    special file is never read: an empty placeholder takes its place.
    """
    st = os.lstat(src)
    if not keep_source and _same_device(st, dest.parent) and _ours(st):
        if stat.S_ISREG(st.st_mode):
            # A rename keeps the dropper's mode (often 0644): a quarantined or archived original
            # holds PHI and must get our restrictive mode, before it appears under its new name.
            os.chmod(src, mode)
        os.replace(src, dest)
        fsync_dir(dest.parent)
        return
    # Another user's file (a sender writing into the setgid inbox) may be renamed and unlinked
    # (the folder is ours) but not chmodded: its content goes into a new file we create with
    # our mode, so the quarantine or archive never holds a file we cannot govern.
    data = read_input_unchecked(src) if stat.S_ISREG(st.st_mode) else b""
    write_durable(dest, data, tag=tag, mode=mode)
    if not keep_source:
        src.unlink()
        fsync_dir(src.parent)  # as the rename above: the original must not come back


def read_input_unchecked(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return _read_all(fd, os.fstat(fd).st_size, 1 << 62)
    except EmptyFileError:
        return b""
    finally:
        os.close(fd)


def _ours(st: os.stat_result) -> bool:
    """Whether this process owns the file: only then may it change the file's mode. Root is no
    exception, because a service may run as root without CAP_FOWNER."""
    return st.st_uid == os.geteuid() or not stat.S_ISREG(st.st_mode)


def _same_device(st: os.stat_result, folder: Path) -> bool:
    return os.stat(folder).st_dev == st.st_dev


def same_filesystem(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_noreplace(src: Path, dest: Path) -> None:
    """Rename `src` to `dest`, failing with FileExistsError rather than replacing anything.

    renameat2(RENAME_NOREPLACE) where the kernel and filesystem have it; else a hard link (which
    refuses an existing name) and an unlink, in which case `dest` briefly has two links; else,
    for another user's file that may not be linked, a look and a rename.
    """
    from dcmwatch import libc  # noqa: PLC0415 - ctypes only when a file moves back

    fn = libc.function("renameat2")
    if fn is not None:
        rc = fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dest), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = libc.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, "name taken")
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err))
    try:
        os.link(src, dest, follow_symlinks=False)
    except PermissionError:
        # fs.protected_hardlinks refuses to link another user's file that we may not write (a
        # sender's): look, then rename. A name taken in the microseconds between would be
        # replaced; on these filesystems that is the best there is.
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "name taken") from None
        os.rename(src, dest)
        return
    try:
        os.unlink(src)
    except OSError:
        os.unlink(dest)  # never the same file under both names: it would be taken twice
        raise
