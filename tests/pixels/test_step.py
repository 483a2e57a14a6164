"""make_pixel_step over pydicom's bundled images of every format, and its policies."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from dcmwatch.errors import TransformError
from dcmwatch.pixels import (
    BurnedInAnnotationError,
    PixelDataTooLargeError,
    PixelsApplied,
    PixelSettings,
    UnsupportedPixelsError,
    codec,
)

from ._support import (
    NEW_UID,
    decode,
    pixel_step_for,
    read,
    roundtrip,
    rule,
    step_for,
    synthetic,
)

NATIVE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
          DeflatedExplicitVRLittleEndian}
LOSSLESS = {RLELossless, JPEGLSLossless, JPEG2000Lossless}

#: Every bundled image format dcmwatch must handle (the issue's list, by the names this pydicom
#: ships; missing ones of the brief are replaced by the nearest bundled equivalent).
FORMATS = [
    "CT_small.dcm",  # 16-bit signed, rescale to HU
    "MR_small.dcm",
    "MR_small_bigendian.dcm",  # Explicit VR Big Endian
    "MR_small_implicit.dcm",  # Implicit VR
    "MR_small_padded.dcm",
    "MR_small_RLE.dcm",  # RLE Lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS Lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 Lossless (for MR2_J2KR / US1_J2KR)
    "JPEG2000.dcm",  # JPEG 2000 (lossy syntax)
    "JPGExtended.dcm",  # JPEG Extended, 12 bits in 16
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG Lossless process 14 (for JPEG-LL.dcm)
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG Baseline, YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+np.dcm",  # JPEG Baseline, YBR_FULL_422
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_2frame.dcm",  # multi-frame RGB (for SC_rgb_2frame.dcm)
    "SC_rgb_rle_16bit.dcm",
    "SC_rgb_rle_32bit.dcm",  # 32-bit RGB (for SC_rgb_32bit.dcm)
    "SC_rgb_small_odd.dcm",  # odd length
    "SC_rgb_small_odd_big_endian.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "SC_ybr_full_422_uncompressed.dcm",  # native subsampled YBR (for SC_ybr_full_uncompressed)
    "ExplVR_BigEnd.dcm",  # RGB, PlanarConfiguration 1, big endian
    "examples_rgb_color.dcm",  # RGB (for SC_rgb.dcm)
    "examples_palette.dcm",  # PALETTE COLOR
    "examples_ybr_color.dcm",  # 30-frame JPEG YBR_FULL_422 (for emri_small.dcm)
    "examples_jpeg2k.dcm",  # JPEG 2000 Lossless YBR_RCT
    "GDCMJ2K_TextGBR.dcm",
    "examples_overlay.dcm",  # 12 bits stored in 16
    "image_dfl.dcm",  # deflated
    "liver_1frame.dcm",  # 1-bit (for liver.dcm)
    "liver_expb_1frame.dcm",
    "rtdose.dcm",  # 32-bit, 15 frames, implicit VR
    "rtdose_expb.dcm",
    "rtdose_rle.dcm",
    "693_J2KI.dcm",  # JPEG 2000, 14-bit signed CT (for 693_J2KR.dcm)
    "J2K_pixelrep_mismatch.dcm",
    "JPEGLSNearLossless_08.dcm",
    "JPEGLSNearLossless_16.dcm",
    "SC_rgb_jls_lossy_line.dcm",
]

#: Bundled images that must be quarantined (TransformError), with the reason class.
QUARANTINED = [
    "JPEG-lossy.dcm",  # no installed decoder can read its codestream
    "JPEG2000-embedded-sequence-delimiter.dcm",
    "MR_truncated.dcm",  # Pixel Data shorter than the header declares
    "badVR.dcm",  # Number of Frames is not a number
]

RECT = [1, 1, 2, 2]  # columns 1..2, rows 1..2: inside the smallest bundled image (3 x 3)


def _mask_step(**mask: Any) -> Any:
    return step_for([rule([{"type": "mask", "rects": [RECT], **mask}])])


def _inside() -> tuple[slice, slice]:
    return slice(1, 3), slice(1, 3)


class TestEveryFormat:
    @pytest.mark.parametrize("name", FORMATS)
    def test_mask_is_exact(self, name: str) -> None:
        """Inside the mask the fill, outside the decoded input exactly, dtype and TS sane."""
        before = decode(read(name))
        ds = read(name)
        tsyntax = ds.file_meta.TransferSyntaxUID
        lossy_before = ds.get("LossyImageCompression")
        out = roundtrip(_mask_step(fill=1)(ds))
        after = decode(out)
        assert after.shape == before.shape
        assert after.dtype.itemsize * 8 == max(out.BitsAllocated, 8)
        rows, cols = _inside()
        assert (after[:, rows, cols, :] == 1).all()
        outside = np.ones(after.shape[1:3], dtype=bool)
        outside[rows, cols] = False
        assert np.array_equal(after[:, outside], before[:, outside])
        out_ts = out.file_meta.TransferSyntaxUID
        if tsyntax == ExplicitVRBigEndian:
            assert out_ts == ExplicitVRLittleEndian  # retired syntax: converted
        elif tsyntax in NATIVE:
            assert out_ts == tsyntax
        elif tsyntax in LOSSLESS and out.BitsAllocated <= 16:
            assert out_ts == tsyntax  # re-encoded losslessly in the input's syntax
        else:
            assert out_ts == ExplicitVRLittleEndian
        if lossy_before == "01" or tsyntax.name.startswith("JPEG Baseline"):
            assert out.LossyImageCompression == "01"
        assert out.SOPInstanceUID == NEW_UID == out.file_meta.MediaStorageSOPInstanceUID
        if "ImageType" in out:
            assert out.ImageType[0] == "DERIVED"

    @pytest.mark.parametrize("name", QUARANTINED)
    def test_unprocessable_images_are_quarantined(self, name: str) -> None:
        """Images that cannot be processed raise a TransformError with a message of ours."""
        with pytest.raises(TransformError) as info:
            _mask_step()(read(name))
        assert "Traceback" not in str(info.value)
        assert info.value.__cause__ is None


class TestFastPath:
    @pytest.mark.parametrize(
        "name",
        ["CT_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "image_dfl.dcm",
         "SC_rgb_small_odd.dcm", "ExplVR_BigEnd.dcm", "rtdose.dcm", "examples_palette.dcm"],
    )
    def test_native_data_is_edited_without_decoding(
        self, name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Uncompressed data is edited through a view: no decoder runs, same length and order."""
        ds = read(name)
        length = len(ds.PixelData)
        planar = ds.get("PlanarConfiguration")

        def no_decode(*args: object, **kwargs: object) -> None:
            raise AssertionError("decoded")

        monkeypatch.setattr(codec, "_decode", no_decode)
        out = _mask_step(fill=0)(ds)
        assert len(out.PixelData) == length
        assert out.get("PlanarConfiguration") == planar

    def test_planar_configuration_1_masks_every_plane(self) -> None:
        """PlanarConfiguration 1 (big endian RGB): all three planes are masked at the rect."""
        out = roundtrip(_mask_step()(read("ExplVR_BigEnd.dcm")))
        assert out.PlanarConfiguration == 1
        rows, cols = _inside()
        assert (decode(out)[0, rows, cols, :] == 0).all()


