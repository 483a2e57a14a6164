"""Metadata inside compressed Pixel Data is stripped; the decoded pixels stay identical."""

from __future__ import annotations

import io
import itertools
import json
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import parse_basic_offsets
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import JPEGBaseline8Bit

from dcmwatch import config as config_mod
from dcmwatch.errors import InputError
from dcmwatch.pipeline import process_bytes
from dcmwatch.pixels.errors import PixelStreamError, PixelStreamUnsupportedError
from dcmwatch.pixels.streams import clean_pixel_data

from ._streams import (
    ITEM,
    MARK,
    encapsulated,
    even,
    frames,
    j2k_main_header_end,
    output,
    plant_j2k,
    plant_jpeg,
    reread,
    segment,
    with_fragments,
)
from ._support import bundled_path, decode, read, rule, step_for, synthetic

KEY = b"0123456789abcdef0123456789abcdef"

#: pydicom's bundled encapsulated files that its decoders read (``SC_rgb_jpeg.dcm`` is left out:
#: its header is cut short, and it is quarantined before any stream is looked at).
BUNDLED = [
    "693_J2KI.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "J2K_pixelrep_mismatch.dcm",
    "JPEG2000.dcm",
    "JPEGLSNearLossless_08.dcm",
    "JPEGLSNearLossless_16.dcm",
    "JPGExtended.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "SC_jpeg_no_color_transform_2.dcm",
    "SC_rgb_dcmtk_+eb+cr.dcm",
    "SC_rgb_dcmtk_+eb+cy+n1.dcm",
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",
    "SC_rgb_gdcm_KY.dcm",
    "SC_rgb_jls_lossy_line.dcm",
    "SC_rgb_jls_lossy_sample.dcm",
    "SC_rgb_jpeg_app14_dcmd.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_jpeg_lossy_gdcm.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "SC_rgb_small_odd_jpeg.dcm",
    "examples_jpeg2k.dcm",
    "examples_ybr_color.dcm",
    "rtdose_rle.dcm",
]


def _config(text: str = "") -> config_mod.Config:
    return config_mod.parse(text, source="t.toml", base=Path.cwd()).with_secret(KEY)


def _decoded(ds: Dataset, *, raw: bool = True, plugin: str = "") -> np.ndarray:
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
    arr, _ = decoder.as_array(ds, raw=raw, decoding_plugin=plugin)
    return np.asarray(arr)


def _pillow(stream: bytes) -> np.ndarray:
    """A JPEG stream decoded by Pillow (libjpeg-turbo, colour conversion as its markers say)."""
    with Image.open(io.BytesIO(stream)) as image:
        return np.asarray(image)


def _cleaned(ds: Dataset) -> tuple[Dataset, bytes]:
    """`ds` cleaned and written as dcmwatch writes it, read back as a receiver would."""
    clean_pixel_data(ds)
    data = output(ds)
    return pydicom.dcmread(io.BytesIO(data)), data


class TestBundledFiles:
    @pytest.mark.parametrize("name", BUNDLED)
    def test_pixels_and_colour_handling_unchanged(self, name: str) -> None:
        """Every frame decodes to the same array (raw and colour-converted) after cleaning."""
        ds = read(name)
        photometric = ds.PhotometricInterpretation
        before, before_rgb = _decoded(ds), _decoded(ds, raw=False)
        after_ds, _ = _cleaned(ds)
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_decoded(after_ds, raw=False), before_rgb)
        assert after_ds.PhotometricInterpretation == photometric

    @pytest.mark.parametrize("transform", [0, 1])
    def test_adobe_transform_flag_survives(self, transform: int) -> None:
        """An Adobe APP14 segment decides whether libjpeg converts colours: it stays, cut to its
        12 defined bytes. Checked with Pillow (libjpeg-turbo), which reads it."""
        ds = read("SC_jpeg_no_color_transform.dcm")
        stream = frames(ds)[0]
        adobe = b"Adobe\x00\x64\x00\x00\x00\x00" + bytes([transform])
        planted = with_fragments(ds, [even(stream[:2] + segment(0xEE, adobe + MARK) + stream[2:])])
        expected = _pillow(frames(planted)[0])
        if transform == 0:  # without the flag libjpeg would take these samples for YCbCr
            assert not np.array_equal(expected, _pillow(stream))
        after_ds, data = _cleaned(planted)
        assert MARK not in data
        assert segment(0xEE, adobe) in frames(after_ds)[0]
        assert np.array_equal(_pillow(frames(after_ds)[0]), expected)

    def test_native_data_is_not_touched(self) -> None:
        """Native Pixel Data: nothing returned, the very element object left in place."""
        ds = read("CT_small.dcm")
        elem = ds.get_item(0x7FE00010)
        assert clean_pixel_data(ds) is None
        assert ds.get_item(0x7FE00010) is elem


