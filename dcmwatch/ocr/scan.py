"""One reading of an image, shared by the guard and every tool an operator looks at.

`scan` renders the chosen frames, reads them with the configured engine (the frame as it is, then
cleaned views while nothing is found: `dcmwatch.ocr.preprocess`) and classifies the lines against
the original header's values. The guard acts on its findings; ``dcmwatch preview`` and
``dcmwatch suggest-masks`` show and propose from the very same call (same engine, thresholds,
allow patterns, preprocessing), so what an operator sees cannot differ from what the guard does.
`Scan.regions` is where a redaction paints (`dcmwatch.ocr.regions`): whole lines and blocks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydicom.dataset import Dataset

from dcmwatch.errors import DcmwatchError
from dcmwatch.ocr.engines import Box, Engine, TextLine, engine_for
from dcmwatch.ocr.errors import OcrEngineError
from dcmwatch.ocr.findings import OTHER_TEXT, Finding, flag_lines
from dcmwatch.ocr.identifiers import IdentifyingValues
from dcmwatch.ocr.preprocess import View, read_frame
from dcmwatch.ocr.regions import blocks, merge, pad_block
from dcmwatch.ocr.render import Image8, render_frames
from dcmwatch.ocr.settings import OcrSettings

__all__ = ["FrameText", "Scan", "scan"]


@dataclass(frozen=True, slots=True)
class FrameText:
    """What was read in one frame: every line, and the findings of the lines holding any."""

    #: 1-based frame number.
    frame: int
    lines: tuple[TextLine, ...]
    #: (index into ``lines``, the line's finding).
    flagged: tuple[tuple[int, Finding], ...]


@dataclass(frozen=True, slots=True)
class Scan:
    #: Frames in the image (read or not).
    total: int
    frames: tuple[FrameText, ...]
    #: When the image's time is up (`time.monotonic`): grouping the lines into regions counts
    #: against it too, as a cine loop brings its banner once a frame.
    deadline: float | None = None

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for frame in self.frames for _, f in frame.flagged)

    def regions(self, pad: int, rows: int, columns: int) -> tuple[Box, ...]:
        """Rectangles a redaction fills on every frame: each block holding a finding, padded.

        The lines of every frame read form the blocks together: a banner sits in the same place
        on every frame, and the piece of it one frame's reading missed, another's may have.
        Raises `OcrTimeoutError` when the image's time runs out while grouping them."""
        lines: list[Box] = []
        seeds: list[int] = []
        for frame in self.frames:
            seeds.extend(len(lines) + i for i, _ in frame.flagged)
            lines.extend(line.box for line in frame.lines)
        padded = [pad_block(block, height, pad, rows, columns)
                  for block, height in blocks(lines, seeds, deadline=self.deadline)]
        return merge([b for b in padded if b is not None], 0, rows, columns)

    def read_all(self) -> bool:
        """Every frame of the image was read."""
        return len(self.frames) >= self.total


def scan(
    ds: Dataset, ids: IdentifyingValues, settings: OcrSettings, max_pixel_bytes: int, *,
    only: int | None = None, deadline: float | None = None,
) -> Scan:
    """Read the frames ``settings.frames`` chooses (or the 0-based frame ``only``) of ``ds`` as
    it is, and classify every line against ``ids``. ``deadline`` (`time.monotonic`): when
    the image's time is up, by default ``settings.time_limit_seconds`` from now.

    Raises `OcrTimeoutError` beyond ``settings.time_limit_seconds``, `OcrEngineError` when the
    engine fails (with a message of ours: an engine's own could quote what it read).
    """
    if deadline is None:
        deadline = time.monotonic() + settings.time_limit_seconds
    engine = engine_for(settings)
    total, images = render_frames(ds, settings.frames, max_pixel_bytes, only=only)
    everything = settings.policy == "redact_all"
    frames = []
    for index, image in images:
        frames.append(_read_frame(engine, image, deadline, ids, settings, index + 1,
                                  everything=everything))
    return Scan(total, tuple(frames), deadline)


def _read_frame(
    engine: Engine, image: Image8, deadline: float, ids: IdentifyingValues,
    settings: OcrSettings, frame: int, *, everything: bool,
) -> FrameText:
    """The frame as it is, then its cleaned views until one gives a finding
    (`dcmwatch.ocr.preprocess`). The lines of every view read make up the blocks: a line one
    view missed another may have read."""
    seen: list[TextLine] = []
    flagged: list[tuple[int, Finding]] = []

    def judge(lines: tuple[TextLine, ...], view: View) -> list[Finding]:
        found = flag_lines(lines, ids, settings, frame=frame, everything=everything)
        if view.name != "as-is":
            # A cleaned view turns speckle into confident nonsense now and then: there, only a
            # header value is evidence.
            found = [(i, f) for i, f in found if f.classes != (OTHER_TEXT,)]
        flagged.extend((len(seen) + i, f) for i, f in found)
        seen.extend(lines)
        return [f for _, f in found]

    try:
        read_frame(engine, image, deadline, judge)
    except DcmwatchError:
        raise
    except Exception as exc:  # an engine's message could quote what it read
        raise OcrEngineError(f"the OCR engine failed ({type(exc).__name__})") from None
    return FrameText(frame, tuple(seen), tuple(flagged))
