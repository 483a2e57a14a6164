"""Metadata inside compressed Pixel Data: what a stream carries besides the image, removed.

`clean_pixel_data(ds)` runs on every output (`dcmwatch.pipeline`), after the pixel rules and the
burned-in text guard, so a file no rule matches and a frame our own encoder wrote are cleaned
alike. `encapsulated` finds the frames and rebuilds the offset tables; `jpeg` (JPEG and JPEG-LS),
`j2k` (JPEG 2000, HTJ2K, the JP2 wrapper) and `rle` walk one frame each; `report` counts what
went, for the log.
"""

from dcmwatch.pixels.streams.encapsulated import clean_pixel_data
from dcmwatch.pixels.streams.report import StreamReport

__all__ = ["StreamReport", "clean_pixel_data"]