class TestPlantedJpeg:
    def test_every_planted_segment_and_trailing_byte_goes(self) -> None:
        """COM, APP1 EXIF/XMP, APP2 ICC, APP13, APP11, a JFIF thumbnail and JFXX, bytes after
        EOI and a filled offset table: none in the output, pixels identical."""
        ds = read("SC_rgb_jpeg_dcmtk.dcm")
        before = _decoded(ds)
        planted = with_fragments(ds, [even(plant_jpeg(frames(ds)[0]))], bot=MARK + b"-bot!")
        assert MARK in output(planted)  # the planted file carries them
        assert np.array_equal(_decoded(planted), before)
        after_ds, data = _cleaned(planted)
        assert MARK not in data
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_decoded(after_ds, raw=False), _decoded(ds, raw=False))

    def test_report_counts_by_kind_without_content(self) -> None:
        ds = read("SC_rgb_jpeg_dcmtk.dcm")
        planted = with_fragments(ds, [even(plant_jpeg(frames(ds)[0]))])
        report = clean_pixel_data(planted)
        assert report is not None
        counts = {kind: n for kind, n, _ in report.removed}
        assert counts == {"APP0": 2, "APP1": 2, "APP2": 1, "APP11": 1, "APP13": 1, "COM": 2,
                          "trailing": 1}
        assert MARK.decode() not in json.dumps(report.as_dict())
        assert report.bytes_in - report.bytes_out >= sum(b for _, _, b in report.removed) - 1

    def test_multi_frame_fragments_and_offset_table_rebuilt(self) -> None:
        """Frames split over fragments, bytes after each EOI, a bogus offset table: one fragment
        per frame comes out, the table points at each, every frame decodes the same."""
        ds = read("examples_ybr_color.dcm")
        before = _decoded(ds)
        fragments: list[bytes] = []
        for i, frame in enumerate(frames(ds)):
            planted = even(frame + MARK + b"-frame%d" % i)
            cut = (len(planted) // 3) & ~1
            fragments += [planted[:cut], planted[cut:]]
        planted_ds = with_fragments(ds, fragments, bot=MARK + b"-b")
        after_ds, data = _cleaned(planted_ds)
        assert MARK not in data
        value = after_ds.PixelData
        offsets = parse_basic_offsets(value)
        assert len(offsets) == len(before)
        first = 8 + struct.unpack_from("<L", value, 4)[0]
        assert all(value[first + o : first + o + 4] == ITEM for o in offsets)
        assert np.array_equal(_decoded(after_ds), before)

    def test_extended_offset_table_rebuilt_and_basic_emptied(self) -> None:
        ds = read("examples_ybr_color.dcm")
        before = _decoded(ds)
        planted = [even(f + MARK) for f in frames(ds)]
        ds.ExtendedOffsetTable = MARK + b"-eot" + b"\0" * 5
        ds.ExtendedOffsetTableLengths = MARK + b"-len" + b"\0" * 5
        after_ds, data = _cleaned(with_fragments(ds, planted, bot=b"\0" * 8))
        assert MARK not in data
        value = after_ds.PixelData
        assert value[4:8] == b"\0\0\0\0"  # the Basic Offset Table is empty
        n = len(before)
        offsets = struct.unpack(f"<{n}Q", after_ds.ExtendedOffsetTable)
        lengths = struct.unpack(f"<{n}Q", after_ds.ExtendedOffsetTableLengths)
        for offset, length in zip(offsets, lengths, strict=True):
            assert value[8 + offset : 12 + offset] == ITEM
            assert struct.unpack_from("<L", value, 12 + offset)[0] == length
        assert np.array_equal(_decoded(after_ds), before)

    def test_lengths_without_table_go(self) -> None:
        ds = read("SC_rgb_jpeg_dcmtk.dcm")
        ds.ExtendedOffsetTableLengths = MARK + b"\0"
        after_ds, data = _cleaned(reread(ds))
        assert MARK not in data
        assert "ExtendedOffsetTableLengths" not in after_ds

    def test_fill_bytes_before_markers_go(self) -> None:
        """0xFF fill bytes may precede any marker (ISO 10918-1 B.1.1.2): dropped, pixels kept;
        a stream that ends in them is refused."""
        ds = read("SC_rgb_jpeg_dcmtk.dcm")
        stream = frames(ds)[0]
        sos = stream.index(b"\xff\xda")
        filled = stream[:sos] + b"\xff" * 301 + stream[sos:-2] + b"\xff" * 7 + stream[-2:]
        expected = _cleaned(reread(ds))[1]
        after_ds = _cleaned(with_fragments(ds, [even(filled)]))[0]
        assert frames(after_ds) == frames(pydicom.dcmread(io.BytesIO(expected)))
        with pytest.raises(PixelStreamError):
            clean_pixel_data(with_fragments(ds, [even(stream[:sos] + b"\xff" * 40)]))

    @pytest.mark.parametrize("transform", [0, 1])
    def test_jpeg_ls_colour_transform_stays_alone(self, transform: int) -> None:
        """An APP8 ``mrfx`` segment keeps its transform id and loses everything after it."""
        ds = read("SC_rgb_jls_lossy_line.dcm")
        stream = frames(ds)[0]
        sof = stream.index(b"\xff\xf7")
        mrfx = b"mrfx" + bytes([transform])
        planted = with_fragments(ds, [even(stream[:sof] + segment(0xE8, mrfx + MARK)
                                           + stream[sof:])])
        expected = _decoded(planted)
        after_ds, data = _cleaned(planted)
        assert MARK not in data
        assert segment(0xE8, mrfx) in frames(after_ds)[0]
        assert np.array_equal(_decoded(after_ds), expected)

    def test_jpeg_ls_spiff_and_comments_go(self) -> None:
        ds = read("SC_rgb_jls_lossy_line.dcm")
        before = _decoded(ds)
        planted = with_fragments(ds, [even(plant_jpeg(frames(ds)[0]))])
        after_ds, data = _cleaned(planted)
        assert MARK not in data
        assert b"SPIFF" not in data
        assert np.array_equal(_decoded(after_ds), before)


class TestRealWriter:
    @pytest.mark.parametrize("progressive", [False, True])
    def test_pillow_exif_icc_comment_with_restarts_and_scans(self, progressive: bool) -> None:
        """libjpeg-turbo through Pillow writes EXIF, ICC and a comment, restart markers inside
        scans and (progressive) several scans with tables between them: all walked, the
        metadata gone, the pixels the same."""
        arr = np.random.default_rng(7).integers(0, 255, (1, 64, 48, 1), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr[0, :, :, 0]).save(
            buf, format="JPEG", quality=90, progressive=progressive, restart_marker_blocks=2,
            exif=b"Exif\x00\x00" + MARK + b"-exif", icc_profile=MARK + b"-icc",
            comment=MARK + b"-comment",
        )
        stream = buf.getvalue()
        assert stream.count(b"\xff\xd0") > 1
        ds = synthetic(arr)
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        planted = with_fragments(ds, [even(stream)])
        # Richter's libjpeg (pylibjpeg) refuses the input's EXIF segment, so compare with Pillow;
        # the two plugins differ in the last bit on this lossy image
        before = _decoded(planted, plugin="pillow")
        after_ds, data = _cleaned(planted)
        assert MARK not in data
        assert np.array_equal(_decoded(after_ds, plugin="pillow"), before)
        assert _decoded(after_ds, plugin="pylibjpeg").shape == before.shape


class TestPlantedJ2k:
    @pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "JPEG2000.dcm",
                                      "examples_jpeg2k.dcm"])
    def test_comments_in_both_headers_and_bytes_after_eoc_go(self, name: str) -> None:
        ds = read(name)
        before = _decoded(ds)
        planted = with_fragments(ds, [even(plant_j2k(frames(ds)[0]))])
        assert np.array_equal(_decoded(planted), before)
        after_ds, data = _cleaned(planted)
        assert MARK not in data
        assert np.array_equal(_decoded(after_ds), before)

    @pytest.mark.parametrize("tile_comment", [False, True])
    def test_tlm_goes_only_when_a_tile_part_length_changed(self, tile_comment: bool) -> None:
        """A TLM segment lists tile-part lengths: kept while they hold, dropped (an index no
        decoder needs) once a comment left a tile-part header."""
        ds = read("MR_small_jp2klossless.dcm")
        before = _decoded(ds)
        stream = frames(ds)[0]
        sot = j2k_main_header_end(stream)
        psot = struct.unpack_from(">L", stream, sot + 6)[0]
        tlm = segment(0x55, b"\x00\x40" + struct.pack(">L", psot))  # one 32-bit Ptlm
        with_tlm = stream[:sot] + tlm + stream[sot:]
        planted = plant_j2k(with_tlm) if tile_comment else with_tlm
        after_ds, data = _cleaned(with_fragments(ds, [even(planted)]))
        assert (tlm in data) is not tile_comment
        assert np.array_equal(_decoded(after_ds), before)

    def test_jp2_wrapper_keeps_only_what_decodes(self) -> None:
        """xml, uuid and trailing boxes of a JP2 file go; header and codestream stay."""
        ds = read("MR_small_jp2klossless.dcm")
        before = _decoded(ds)
        codestream = frames(ds)[0]

        def box(kind: bytes, content: bytes) -> bytes:
            return struct.pack(">L", 8 + len(content)) + kind + content

        ihdr = box(b"ihdr", struct.pack(">LLHBBBB", ds.Rows, ds.Columns, 1, 0x8F, 7, 0, 1))
        colr = box(b"colr", b"\x01\x00\x00" + struct.pack(">L", 17))
        jp2 = b"".join([
            b"\x00\x00\x00\x0cjP  \r\n\x87\n",
            box(b"ftyp", b"jp2 \x00\x00\x00\x00jp2 "),
            box(b"xml ", b"<a>" + MARK + b"-xml</a>"),
            box(b"jp2h", ihdr + colr + box(b"res ", MARK + b"-res")),
            box(b"uuid", b"\x01" * 16 + MARK + b"-uuid"),
            box(b"jp2c", codestream),
            box(b"xml ", MARK + b"-late"),
        ])
        planted = with_fragments(ds, [even(jp2)])
        assert np.array_equal(_decoded(planted), before)
        after_ds, data = _cleaned(planted)
        assert MARK not in data
        assert np.array_equal(_decoded(after_ds), before)

    def test_our_encoders_comment_goes_after_a_rule(self) -> None:
        """OpenJPEG signs what it encodes with a COM segment: a rule's re-encoded frame is
        cleaned too, through the whole per-file core."""
        ds = read("MR_small_jp2klossless.dcm")
        masked = step_for([rule([{"type": "mask", "rects": [[0, 0, 4, 4]]}])])(ds)
        assert b"OpenJPEG" in masked.PixelData  # what the encoder wrote
        data = process_bytes(Path(bundled_path("MR_small_jp2klossless.dcm")).read_bytes(),
                             _config(MASK_RULE)).data
        assert b"OpenJPEG" not in data
        out = pydicom.dcmread(io.BytesIO(data))
        assert np.array_equal(decode(out), decode(masked))


