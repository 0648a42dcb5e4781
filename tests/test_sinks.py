"""Unit tests of the write side's small parts, each without a write: the sinks
against a fake that records calls (as dask's store tests use test doubles), the
TIFF directories written then read back (ours and rasterio's reading), and the
output spec decided on small arrays."""

from __future__ import annotations

import os
import struct
import warnings
import zlib

import dask.array as da
import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

from riomucho_dask.errors import OutputPathError, ProfileError, StoreError
from riomucho_dask.write.sinks import Part, PartsSink, multipart
from riomucho_dask.write.sinks.output import OutputFile
from riomucho_dask.write.sinks.parts import PartRef, PartSink, copy_range
from riomucho_dask.write.spec.decide import decide, output_array
from riomucho_dask.write.tiff import ifd
from riomucho_dask.write.tiff.codec import Tiles


class FakeSink:
    """A :class:`PartsSink` that keeps the parts in memory and records every call."""

    path = "/vsis3/bucket/fake.tif"  # (what upload_part names in its errors)

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.parts: dict[int, bytes] = {}
        self.output: bytes | None = None

    def __call__(self, number: int, data: bytes) -> Part:
        self.calls.append(("part", number, len(data)))
        self.parts[number] = bytes(data)
        return Part(number, f"etag-{number}", 0, len(data))

    def finalise(self, parts) -> None:
        self.calls.append(("finalise", [part.number for part in parts]))
        self.output = b"".join(self.parts[part.number] for part in sorted(parts))

    def abort(self) -> bool:
        self.calls.append(("abort",))
        self.parts.clear()
        return True


def _sinks_of_the_protocol(sink: PartsSink) -> PartsSink:  # (checked by type checkers)
    return sink


def _tiles(data, mask=None, level=0, row=0, col=0) -> Tiles:
    return Tiles(level, row, col, 1, len(data), list(data), mask)


# -- the sinks, against the fake -------------------------------------------------


def test_the_sinks_implement_the_protocol():
    for sink in (FakeSink(), PartSink(), multipart.Upload("/vsis3/b/k", "id", None)):
        _sinks_of_the_protocol(sink)
        assert callable(sink) and callable(sink.finalise) and callable(sink.abort)


def test_upload_part_hands_one_part_to_its_sink():
    sink = FakeSink()
    chunk = _tiles([b"aaaa", b"bb"], mask=[b"m"])
    pieces = [(0, False, 0, 2, (4, 2)), (0, True, 0, 1, (1,))]
    part = multipart.upload_part(sink, 3, b"HEAD", [chunk], pieces, b"TAIL", framed=False)
    assert part == Part(3, "etag-3", 0, 15)
    assert sink.calls == [("part", 3, 15)]
    assert sink.parts[3] == b"HEADaaaabbmTAIL"


def test_upload_part_frames_a_cogs_tiles_and_cuts_a_range():
    sink = FakeSink()
    chunk = _tiles([b"abcdef", b"xy"])
    pieces = [(0, False, 0, 2, (6, 2))]
    multipart.upload_part(sink, 1, b"", [chunk], pieces, b"", framed=True)
    framed = (struct.pack("<I", 6) + b"abcdef" + b"cdef"
              + struct.pack("<I", 2) + b"xy" + b"\0\0xy")
    assert sink.parts[1] == framed
    multipart.upload_part(sink, 2, b"", [chunk], pieces, b"", framed=True, skip=3, take=5)
    assert sink.parts[2] == framed[3:8]


def test_upload_part_refuses_tiles_computed_again_with_other_sizes():
    sink = FakeSink()
    chunk = _tiles([b"abc"])
    with pytest.raises(StoreError, match="part 4 of '/vsis3/bucket/fake.tif' is not uploaded"):
        multipart.upload_part(sink, 4, b"", [chunk], [(0, False, 0, 1, (5,))], b"", False)
    assert sink.calls == []  # nothing reached the sink


def test_upload_finalise_completes_the_parts_in_number_order(monkeypatch):
    completed = []
    monkeypatch.setattr(multipart.Upload, "complete",
                        lambda self, etags, size: completed.append((etags, size)))
    monkeypatch.setattr(multipart.Upload, "add", lambda self, number, data: f"e{number}")
    upload = multipart.Upload("/vsis3/b/k", "id", None)
    parts = [upload(2, b"later"), upload(1, b"abc")]
    assert parts == [Part(2, "e2", 0, 5), Part(1, "e1", 0, 3)]
    upload.finalise(parts)
    assert completed == [(["e1", "e2"], 8)]


