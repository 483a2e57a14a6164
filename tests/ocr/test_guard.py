"""The guard in the pipeline, with each installed engine, on synthetic banners and bundled images.

Acceptance of issue 10: banners of name, ID and birth date in MONOCHROME2, MONOCHROME1, RGB,
YBR_FULL and multi-frame images (8 and 16 bits) are quarantined (or redacted, by policy) with
the right reason; a mask rule over the banner lets the same images pass; images without text
pass; allowed text passes; bundled CT and MR images give no finding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pydicom
import pytest

from dcmwatch.errors import InputError
from dcmwatch.ocr import BurnedInTextError, OcrTimeoutError, collect
from dcmwatch.ocr.step import read_image
from dcmwatch.testing.banners import Banner, banner_dataset, banner_text

from ._support import ENGINES, leaked, make_config, read_output, run

FORMATS = [
    pytest.param({"photometric": "MONOCHROME2", "bits": 8}, id="mono2-8"),
    pytest.param({"photometric": "MONOCHROME2", "bits": 16}, id="mono2-16"),
    pytest.param({"photometric": "MONOCHROME1", "bits": 16}, id="mono1-16"),
    pytest.param({"photometric": "MONOCHROME1", "bits": 8}, id="mono1-8"),
    pytest.param({"photometric": "RGB", "bits": 8}, id="rgb-8"),
    pytest.param({"photometric": "RGB", "bits": 16}, id="rgb-16"),
    pytest.param({"photometric": "YBR_FULL", "bits": 8}, id="ybr-8"),
    pytest.param({"photometric": "MONOCHROME2", "bits": 8, "frames": 3}, id="multiframe-8"),
]
BANNER = Banner(banner_text(style=0), size=18, position="top-left")
#: The banner plate of BANNER at the top left, generously.
BANNER_RECT = [0, 0, 480, 40]
MEASUREMENT = Banner("Gain 60 dB  12.5 cm", size=18, position="bottom-left")
ALLOW = [r"^\d+(\.\d+)?\s*(cm|mm|Hz|dB|%)$", r"^(Gain|Depth)$"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_banner_is_quarantined_as_burned_in_text(engine: str, fmt: dict[str, Any]) -> None:
    ds = banner_dataset(BANNER, **fmt)
    with pytest.raises(BurnedInTextError) as err:
        run(ds, make_config(engine))
    assert err.value.reason == "burned_in_text"
    classes = {c for f in err.value.findings for c in f.classes}
    assert {"patient_name", "patient_id", "birth_date"} <= classes
    assert leaked(str(err.value)) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_redact_fills_the_boxes_and_makes_a_new_instance(engine: str, fmt: dict[str, Any]) -> None:
    ds = banner_dataset(BANNER, **fmt)
    config = make_config(engine, policy="redact", frames="all")
    result = run(ds, config)
    assert result.findings and all(f.redacted for f in result.findings)
    out = read_output(result)
    assert out.SOPInstanceUID != ds.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.ImageType[0] == "DERIVED"
    assert out.BurnedInAnnotation == "NO"
    # Read again: nothing identifying is left in any frame.
    settings = config.ocr.model_copy(update={"frames": "all"})
    _, again = read_image(out, collect(ds), settings, 2**31)
    assert [f for f in again if set(f.classes) - {"text"}] == []


def test_redact_leaves_burned_in_annotation_when_frames_went_unread(engine: str) -> None:
    ds = banner_dataset(BANNER, frames=3)
    result = run(ds, make_config(engine, policy="redact", frames="first"))
    out = read_output(result)
    assert out.BurnedInAnnotation == "YES"
    # Every frame is painted all the same: a banner sits in the same place on each.
    arr = out.pixel_array
    x, y, w, h = result.findings[0].box
    assert all(int(arr[f, y : y + h, x : x + w].max()) <= 1 for f in range(3))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_mask_rule_over_the_banner_lets_it_pass(engine: str, fmt: dict[str, Any]) -> None:
    rules = [{"name": "echo-banner", "match": {"Manufacturer": "ACME*"},
              "actions": [{"type": "mask", "rects": [BANNER_RECT]}]}]
    result = run(banner_dataset(BANNER, **fmt), make_config(engine, rules=rules, frames="all"))
    assert result.findings == ()
    assert result.rules == ("echo-banner",)


@pytest.mark.parametrize("fmt", FORMATS)
def test_images_without_text_pass_untouched(engine: str, fmt: dict[str, Any]) -> None:
    ds = banner_dataset(None, **fmt)
    result = run(ds, make_config(engine, frames="all"))
    assert result.findings == ()
    out = read_output(result)
    assert np.array_equal(out.pixel_array, ds.pixel_array)


def test_allowed_text_passes_and_other_text_does_not(engine: str) -> None:
    ds = banner_dataset(MEASUREMENT)
    assert run(ds, make_config(engine, allow=ALLOW)).findings == ()
    with pytest.raises(BurnedInTextError) as err:
        run(ds, make_config(engine))
    assert {c for f in err.value.findings for c in f.classes} == {"text"}


def test_flag_lets_the_file_through_unchanged_with_findings(engine: str) -> None:
    ds = banner_dataset(BANNER)
    result = run(ds, make_config(engine, policy="flag"))
    assert result.findings and not any(f.redacted for f in result.findings)
    assert np.array_equal(read_output(result).pixel_array, ds.pixel_array)


def test_a_timeout_quarantines_with_its_own_reason(engine: str) -> None:
    with pytest.raises(OcrTimeoutError) as err:
        run(banner_dataset(BANNER), make_config(engine, time_limit_seconds=1e-9))
    assert isinstance(err.value, InputError)
    assert err.value.reason == "ocr_timeout"


def test_ct_is_never_read_by_default(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dcmwatch.ocr import scan

    def explode(*_: Any, **__: Any) -> Any:
        raise AssertionError("OCR ran on a CT image")

    monkeypatch.setattr(scan, "engine_for", explode)
    ds = banner_dataset(BANNER, modality="CT")
    del ds.BurnedInAnnotation
    assert run(ds, make_config(engine)).findings == ()


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm",
                                  "MR_small_bigendian.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "liver_1frame.dcm"])
def test_no_false_finding_on_bundled_ct_and_mr(engine: str, name: str) -> None:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} is not bundled")
    ds = pydicom.dcmread(path)
    settings = make_config(engine, modalities=["CT", "MR", "OT"], frames="all").ocr
    _, findings = read_image(ds, collect(ds), settings, 2**31)
    assert findings == ()


def test_redact_all_removes_allowed_text_too(engine: str) -> None:
    """redact leaves allowed text (a measurement) alone; redact_all paints it, and the pixels
    under the measurement change."""
    ds = banner_dataset(MEASUREMENT)
    kept = run(ds, make_config(engine, policy="redact", allow=ALLOW))
    assert kept.findings == ()
    assert np.array_equal(read_output(kept).pixel_array, ds.pixel_array)
    result = run(ds, make_config(engine, policy="redact_all", allow=ALLOW))
    assert result.findings and all(f.redacted for f in result.findings)
    out = read_output(result)
    assert out.BurnedInAnnotation == "NO"
    rows = ds.Rows
    # The measurement sits at the bottom left: its rows no longer hold its bright strokes.
    assert int(out.pixel_array[rows - 40 :, :300].max()) < int(ds.pixel_array[rows - 40 :, :300].max())