MASK_RULE = '[[rules]]\nname = "m"\n[[rules.actions]]\ntype = "mask"\nrects = [[0, 0, 4, 4]]\n'


class TestPlantedRle:
    def test_bytes_between_segments_and_after_the_last_go(self) -> None:
        ds = read("SC_rgb_rle.dcm")
        before = _decoded(ds)
        frame = frames(ds)[0]
        count, *offsets = struct.unpack_from("<16L", frame)
        bounds = [*offsets[:count], len(frame)]
        segments = [frame[a:b] for a, b in itertools.pairwise(bounds)]
        junk = MARK + b"-gap!"
        segments[0] += junk
        new_offsets, at = [], 64
        for s in segments:
            new_offsets.append(at)
            at += len(s)
        header = struct.pack("<16L", count, *new_offsets, *[0] * (15 - count))
        planted_frame = header + b"".join(segments) + MARK + b"-end!"
        planted = with_fragments(ds, [even(planted_frame)], bot=b"\0" * 4)
        assert np.array_equal(_decoded(planted), before)
        after_ds, data = _cleaned(planted)
        assert MARK not in data
        assert np.array_equal(_decoded(after_ds), before)


class TestThroughThePipeline:
    def test_planted_file_comes_out_clean_with_a_report(self) -> None:
        """The whole per-file core, no pixel rule: the output carries no planted byte."""
        ds = read("SC_rgb_jpeg_dcmtk.dcm")
        planted = with_fragments(ds, [even(plant_jpeg(frames(ds)[0]))], bot=MARK + b"-bot!")
        result = process_bytes(output(planted), _config())
        assert MARK not in result.data
        assert result.stream is not None
        assert result.stream.changed
        out = pydicom.dcmread(io.BytesIO(result.data))
        assert np.array_equal(_decoded(out), _decoded(ds))

    def test_bytes_after_the_sequence_delimiter_never_come_out(self) -> None:
        """After the Pixel Data delimiter: loose bytes or a delimiter with a length are refused
        as truncated; (FFFC,FFFC) trailing padding is removed by the profile."""
        data = output(read("SC_rgb_jpeg_dcmtk.dcm"))
        end = data.rindex(b"\xfe\xff\xdd\xe0") + 4
        padding = b"\xfc\xff\xfc\xffOB\x00\x00" + struct.pack("<L", 8) + MARK + b"!"
        for bad in (data + MARK + b"!", data[:end] + b"\x08\x00\x00\x00" + MARK + b"!"):
            with pytest.raises(InputError) as caught:
                process_bytes(bad, _config())
            assert caught.value.reason == "truncated"
        assert MARK not in process_bytes(data + padding, _config()).data

    def test_unwalkable_stream_is_quarantined_with_a_stable_reason(self) -> None:
        ds = read("SC_rgb_jpeg_dcmtk.dcm")
        stream = frames(ds)[0]
        planted = with_fragments(ds, [even(stream[:2] + segment(0x02, MARK) + stream[2:])])
        with pytest.raises(InputError) as caught:
            process_bytes(output(planted), _config("[limits]\nverify_compressed = false\n"))
        assert caught.value.reason == "pixel_stream_unrecognised"
        assert MARK.decode() not in str(caught.value)


