"""JPEG 2000 streams whose extent is not written down: a last tile-part of unknown length
(Psot = 0) ends at its own EOC, never at a later FFD9, and a JP2 box of length 0 at the end of
its own frame. The JP2 wrapper is rebuilt: fixed ``ftyp``, an ICC colour box reduced to an
enumerated colour space. Decoded pixels stay identical (pydicom's decoder and Pillow)."""

from __future__ import annotations

import io
import struct
from copy import deepcopy

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder

from dcmwatch.pixels.errors import PixelStreamError
from dcmwatch.pixels.streams import StreamReport, clean_pixel_data

from ._streams import MARK, box, even, frames, output, psot_zero, with_fragments
from ._support import read

#: Text after the real EOC that happens to end in an EOC marker (even length).
TAIL = MARK + b"  DOE^JOHN 19510829\xff\xd9"


def _decoded(ds: Dataset) -> np.ndarray:
    arr, _ = get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, raw=True)
    return np.asarray(arr)


def _pillow(stream: bytes) -> np.ndarray:
    """A codestream or JP2 file decoded by Pillow (OpenJPEG through another binding); a JP2
    file without the pad byte of an odd-length fragment, which Pillow's box reader refuses."""
    if stream.startswith(b"\x00\x00\x00\x0cjP  "):
        end = 0
        while end + 8 <= len(stream):
            end += int.from_bytes(stream[end : end + 4], "big")
        stream = stream[:end]
    with Image.open(io.BytesIO(stream)) as image:
        return np.asarray(image)


def _cleaned(ds: Dataset) -> tuple[Dataset, bytes, StreamReport]:
    report = clean_pixel_data(ds)
    assert report is not None
    data = output(ds)
    return pydicom.dcmread(io.BytesIO(data)), data, report


def _trailing(report: StreamReport) -> int:
    return sum(b for kind, _, b in report.removed if kind == "trailing")


def _mr() -> tuple[Dataset, bytes]:
    ds = read("MR_small_jp2klossless.dcm")
    return ds, psot_zero(frames(ds)[0])


SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
FTYP = box(b"ftyp", b"jp2 \0\0\0\0jp2 ")
GREY = box(b"colr", b"\x01\x00\x00" + struct.pack(">L", 17))
SRGB = box(b"colr", b"\x01\x00\x00" + struct.pack(">L", 16))


def _ihdr(ds: Dataset, components: int = 1, depth: int = 0x8F) -> bytes:
    return box(b"ihdr", struct.pack(">LLHBBBB", ds.Rows, ds.Columns, components, depth, 7, 0, 0))


def _jp2(ds: Dataset, codestream: bytes, *, ftyp: bytes = FTYP, colr: bytes = GREY,
         components: int = 1, depth: int = 0x8F, length: int | None = None) -> bytes:
    """A JP2 file around `codestream`; `length` overrides the codestream box's length field."""
    jp2c = box(b"jp2c", codestream)
    if length is not None:
        jp2c = struct.pack(">L", length) + jp2c[4:]
    return b"".join([SIGNATURE, ftyp, box(b"jp2h", _ihdr(ds, components, depth) + colr), jp2c])


def _icc(space: bytes) -> bytes:
    """A method 2 colour box content: an ICC profile whose description and copyright are text."""
    tags = [(b"desc", MARK + b"-description Scanner 7 Room 3"), (b"cprt", MARK + b"-copyright")]
    body = b"".join(text for _, text in tags)
    table = struct.pack(">L", len(tags))
    at = 128 + 4 + 12 * len(tags)
    for kind, text in tags:
        table += kind + struct.pack(">LL", at, len(text))
        at += len(text)
    header = (struct.pack(">L", at) + b"lcms" + b"\x02\x10\x00\x00" + b"mntr" + space + b"XYZ "
              + b"\x00" * 12 + b"acsp" + b"\x00" * 88)
    return b"\x02\x00\x00" + header + table + body