class TestNoMatch:
    def test_passthrough_never_decodes(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No matching rule: Pixel Data is the same object, nothing decoded or viewed."""

        def boom(*args: object, **kwargs: object) -> None:
            raise AssertionError("pixel data was read")

        monkeypatch.setattr(codec, "open_pixels", boom)
        monkeypatch.setattr(codec, "read_layout", boom)
        monkeypatch.setattr(Dataset, "pixel_array", property(boom))
        ds = read("MR_small_RLE.dcm")
        pixels, uid = ds.PixelData, ds.SOPInstanceUID
        step = pixel_step_for([rule([{"type": "mask", "rects": [RECT]}], {"Modality": "CT"})])
        out, applied = step(ds)
        assert out.PixelData is pixels
        assert out.SOPInstanceUID == uid
        assert applied == PixelsApplied(rules=(), changed=False)

    def test_untouched_pixels_keep_the_instance(self) -> None:
        """A matched threshold that selects no pixel changes nothing, not even the UID."""
        ds = read("CT_small.dcm")
        pixels, uid = ds.PixelData, ds.SOPInstanceUID
        step = pixel_step_for([rule([{"type": "hu_threshold", "below": -5000, "fill_hu": 0}],
                                    {"Modality": "CT"})])
        out, applied = step(ds)
        assert out.PixelData == pixels and out.SOPInstanceUID == uid
        assert applied == PixelsApplied(rules=("test",), changed=False)


class TestHounsfield:
    def _hu(self, ds: Dataset) -> np.ndarray[Any, Any]:
        return decode(ds)[0, :, :, 0] * float(ds.RescaleSlope) + float(ds.RescaleIntercept)

    def test_threshold_is_exact_in_hu(self) -> None:
        """Pixels below -500 HU become exactly -1000 HU; all others keep their value."""
        before = self._hu(read("CT_small.dcm"))
        step = step_for([rule([{"type": "hu_threshold", "below": 100, "above": 1000,
                                "fill_hu": -1000}], {"Modality": "CT"})])
        after = self._hu(roundtrip(step(read("CT_small.dcm"))))
        hit = (before < 100) | (before > 1000)
        assert hit.any() and (~hit).any()
        assert (after[hit] == -1000).all()
        assert np.array_equal(after[~hit], before[~hit])

    def test_clip_is_exact_in_hu(self) -> None:
        """hu_clip leaves every HU in [min, max] and values inside untouched."""
        before = self._hu(read("CT_small.dcm"))
        step = step_for([rule([{"type": "hu_clip", "min": 0, "max": 200}], {"Modality": "CT"})])
        after = self._hu(roundtrip(step(read("CT_small.dcm"))))
        assert after.min() == 0 and after.max() == 200
        inside = (before >= 0) & (before <= 200)
        assert np.array_equal(after[inside], before[inside])

    def test_fill_hu_on_compressed_ct(self) -> None:
        """A mask filled in HU on a 14-bit signed JPEG 2000 CT."""
        ds = read("693_J2KI.dcm")
        step = step_for([rule([{"type": "mask", "rects": [RECT], "fill_hu": -1000}],
                              {"Modality": "CT"})])
        after = self._hu(roundtrip(step(ds)))
        assert (after[_inside()] == -1000).all()

    def test_hu_on_image_without_rescale_is_refused(self) -> None:
        """A CT-matched HU action on an image without a modality LUT raises, never guesses."""
        ds = read("MR_small.dcm")
        ds.Modality = "CT"
        step = step_for([rule([{"type": "hu_clip", "min": 0}], {"Modality": "CT"})])
        with pytest.raises(UnsupportedPixelsError):
            step(ds)

    def test_rescale_type_other_than_hu_is_refused(self) -> None:
        """(0028,1054) Rescale Type present and not HU: refused."""
        ds = read("CT_small.dcm")
        ds.RescaleType = "US"
        step = step_for([rule([{"type": "hu_clip", "min": 0}], {"Modality": "CT"})])
        with pytest.raises(UnsupportedPixelsError):
            step(ds)


class TestDefaults:
    def test_monochrome1_darkest_is_the_highest_value(self) -> None:
        """MONOCHROME1 shows high values dark: the default fill is the top of Bits Stored."""
        pixels = np.full((1, 6, 6, 1), 100, dtype=np.uint16)
        ds = synthetic(pixels, bits_stored=12, photometric="MONOCHROME1")
        out = roundtrip(_mask_step()(ds))
        assert (decode(out)[0, 1:3, 1:3] == 4095).all()

    def test_monochrome2_darkest_is_the_lowest_value(self) -> None:
        """MONOCHROME2 signed 12-bit: the default fill is -2048."""
        pixels = np.full((1, 6, 6, 1), 100, dtype=np.int16)
        out = roundtrip(_mask_step()(synthetic(pixels, bits_stored=12)))
        assert (decode(out)[0, 1:3, 1:3] == -2048).all()

    def test_ybr_black(self) -> None:
        """A YBR_FULL image is masked to black: Y 0, Cb = Cr = 128."""
        out = roundtrip(_mask_step()(read("SC_rgb_jpeg_dcmtk.dcm")))
        assert out.PhotometricInterpretation == "YBR_FULL"
        assert (decode(out)[0, 1:3, 1:3] == [0, 128, 128]).all()


class TestFrames:
    def test_named_frames_only(self) -> None:
        """A mask naming frame 2 changes only frame 2 and leaves Burned In Annotation alone."""
        before = decode(read("rtdose.dcm"))
        ds = read("rtdose.dcm")
        ds.BurnedInAnnotation = "YES"
        out = roundtrip(_mask_step(fill=0, frames=[2])(ds))
        after = decode(out)
        assert (after[1, 1:3, 1:3] == 0).all()
        assert np.array_equal(np.delete(after, 1, 0), np.delete(before, 1, 0))
        assert out.BurnedInAnnotation == "YES"

    def test_frame_beyond_number_of_frames(self) -> None:
        """Naming a frame the image does not have is an error, not a silent no-op."""
        with pytest.raises(UnsupportedPixelsError):
            _mask_step(frames=[16])(read("rtdose.dcm"))


class TestBurnedInAnnotation:
    def _ds(self) -> Dataset:
        ds = read("SC_rgb_small_odd.dcm")
        ds.BurnedInAnnotation = "YES"
        return ds

    def test_reject(self) -> None:
        """Policy reject: YES is quarantined even when no rule matches."""
        step = step_for([], PixelSettings(burned_in_annotation="reject"))
        with pytest.raises(BurnedInAnnotationError):
            step(self._ds())

    def test_require_mask_without_mask(self) -> None:
        """Policy require-mask: YES without a matching mask rule is quarantined."""
        step = step_for([rule([{"type": "window", "center": 1, "width": 2}])],
                        PixelSettings(burned_in_annotation="require-mask"))
        with pytest.raises(BurnedInAnnotationError):
            step(self._ds())

    def test_require_mask_with_mask_clears_the_flag(self) -> None:
        """A mask over every frame sets Burned In Annotation to NO."""
        step = step_for([rule([{"type": "mask", "rects": [RECT]}])],
                        PixelSettings(burned_in_annotation="require-mask"))
        assert step(self._ds()).BurnedInAnnotation == "NO"

    @pytest.mark.parametrize(
        "mask",
        [
            {"circles": [[1.5, 1.5, 0.4]]},  # a circle between four pixels' index points
            {"polygons": [[[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]]]},  # a triangle inside one pixel
            {"rects": [[0, 0, 3, 3]], "keep_inside": True},  # keeps the whole image
        ],
    )
    def test_require_mask_needs_a_covered_pixel(self, mask: dict[str, Any]) -> None:
        """A matching mask that covers no pixel does not satisfy require-mask."""
        step = step_for([rule([{"type": "mask", **mask}])],
                        PixelSettings(burned_in_annotation="require-mask"))
        with pytest.raises(BurnedInAnnotationError) as info:
            step(self._ds())
        assert "covered a pixel of every frame" in str(info.value)

    def test_require_mask_needs_every_frame(self) -> None:
        """A mask of frame 2 only leaves the other frames' text: quarantined."""
        ds = read("rtdose.dcm")
        ds.BurnedInAnnotation = "YES"
        step = step_for([rule([{"type": "mask", "rects": [RECT], "frames": [2]}])],
                        PixelSettings(burned_in_annotation="require-mask"))
        with pytest.raises(BurnedInAnnotationError):
            step(ds)

    def test_require_mask_by_masks_of_all_frames_together(self) -> None:
        """Masks of frames 1..7 and 8..15 together cover every frame of a 15-frame image."""
        ds = read("rtdose.dcm")
        ds.BurnedInAnnotation = "YES"
        step = step_for([rule([
            {"type": "mask", "rects": [RECT], "frames": list(range(1, 8))},
            {"type": "mask", "rects": [RECT], "frames": list(range(8, 16))},
        ])], PixelSettings(burned_in_annotation="require-mask"))
        step(ds)

    def test_require_mask_without_pixel_data(self) -> None:
        """YES on a dataset without pixels that a mask rule matches: nothing was masked."""
        ds = read("rtplan.dcm")
        ds.BurnedInAnnotation = "YES"
        step = step_for([rule([{"type": "mask", "rects": [RECT]}])],
                        PixelSettings(burned_in_annotation="require-mask"))
        with pytest.raises(BurnedInAnnotationError):
            step(ds)

    def test_pass_leaves_it(self) -> None:
        """Policy pass without a rule: nothing changes."""
        assert step_for([])(self._ds()).BurnedInAnnotation == "YES"


class TestLimits:
    def test_too_large_is_refused_before_decoding(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """max_pixel_bytes is checked on the header before any pixel is read."""

        def boom(*args: object, **kwargs: object) -> None:
            raise AssertionError("pixel data was read")

        monkeypatch.setattr(codec, "open_pixels", boom)
        step = step_for([rule([{"type": "mask", "rects": [RECT]}])],
                        PixelSettings(max_pixel_bytes=64 * 64 * 2 - 1))
        with pytest.raises(PixelDataTooLargeError):
            step(read("MR_small_RLE.dcm"))


class TestAllMatchingRules:
    def test_actions_of_every_matching_rule(self) -> None:
        """With all_matching_rules both rules' masks apply and both names are recorded."""
        r1 = rule([{"type": "mask", "rects": [[0, 0, 1, 1]], "fill": 7}])
        r2 = rule([{"type": "mask", "rects": [[5, 5, 1, 1]], "fill": 9}]).model_copy(
            update={"name": "second"})
        step = pixel_step_for([r1, r2], PixelSettings(all_matching_rules=True))
        out, applied = step(read("MR_small.dcm"))
        arr = decode(roundtrip(out))[0, :, :, 0]
        assert (arr[0, 0], arr[5, 5]) == (7, 9)
        assert applied == PixelsApplied(rules=("test", "second"), changed=True)
        assert not [name for name in vars(out) if "rules" in name]  # nothing set on the Dataset


class TestSyntheticCtSeries:
    def test_issue_example_on_a_512_slice(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The issue's rule (threshold + mask) on a synthetic 512x512 int16 CT slice: exact in
        HU, same byte length, no decoder involved."""
        from dcmwatch.testing import ct_series

        (ds,) = ct_series(1)
        before = decode(ds)[0, :, :, 0].astype(float) + float(ds.RescaleIntercept)
        length = len(ds.PixelData)

        def no_decode(*args: object, **kwargs: object) -> None:
            raise AssertionError("decoded")

        monkeypatch.setattr(codec, "_decode", no_decode)
        step = step_for([rule([
            {"type": "hu_threshold", "below": -500, "fill_hu": -1000},
            {"type": "mask", "rects": [[0, 0, 100, 50]], "fill": 0},
        ], {"Modality": "CT"})])
        out = step(ds)
        assert len(out.PixelData) == length
        after = decode(roundtrip(out))[0, :, :, 0].astype(float) * float(
            out.RescaleSlope) + float(out.RescaleIntercept)
        mask = np.zeros(after.shape, bool)
        mask[0:50, 0:100] = True
        assert (after[mask] == float(out.RescaleIntercept)).all()
        low = (before < -500) & ~mask
        assert low.any()
        assert (after[low] == -1000).all()
        keep = ~low & ~mask
        assert np.array_equal(after[keep], before[keep])


class TestNoPixels:
    @pytest.mark.parametrize("name", ["rtplan.dcm", "test-SR.dcm", "waveform_ecg.dcm"])
    def test_catch_all_rule_leaves_non_images_alone(self, name: str) -> None:
        """A rule with an empty match meets reports and plans too: it does nothing to them."""
        ds = read(name)
        uid = ds.SOPInstanceUID
        out, applied = pixel_step_for([rule([{"type": "mask", "rects": [RECT]},
                                             {"type": "window", "center": 1, "width": 2}])])(ds)
        assert out.SOPInstanceUID == uid and "WindowCenter" not in out
        assert applied == PixelsApplied()

    def test_float_pixel_data_is_refused(self) -> None:
        ds = read("CT_small.dcm")
        del ds.PixelData
        ds.FloatPixelData = b"\0" * 16
        with pytest.raises(UnsupportedPixelsError):
            _mask_step()(ds)
