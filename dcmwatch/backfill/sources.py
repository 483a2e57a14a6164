"""Lazy listings of a backfill's inputs: the driver never holds the whole list.

A folder is walked with `os.scandir` from an explicit stack (memory grows with the depth and the
widest folder being read, never with the number of files); an S3 prefix is listed page by page
(1000 keys at a time); a manifest is read line by line. Hidden names and symbolic links are
skipped, as the daemon skips them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from dcmwatch.backfill import locations


def iter_sources(sources: Iterable[str], manifest: str | None = None) -> Iterator[str]:
    """Every input named: files, files below folders and prefixes, then the manifest's lines."""
    for src in sources:
        if locations.is_remote(src):
            yield from _iter_s3(src)
        elif os.path.isdir(src):
            yield from _iter_folder(src)
        else:
            yield src
    if manifest is not None:
        yield from iter_manifest(manifest)


def iter_manifest(path: str) -> Iterator[str]:
    """One path or URL per line; blank lines and lines starting with '#' are skipped.

    A line's bytes that are not UTF-8 are kept as surrogate escapes, as the OS gives such names
    to Python, so a listing of a Linux archive (whose names are bytes) opens the same files.
    """
    with Path(path).open(encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            entry = line.strip()
            if entry and not entry.startswith("#"):
                yield entry


def _iter_folder(root: str) -> Iterator[str]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue  # vanished or unreadable: nothing to list (the summary counts what came)
        subdirs = []
        with entries:
            for entry in entries:
                if entry.name.startswith(".") or entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    yield entry.path
        stack.extend(sorted(subdirs, reverse=True))


def _iter_s3(url: str) -> Iterator[str]:
    """Keys below `s3://bucket/prefix`, one ListObjectsV2 page at a time."""
    fs = locations._fs(url)
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    kwargs: dict[str, str] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = fs.call_s3("list_objects_v2", **kwargs)
        for obj in page.get("Contents", []):
            key: str = obj["Key"]
            name = key.rsplit("/", 1)[-1]
            if name and not name.startswith(".") and not key.endswith("/"):
                yield f"s3://{bucket}/{key}"
        if not page.get("IsTruncated"):
            return
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