class TestLastTilePartOfUnknownLength:
    def test_text_after_eoc_that_ends_in_ffd9_goes(self) -> None:
        """One frame: the tail is dropped and counted, the codestream decodes the same in
        pydicom's decoder and in Pillow."""
        ds, stream = _mr()
        before = _decoded(ds)
        planted = with_fragments(ds, [stream + TAIL])
        assert np.array_equal(_decoded(planted), before)
        after_ds, data, report = _cleaned(planted)
        assert MARK not in data
        assert _trailing(report) == len(TAIL)
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_pillow(frames(after_ds)[0]), _pillow(stream))

    def test_a_frame_does_not_swallow_the_next(self) -> None:
        """Two frames, each followed by such a tail: two frames come out, each its own."""
        ds, stream = _mr()
        single = _decoded(ds)
        ds.NumberOfFrames = 2
        planted = with_fragments(ds, [stream + TAIL, stream + TAIL])
        after_ds, data, report = _cleaned(planted)
        assert MARK not in data
        assert _trailing(report) == 2 * len(TAIL)
        out = frames(after_ds)
        assert len(out) == 2
        assert all(frame.endswith(b"\xff\xd9") and frame.count(b"\xff\x4f") == 1 for frame in out)
        decoded = _decoded(after_ds)
        assert np.array_equal(decoded[0], single)
        assert np.array_equal(decoded[1], single)

    def test_inside_a_jp2_codestream_box(self) -> None:
        """The tail inside the jp2c box, after EOC: dropped and counted, pixels the same."""
        ds, stream = _mr()
        before = _decoded(ds)
        planted = with_fragments(ds, [even(_jp2(ds, stream + TAIL))])
        assert np.array_equal(_decoded(planted), before)
        after_ds, data, report = _cleaned(planted)
        assert MARK not in data
        assert _trailing(report) == len(TAIL)
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_pillow(frames(after_ds)[0]), _pillow(_jp2(ds, stream)))

    @pytest.mark.parametrize("damage", ["no EOC", "a marker before EOC"])
    def test_without_its_own_eoc_it_is_refused(self, damage: str) -> None:
        """Without EOC the tile-part's end cannot be known: refused, never guessed."""
        ds, stream = _mr()
        if damage == "no EOC":
            bad = stream[:-2] + MARK + b"!"
        else:  # an SOT in what would be packet data (the next codestream, say)
            bad = stream[:-2] + b"\xff\x90" + MARK + b"\xff\xd9"
        with pytest.raises(PixelStreamError) as caught:
            clean_pixel_data(with_fragments(deepcopy(ds), [bad]))
        assert MARK.decode() not in str(caught.value)


