"""Whole-slide microscopy labels and overviews (issue 21, point 3): `[pixels] slide_label`.

A generated tiled pyramid (three VOLUME levels), its LABEL and its OVERVIEW go through the real
core under each policy; the lying variants (no claims, a label that says VOLUME, one that even
says its label is not in the image) are caught by the imaged area. VOLUME tiles come out with
their pixel bytes unchanged, read back by pydicom (not our writer's reader).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dcmwatch import cli, pipeline
from dcmwatch import config as config_mod
from dcmwatch.config import Config
from dcmwatch.errors import ConfigError, WithheldError
from dcmwatch.pixels import slide
from dcmwatch.pixels.errors import SlideLabelError, SlideLabelWithheld
from dcmwatch.testing import wsi
from tests.conftest import KEY_HEX, write_config


def _config(tmp_path: Path, policy: str | None) -> Config:
    extra = "" if policy is None else f'[pixels]\nslide_label = "{policy}"\n'
    return config_mod.load(write_config(tmp_path, extra)).with_secret(bytes.fromhex(KEY_HEX))


def _pixels(data: bytes | bytearray) -> bytes:
    value = pydicom.dcmread(io.BytesIO(bytes(data))).PixelData
    assert isinstance(value, bytes)
    return value


def test_the_default_is_quarantine(tmp_path: Path) -> None:
    assert _config(tmp_path, None).pixels.slide_label == "quarantine"


def test_an_unknown_policy_is_refused_by_its_dotted_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pixels\.slide_label"):
        _config(tmp_path, "blur")


@pytest.mark.parametrize("policy", ["quarantine", "drop", "keep"])
def test_each_policy_on_a_tiled_pyramid_with_label_and_overview(
    tmp_path: Path, policy: str
) -> None:
    cfg = _config(tmp_path, policy)
    images = wsi.slide_set()
    assert [i.kind for i in images] == ["VOLUME"] * 3 + ["LABEL", "OVERVIEW"]
    for image in images:
        if image.kind == "VOLUME" or policy == "keep":
            result = pipeline.process_bytes(image.data, cfg)
            assert _pixels(result.data) == _pixels(image.data)
            continue
        expected = SlideLabelWithheld if policy == "drop" else SlideLabelError
        with pytest.raises(expected) as caught:
            pipeline.process_bytes(image.data, cfg)
        err = caught.value
        assert err.reason == ("slide_label_withheld" if policy == "drop" else "slide_label")
        assert isinstance(err, WithheldError) == (policy == "drop")
        assert wsi.PATIENT_NAME not in str(err) and wsi.PATIENT_ID not in str(err)


@pytest.mark.parametrize("variant", ["no_claims", "claims_volume", "claims_volume_no_flag"])
def test_labels_that_lie_about_what_they_are_are_caught(variant: wsi.Variant) -> None:
    for image in wsi.slide_set(levels=2, variant=variant):
        ds = pydicom.dcmread(io.BytesIO(image.data))
        reason = slide.label_reason(ds)
        assert (reason is None) == (image.kind == "VOLUME"), (image.kind, reason)


def _volume() -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(wsi.slide_set(levels=1)[0].data))


def test_a_volume_without_an_imaged_area_is_taken_for_a_label() -> None:
    ds = _volume()
    assert slide.label_reason(ds) is None
    del ds.ImagedVolumeWidth, ds.ImagedVolumeHeight
    assert slide.label_reason(ds) is None  # the total pixel matrix times the spacing says it
    del ds.SharedFunctionalGroupsSequence
    assert slide.label_reason(ds) == "the imaged area is not in the header"


@pytest.mark.parametrize(("width", "height", "reason"), [
    (24.0, 50.0, None),
    (24.5, 30.0, "the imaged area is wider than a coverslip"),
    (20.0, 60.0, "the imaged area reaches the label end of the slide"),
])
def test_a_volume_the_size_of_the_slide_is_taken_for_an_overview(
    width: float, height: float, reason: str | None
) -> None:
    ds = _volume()
    ds.ImagedVolumeWidth, ds.ImagedVolumeHeight = width, height
    assert slide.label_reason(ds) == reason


def test_other_images_are_no_slides() -> None:
    for name in ("CT_small.dcm", "SC_rgb_small_odd.dcm"):
        ds = pydicom.dcmread(str(get_testdata_file(name)))
        assert slide.label_reason(ds) is None
    ds = pydicom.dcmread(str(get_testdata_file("SC_rgb_small_odd.dcm")))
    ds.Modality = "SM"  # a slide label exported as another SOP class
    assert slide.label_reason(ds) == "Image Type does not say VOLUME or THUMBNAIL"


def test_a_large_volume_streams_in_its_own_buffer(tmp_path: Path) -> None:
    """A VOLUME level read as a large file is (point 1) processed in place."""
    volume = wsi.slide_set(levels=1)[0]
    result = pipeline.process_bytes(bytearray(volume.data), _config(tmp_path, None))
    assert isinstance(result.data, bytearray)
    assert _pixels(result.data) == _pixels(volume.data)


def test_dcmwatch_process_quarantines_the_label_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i, image in enumerate(wsi.slide_set(levels=2)):
        (src / f"{i}.dcm").write_bytes(image.data)
    cfg = str(write_config(tmp_path))
    assert cli.main(["process", "--config", cfg, str(src)], env={}) == 1
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()
              if line.startswith("{")]
    files = [e for e in events if e["event"].startswith("file.")]
    assert sorted(e["event"] for e in files) == ["file.processed"] * 2 + ["file.quarantined"] * 2
    for event in files:
        if event["event"] == "file.quarantined":
            assert event["reason"] == "slide_label"
            sidecar = tmp_path / "quarantine" / f"{event['claim_id']}.json"
            assert json.loads(sidecar.read_text())["reason"] == "slide_label"
    assert len(list((tmp_path / "outbox").rglob("*.dcm"))) == 2


def test_the_docs_say_what_happens_to_labels() -> None:
    """Each policy and reason code is in the page README links to, and the README links it."""
    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "whole-slide.md").read_text()
    for word in ("`quarantine`", "`drop`", "`keep`", "`slide_label`", "`slide_label_withheld`",
                 f"{slide.COVERSLIP_MAX_MM:g} mm", f"{slide.SCAN_MAX_MM:g} mm"):
        assert word in page, word
    assert "docs/whole-slide.md" in (root / "README.md").read_text()