def test_the_output_file_drops_its_part_sinks_with_its_temporaries(tmp_path):
    out = OutputFile(str(tmp_path / "out.tif"), {})
    sink = FakeSink()
    out.also_remove(sink)
    temporary = out.temporary()
    assert os.path.exists(temporary)
    out.remove_temporaries()
    assert sink.calls == [("abort",)]
    assert not os.path.exists(temporary)


# -- part files -----------------------------------------------------------------


def test_part_files_append_and_say_where(tmp_path):
    sink = PartSink()
    directory = sink.use(str(tmp_path / "out.tif"))
    assert os.path.dirname(directory) == str(tmp_path)
    first, second = sink(1, b"abc"), sink(2, b"defgh")
    assert first.ref == second.ref and os.path.dirname(first.ref) == directory
    assert (first.offset, first.size, second.offset, second.size) == (0, 3, 3, 5)
    with open(tmp_path / "copy", "w+b") as target:
        copy_range(second.ref, second.offset, second.size, target)
        target.seek(0)
        assert target.read() == b"defgh"
    sink.finalise([first, second])
    assert sink.directory is None and not os.path.exists(directory)
    assert sink.abort() is True  # (idempotent)


def test_part_files_hold_tiles_as_a_reference(tmp_path):
    sink = PartSink()
    tiles = _tiles([b"one", b"three"], mask=[b"m"])
    assert sink.hold(tiles) is tiles  # no directory yet: the tiles travel back
    sink.use(str(tmp_path / "out.tif"))
    held = sink.hold(tiles)
    assert held.data is None and held.mask is None and isinstance(held.part, PartRef)
    ref = held.part
    assert (ref.offset, ref.sizes, ref.mask_sizes, ref.nbytes) == (0, (3, 5), (1,), 9)
    assert ref.crc == zlib.crc32(b"onethreem")
    with open(ref.path, "rb") as part:
        assert part.read() == b"onethreem"
    assert sink.abort() is True and not os.path.exists(os.path.dirname(ref.path))


# -- the TIFF layout ------------------------------------------------------------


def _tiled_tiff(pixels: np.ndarray, big: bool, tile: int = 16) -> bytes:
    """A tiled, uncompressed one-band uint16 TIFF of ``pixels`` laid out by ifd.py:
    header, tiles, then the IFD (with out-of-line offsets and sizes)."""
    rows, cols = pixels.shape
    data, offsets = [], []
    at = ifd.HEADER_SIZE[big]
    for r in range(0, rows, tile):
        for c in range(0, cols, tile):
            block = np.zeros((tile, tile), "<u2")
            piece = pixels[r:r + tile, c:c + tile]
            block[:piece.shape[0], :piece.shape[1]] = piece
            offsets.append(at)
            data.append(block.tobytes())
            at += len(data[-1])
    short, long_ = ifd.SHORT, ifd.LONG8 if big else ifd.LONG
    tags = {256: ifd.Entry.of(cols, short), 257: ifd.Entry.of(rows, short),
            258: ifd.Entry.of(16, short), 259: ifd.Entry.of(1, short),
            262: ifd.Entry.of(1, short), 277: ifd.Entry.of(1, short),
            284: ifd.Entry.of(1, short), 322: ifd.Entry.of(tile, short),
            323: ifd.Entry.of(tile, short), 324: ifd.Entry.of(offsets, long_),
            325: ifd.Entry.of([len(d) for d in data], long_), 339: ifd.Entry.of(1, short)}
    end, at = at, at + (at & 1)  # (an IFD starts on an even offset)
    directory = ifd.ifd_bytes(tags, at, big)
    assert len(directory) == ifd.ifd_size(tags, big)
    return ifd.header(big, at) + b"".join(data) + b"\0" * (at - end) + directory


@pytest.mark.parametrize("big", [False, True])
def test_ifds_written_read_back_by_us_and_by_gdal(tmp_path, big):
    pixels = np.arange(37 * 45, dtype="uint16").reshape(37, 45)
    raw = _tiled_tiff(pixels, big)
    (tags,) = ifd.read_ifds(raw)
    assert int(tags[256].values()[0]) == 45 and int(tags[257].values()[0]) == 37
    assert len(tags[324].values()) == 3 * 3
    assert tags[324].type == (ifd.LONG8 if big else ifd.LONG)
    path = tmp_path / "layout.tif"
    path.write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            assert src.block_shapes == [(16, 16)]
            assert np.array_equal(src.read(1), pixels)


