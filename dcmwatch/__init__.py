"""dcmwatch: a watch-folder daemon that de-identifies DICOM files durably and fast.

Importing the package changes nothing outside it: no other package's module is replaced or
preloaded, so a process that imports dcmwatch (a Dask worker, a notebook) keeps the libraries
it had.
"""

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """`__version__` on first use: importlib.metadata brings the email package (2 MB), which
    a worker process never needs."""
    if name != "__version__":
        raise AttributeError(f"module 'dcmwatch' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        found = version("dcmwatch")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
