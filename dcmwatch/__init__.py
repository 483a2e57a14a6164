"""dcmwatch: a watch-folder daemon that de-identifies DICOM files durably and fast."""

from importlib.metadata import PackageNotFoundError, version

from dcmwatch import _lazy

_lazy.defer_unused()  # before anything imports pydicom

try:
    __version__ = version("dcmwatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