def test_ifds_chain_to_the_next_one():
    small = {256: ifd.Entry.of(1, ifd.SHORT)}
    long_values = {256: ifd.Entry.of(2, ifd.SHORT), 324: ifd.Entry.of([8, 9, 10], ifd.LONG)}
    first_at = 8
    second_at = first_at + ifd.ifd_size(small, False)
    raw = (ifd.header(False, first_at) + ifd.ifd_bytes(small, first_at, False, second_at)
           + ifd.ifd_bytes(long_values, second_at, False))
    first, second = ifd.read_ifds(raw)
    assert first == small and second == long_values
    assert list(second[324].values()) == [8, 9, 10]
    with pytest.raises(ValueError, match="little-endian"):
        ifd.read_ifds(b"MM" + raw[2:])


# -- the output spec ------------------------------------------------------------


@pytest.fixture
def like(tmp_path):
    """A 32 x 32 uint16 GeoTIFF with nodata 0, in 16 x 16 tiles."""
    path = str(tmp_path / "like.tif")
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1,
                       dtype="uint16", nodata=0, crs="EPSG:32631",
                       transform=from_origin(0, 320, 10, 10), tiled=True, blockxsize=16,
                       blockysize=16) as dst:
        dst.write(np.ones((1, 32, 32), "uint16"))
    return path


@pytest.fixture
def ones():
    return da.ones((1, 32, 32), dtype="uint16", chunks=16)


def test_spec_nodata_follows_like_only_while_the_dtype_is_kept(tmp_path, like, ones):
    out = str(tmp_path / "out.tif")
    assert decide(ones, out, like=like)[0].profile["nodata"] == 0
    spec, array = decide(ones.astype("uint8"), out, like=like)
    assert spec.profile.get("nodata") is None and array.dtype == "uint8"
    spec, _ = decide(ones, out, like=like, creation_options={"nodata": 7})
    assert spec.profile["nodata"] == 7 and spec.encoding.nodata == 7


def test_spec_chooses_the_encoding(tmp_path, like, ones):
    out = str(tmp_path / "out.tif")
    tiled = {"tiled": True, "blockxsize": 16, "blockysize": 16, "compress": "deflate"}
    encoding = decide(ones, out, like=like, creation_options=tiled)[0].encoding
    assert (encoding.block, dict(encoding.creation)["compress"], encoding.cog) == \
        ((16, 16), "deflate", False)
    cog = decide(ones, str(tmp_path / "out.tif"), like=like,
                 creation_options={"driver": "COG", "blocksize": 16})[0].encoding
    assert cog.cog and cog.overviews == 1
    striped = decide(ones, out, like=like, creation_options={"tiled": False})[0]
    assert striped.encoding is None  # (GDAL writes it through a dataset)


@pytest.mark.parametrize("keywords, error, match", [
    ({"creation_options": {"compresss": "deflate"}}, ProfileError, "did you mean 'compress'"),
    ({"lock": False}, ProfileError, "lock=False is refused"),
    ({"creation_options": {"tiled": False}, "overviews": [2]}, ProfileError, "tiled"),
])
def test_spec_refuses_before_computing(tmp_path, like, ones, keywords, error, match):
    with pytest.raises(error, match=match):
        decide(ones, str(tmp_path / "out.tif"), like=like, **keywords)


def test_spec_refuses_paths(tmp_path, like, ones):
    with pytest.raises(OutputPathError, match="does not exist"):
        decide(ones, str(tmp_path / "nope" / "out.tif"), like=like)
    with pytest.raises(OutputPathError, match="is a directory"):
        decide(ones, str(tmp_path), like=like)
    with pytest.raises(ProfileError, match="netCDF"):
        decide(ones, str(tmp_path / "out.nc"), like=like)


def test_spec_array_shapes():
    array, _ = output_array(np.zeros((4, 5), "uint8"), None, None)
    assert array.shape == (1, 4, 5)
    with pytest.raises(ProfileError, match="reduce it over time"):
        output_array(da.zeros((2, 1, 4, 5)), None, None)
