"""Test helpers shipped with the package, so unit, integration and benchmark code share one source of fake patients."""  # noqa: E501

from dcmwatch.testing.synth import (
    MARKERS,
    PRIVATE_CREATOR,
    PRIVATE_GROUP,
    PhiMarkers,
    ct_series,
    ct_series_bytes,
    find_markers,
    to_bytes,
    write_series,
)

__all__ = [
    "MARKERS",
    "PRIVATE_CREATOR",
    "PRIVATE_GROUP",
    "PhiMarkers",
    "ct_series",
    "ct_series_bytes",
    "find_markers",
    "to_bytes",
    "write_series",
]