class TestJp2Wrapper:
    @pytest.mark.parametrize(("name", "components", "space", "expected"), [
        ("MR_small_jp2klossless.dcm", 1, b"GRAY", GREY),
        ("SC_rgb_gdcm_KY.dcm", 3, b"RGB ", SRGB),
        ("SC_rgb_gdcm_KY.dcm", 3, b"YCbr", SRGB),
    ], ids=["GRAY", "RGB", "YCbr"])
    def test_icc_profile_becomes_an_enumerated_colour_space(
        self, name: str, components: int, space: bytes, expected: bytes
    ) -> None:
        """The profile's text is gone, the colour box names greyscale or sRGB by the image's
        component count, and both decoders give the same pixels as before."""
        ds = read(name)
        stream = frames(ds)[0]
        depth = 0x8F if components == 1 else 0x07
        planted = _jp2(ds, stream, colr=box(b"colr", _icc(space)), components=components,
                       depth=depth)
        before = _decoded(with_fragments(ds, [even(_jp2(ds, stream, components=components,
                                                        depth=depth))]))
        planted_ds = with_fragments(ds, [even(planted)])
        assert np.array_equal(_decoded(planted_ds), before)
        after_ds, data, report = _cleaned(planted_ds)
        assert MARK not in data
        assert b"lcms" not in data
        cleaned = frames(after_ds)[0]
        assert expected in cleaned
        assert cleaned.count(b"colr") == 1
        assert ("JP2_colr", 1, len(box(b"colr", _icc(space))) - len(expected)) in report.removed
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_pillow(cleaned), _pillow(planted))

    def test_bundled_icc_profile_goes(self) -> None:
        """GDCM's JP2 file carries a JPX colour box (method 3) with Apple's profile and a
        longer ftyp: both reduced, the frame decodes the same (raw and colour-converted)."""
        ds = read("GDCMJ2K_TextGBR.dcm")
        assert b"Generic GBR Profile" in frames(ds)[0]
        before, before_rgb = _decoded(ds), np.asarray(
            get_decoder(ds.file_meta.TransferSyntaxUID).as_array(ds, raw=False)[0])
        after_ds, data, _ = _cleaned(ds)
        assert b"Generic GBR Profile" not in data
        assert b"Apple" not in data
        assert frames(after_ds)[0].startswith(SIGNATURE + FTYP)
        assert np.array_equal(_decoded(after_ds), before)
        after_rgb = get_decoder(after_ds.file_meta.TransferSyntaxUID).as_array(after_ds, raw=False)
        assert np.array_equal(np.asarray(after_rgb[0]), before_rgb)

    def test_ftyp_and_image_header_rebuilt(self) -> None:
        """Text in the compatibility list and after the image header's 14 bytes goes; a second
        colour box goes (readers use the first)."""
        ds = read("MR_small_jp2klossless.dcm")
        stream, before = frames(ds)[0], _decoded(ds)
        ftyp = box(b"ftyp", b"jpx \0\0\0\0jp2 " + MARK + b"!")
        ihdr = _ihdr(ds)
        long_ihdr = box(b"ihdr", ihdr[8:] + MARK + b"-ihdr")
        header = box(b"jp2h", long_ihdr + GREY + box(b"colr", _icc(b"GRAY")))
        planted = b"".join([SIGNATURE, ftyp, header, box(b"jp2c", stream)])
        after_ds, data, _ = _cleaned(with_fragments(ds, [even(planted)]))
        assert MARK not in data
        assert frames(after_ds)[0][: 12 + 20 + 8 + 22 + 15] == (
            SIGNATURE + FTYP + box(b"jp2h", ihdr + GREY))
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_pillow(frames(after_ds)[0]), _pillow(stream))

    @pytest.mark.parametrize("length", [0, None])
    def test_each_frame_ends_with_its_own_file(self, length: int | None) -> None:
        """Two JP2 frames, each with a codestream box of length 0 ("to the end of the file") or
        its real length, and an XML box after it: two frames come out, each decodes the same."""
        ds = read("MR_small_jp2klossless.dcm")
        single = _decoded(ds)
        stream = frames(ds)[0]
        ds.NumberOfFrames = 2
        frame = _jp2(ds, stream, length=length) + box(b"xml ", MARK + b"<late/>")
        after_ds, data, report = _cleaned(with_fragments(ds, [even(frame), even(frame)]))
        assert MARK not in data
        assert report.frames == 2
        out = frames(after_ds)
        assert len(out) == 2
        assert all(f.count(SIGNATURE) == 1 for f in out)
        decoded = _decoded(after_ds)
        assert np.array_equal(decoded[0], single)
        assert np.array_equal(decoded[1], single)

    def test_a_box_of_length_0_after_the_codestream_is_the_frames_end(self) -> None:
        """Whatever runs "to the end of the file" after the codestream is dropped up to the next
        frame's fragment; the next frame is still found."""
        ds = read("MR_small_jp2klossless.dcm")
        single = _decoded(ds)
        ds.NumberOfFrames = 2
        frame = _jp2(ds, frames(ds)[0]) + b"\x00\x00\x00\x00xml " + MARK + b"<open/>"
        after_ds, data, _ = _cleaned(with_fragments(ds, [even(frame), even(frame)]))
        assert MARK not in data
        decoded = _decoded(after_ds)
        assert np.array_equal(decoded[0], single)
        assert np.array_equal(decoded[1], single)

    def test_header_boxes_cut_to_their_fields(self) -> None:
        """Bytes after a bit depth, channel definition, palette or mapping box's fields go; the
        fields stay, and the image decodes as the codestream alone does."""
        ds = read("MR_small_jp2klossless.dcm")
        stream, before = frames(ds)[0], _decoded(ds)
        bpcc = box(b"bpcc", b"\x8f")
        cdef = box(b"cdef", b"\x00\x01" + b"\x00\x00\x00\x00\x00\x01")
        tail = MARK + b"-tail"
        header = box(b"jp2h", _ihdr(ds, depth=0xFF) + box(b"bpcc", b"\x8f" + tail) + GREY
                     + box(b"cdef", cdef[8:] + tail))
        planted = b"".join([SIGNATURE, FTYP, header, box(b"jp2c", stream)])
        after_ds, data, report = _cleaned(with_fragments(ds, [even(planted)]))
        assert MARK not in data
        cleaned = frames(after_ds)[0]
        assert box(b"jp2h", _ihdr(ds, depth=0xFF) + bpcc + GREY + cdef) in cleaned
        assert {kind for kind, _, _ in report.removed} >= {"JP2_bpcc", "JP2_cdef"}
        assert np.array_equal(_decoded(after_ds), before)
        assert np.array_equal(_pillow(cleaned), _pillow(stream))

    def test_palette_and_mapping_cut_to_their_fields(self) -> None:
        """A palette of two 8-bit and 12-bit entries (3 bytes each) and a two-channel mapping
        keep exactly their fields (checked on the bytes: the palette is not this image's)."""
        ds = read("MR_small_jp2klossless.dcm")
        pclr = b"\x00\x02\x02\x07\x0b" + b"\x01\x00\x02" + b"\x03\x00\x04"
        cmap = b"\x00\x00\x01\x00" + b"\x00\x00\x01\x01"
        header = box(b"jp2h", _ihdr(ds) + GREY + box(b"pclr", pclr + MARK)
                     + box(b"cmap", cmap + MARK[:3]))
        planted = b"".join([SIGNATURE, FTYP, header, box(b"jp2c", frames(ds)[0])])
        planted_ds = with_fragments(ds, [even(planted)])
        clean_pixel_data(planted_ds)
        cleaned = frames(planted_ds)[0]
        assert MARK[:3] not in cleaned
        assert box(b"jp2h", _ihdr(ds) + GREY + box(b"pclr", pclr) + box(b"cmap", cmap)) in cleaned