def _jpeg(ds_name: str = "SC_rgb_jpeg_dcmtk.dcm") -> tuple[Dataset, bytes]:
    ds = read(ds_name)
    return ds, frames(ds)[0]


class TestRefused:
    def test_unknown_marker(self) -> None:
        ds, stream = _jpeg()
        planted = with_fragments(ds, [even(stream[:2] + segment(0x02, MARK) + stream[2:])])
        with pytest.raises(PixelStreamError) as caught:
            clean_pixel_data(planted)
        assert MARK.decode() not in str(caught.value)

    def test_stream_of_another_family_than_the_syntax(self) -> None:
        ds, _ = _jpeg()
        j2k = frames(read("JPEG2000.dcm"))[0]
        with pytest.raises(PixelStreamError):
            clean_pixel_data(with_fragments(ds, [even(j2k)]))
        ls = frames(read("MR_small_jpeg_ls_lossless.dcm"))[0]
        with pytest.raises(PixelStreamError):
            clean_pixel_data(with_fragments(ds, [even(ls)]))

    def test_garbage_and_truncated_streams(self) -> None:
        ds, stream = _jpeg()
        for bad in (MARK + b"!", stream[: len(stream) // 2], stream[:-2]):
            with pytest.raises(PixelStreamError):
                clean_pixel_data(with_fragments(ds, [even(bad)]))

    def test_fewer_frames_than_declared(self) -> None:
        ds = read("examples_ybr_color.dcm")
        with pytest.raises(PixelStreamError):
            clean_pixel_data(with_fragments(ds, frames(ds)[:-1]))

    def test_zero_frames_is_read_as_one(self) -> None:
        """As the size check and the pixel rules read (0028,0008) = 0."""
        ds, stream = _jpeg()
        ds.NumberOfFrames = 0
        report = clean_pixel_data(with_fragments(ds, [even(stream)]))
        assert report is not None
        assert report.frames == 1

    def test_truncated_j2k_tile_part(self) -> None:
        ds = read("MR_small_jp2klossless.dcm")
        stream = frames(ds)[0]
        with pytest.raises(PixelStreamError):
            clean_pixel_data(with_fragments(ds, [even(stream[: len(stream) // 2])]))

    @pytest.mark.parametrize("uid", ["1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.102",
                                     "1.2.840.10008.1.2.4.107", "1.2.3.4.5.6"])
    def test_video_and_unknown_syntaxes_never_pass(self, uid: str) -> None:
        ds, stream = _jpeg()
        ds.file_meta.TransferSyntaxUID = uid
        ds.PixelData = encapsulated([even(stream)])
        with pytest.raises(PixelStreamUnsupportedError) as caught:
            clean_pixel_data(ds)
        assert caught.value.reason == "pixel_stream_unsupported"
