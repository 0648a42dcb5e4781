"""Tiles encoded in the task that computed them, by GDAL itself.

A tiled GeoTIFF or a COG whose options this module knows (:func:`for_profile`)
is not written through a GDAL dataset on the client.  Each chunk of the
array (whole output tiles, all bands) is written by its own task into an
in-memory GeoTIFF with the output's creation options, and the finished tile
bytes (predictor and compression applied by GDAL, exactly as for the
output) are taken from it: only compressed bytes travel to the writer
(:class:`~riomucho_dask.write.tiled.TiledWriter`), which places them.

For a COG, the overview levels are computed in the same graph from the
full-resolution blocks (2 x 2 reductions, level after level) and encoded
on the workers too.

GDAL was chosen over tifffile + imagecodecs (what odc-geo uses) by
measurement: 4 float32 512-px tiles, deflate with the floating-point
predictor, take 80 ms through GDAL's in-memory GeoTIFF against 89 ms
with imagecodecs' predictor and libdeflate (one run, this machine), and
GDAL needs no new package and applies every option as GDAL does.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import warnings
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import rasterio
from affine import Affine
from dask.highlevelgraph import HighLevelGraph
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile

from .. import timings
from ..errors import StoreError
from ..windows import offsets
from . import tiff
from .journal import Journal
from .metadata import Metadata
from .statistics import measure

__all__ = ["Encoding", "Tiles", "for_profile", "encoded_arrays", "reduce2"]

#: Codecs whose tiles are placed as they come (no table shared by the tiles).
CODECS = frozenset({"none", "deflate", "lzw", "zstd", "packbits"})
RESAMPLINGS = frozenset({"nearest", "average"})

_DATASET_KEYS = {"driver", "count", "width", "height", "dtype", "crs", "transform", "nodata"}
_GTIFF_KEYS = _DATASET_KEYS | {
    "tiled", "blockxsize", "blockysize", "compress", "predictor", "zlevel", "zstd_level",
    "interleave", "photometric", "bigtiff", "num_threads",
}
_COG_KEYS = _DATASET_KEYS | {
    "blocksize", "compress", "predictor", "level", "bigtiff", "num_threads",
    "overview_resampling", "resampling", "overview_count", "overviews",
    # layout keys a GTiff ``like`` brings along; the COG driver decides them
    "tiled", "blockxsize", "blockysize", "interleave", "photometric", "zlevel", "zstd_level",
}
#: An identity-free transform for the chunk files (tiles only; no warning).
_CHUNK_TRANSFORM = Affine(2.0, 0.0, 0.0, 0.0, -2.0, 0.0)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().upper() in ("YES", "TRUE", "ON", "1")
    return bool(value)


def _predictor(value: Any, dtype: np.dtype) -> int:
    """GTiff PREDICTOR from a GTiff or COG value (YES, STANDARD, FLOATING_POINT, 1-3)."""
    text = str(value).strip().upper()
    if text in ("YES", "TRUE", "ON"):
        return 3 if dtype.kind == "f" else 2
    return {"NO": 1, "FALSE": 1, "OFF": 1, "STANDARD": 2, "FLOATING_POINT": 3}.get(
        text, int(float(text)) if text.replace(".", "").isdigit() else 1)


@dataclass(frozen=True)
class Tiles:
    """The encoded tiles of one chunk of one level.

    ``data`` holds one ``bytes`` per tile, plane by plane then row by row
    (one plane unless bands are interleaved by band); ``mask`` the tiles of
    the internal mask, when the chunk had masked pixels and no nodata;
    ``stats`` the chunk's band statistics (full resolution, when the
    encoding asks for them: :mod:`riomucho_dask.write.statistics`).
    """

    level: int
    row: int
    col: int
    rows: int
    cols: int
    data: list | None
    mask: list | None = None
    part: Any = None  # a PartRef: the bytes are in a part file (data and mask None)
    stats: Any = None  # a BlockStatistics

    @property
    def nbytes(self) -> int:
        if self.part is not None:
            return 0  # (only the reference travels)
        return sum(map(len, self.data)) + sum(map(len, self.mask or ()))


@dataclass(frozen=True)
class Encoding:
    """How the output's tiles are encoded, and (COG) its overview levels.

    Travels with every encoding task, so it holds plain values only.
    """

    creation: tuple  # GTiff creation options of every chunk file, as items
    block: tuple[int, int]  # tile rows, cols
    count: int
    dtype: str
    nodata: float | None
    planes: int  # count when bands are interleaved by band, else 1
    cog: bool = False
    overviews: int = 0
    resampling: str = "nearest"
    bigtiff: str = "if_needed"
    stats: bool = False  # measure the full-resolution chunks (band statistics)

    # -- the chunk files ---------------------------------------------------
    def _chunk_profile(self, height: int, width: int) -> dict:
        return {**dict(self.creation), "driver": "GTiff", "count": self.count,
                "dtype": self.dtype, "height": height, "width": width,
                "transform": _CHUNK_TRANSFORM}

    def _gtiff_bytes(self, profile: dict, data: np.ndarray, mask: np.ndarray | None,
                     metadata: Metadata | None = None) -> bytes:
        with MemoryFile() as memfile:
            with contextlib.ExitStack() as stack:
                if mask is not None:  # (only then: an Env costs about 0.1 ms)
                    stack.enter_context(rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True))
                with memfile.open(**profile) as dataset:
                    if metadata:  # (before the pixels, as GDALWriter: a palette's
                        metadata.apply(dataset)  # photometric is set with the first block)
                    dataset.write(data)
                    if mask is not None:
                        dataset.write_mask(mask)
            return bytes(memfile.getbuffer())

    def encode(self, block: np.ndarray, row: int, col: int, level: int = 0) -> Tiles:
        """Encode ``block`` (``(count, h, w)``, maybe masked), whose first pixel
        is at (``row``, ``col``) of ``level``, into its tiles."""
        data, mask = as_written(block, self.nodata)
        stats = measure(data, mask, self.nodata) if self.stats and level == 0 else None
        _, height, width = data.shape
        by, bx = self.block
        creation = dict(self.creation)
        if mask is None and creation["compress"] == "none" and "predictor" not in creation:
            # Uncompressed tiles are the pixels themselves: no GDAL dataset needed
            # (about 3 ms a tile saved, most of the cost of small windows).
            return Tiles(level, row // by, col // bx, -(-height // by), -(-width // bx),
                         self._raw_tiles(data), stats=stats)
        raw = self._gtiff_bytes(self._chunk_profile(height, width), data, mask)
        ifds = tiff.read_ifds(raw)
        return Tiles(level, row // by, col // bx, -(-height // by), -(-width // bx),
                     _tile_bytes(raw, ifds[0]),
                     _tile_bytes(raw, ifds[1]) if mask is not None else None, stats=stats)

    def _raw_tiles(self, data: np.ndarray) -> list:
        """Uncompressed tiles of ``data`` as GDAL lays them out: little-endian,
        edge tiles padded to the full tile, samples interleaved by pixel or one
        plane per band."""
        count, height, width = data.shape
        by, bx = self.block
        rows, cols = -(-height // by), -(-width // bx)
        padded = np.zeros((count, rows * by, cols * bx), np.dtype(self.dtype).newbyteorder("<"))
        padded[:, :height, :width] = data
        grid = padded.reshape(count, rows, by, cols, bx)
        if self.planes == 1:  # (rows, cols, by, bx, count): each tile's pixels, samples last
            tiles = grid.transpose(1, 3, 2, 4, 0)
            return [tiles[r, c].tobytes() for r in range(rows) for c in range(cols)]
        tiles = grid.transpose(0, 1, 3, 2, 4)  # (band, rows, cols, by, bx)
        return [tiles[b, r, c].tobytes()
                for b in range(count) for r in range(rows) for c in range(cols)]

    def template(self, crs: Any, transform: Any, mask: bool,
                 metadata: Metadata | None = None) -> tuple[list[dict], bytes]:
        """GDAL's IFDs for the output (one tile, georeferenced; with an internal
        mask when ``mask``; with ``metadata`` set, so GDAL writes its tags: the
        ``GDAL_METADATA`` XML, the palette, text tags), and its all-valid mask
        tile (``b""`` without)."""
        by, bx = self.block
        profile = {**self._chunk_profile(by, bx), "crs": crs, "transform": transform}
        if transform is None:  # no georeferencing: GDAL writes none either
            del profile["transform"]
        if self.nodata is not None:
            profile["nodata"] = self.nodata
        data = np.zeros((self.count, by, bx), self.dtype)
        with warnings.catch_warnings():  # (not georeferenced: said by the profile)
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            raw = self._gtiff_bytes(profile, data,
                                    np.full((by, bx), 255, "uint8") if mask else None, metadata)
        ifds = tiff.read_ifds(raw)
        return ifds, (_tile_bytes(raw, ifds[1])[0] if mask else b"")

    def decode(self, tiles: tuple[list, list | None], height: int, width: int) -> np.ndarray:
        """The pixels of a ``height`` x ``width`` chunk from its encoded tiles
        (and mask tiles): a masked array when there is a mask."""
        data, mask = tiles
        ifds, _ = self.template(None, _CHUNK_TRANSFORM, mask is not None)
        parts = [data] + ([mask] if mask is not None else [])
        tags = [dict(ifd) for ifd in ifds[:len(parts)]]
        for ifd, tile_list in zip(tags, parts):
            ifd[tiff.IMAGE_WIDTH] = tiff.Entry.of(width, tiff.LONG)
            ifd[tiff.IMAGE_LENGTH] = tiff.Entry.of(height, tiff.LONG)
            ifd[tiff.TILE_OFFSETS] = tiff.Entry.of([0] * len(tile_list), tiff.LONG)
            ifd[tiff.TILE_BYTE_COUNTS] = tiff.Entry.of(list(map(len, tile_list)), tiff.LONG)
        sizes = [tiff.ifd_size(ifd, False) for ifd in tags]
        position = tiff.HEADER_SIZE[False] + sum(sizes)
        for ifd, tile_list in zip(tags, parts):
            lengths = np.array(list(map(len, tile_list)), "int64")
            ifd[tiff.TILE_OFFSETS] = tiff.Entry.of(position + np.cumsum(lengths) - lengths,
                                                   tiff.LONG)
            position += int(lengths.sum())
        out, at = [tiff.header(False, tiff.HEADER_SIZE[False])], tiff.HEADER_SIZE[False]
        for n, ifd in enumerate(tags):
            out.append(tiff.ifd_bytes(ifd, at, False, at + sizes[n] if n + 1 < len(tags) else 0))
            at += sizes[n]
        out += [chunk for tile_list in parts for chunk in tile_list]
        with MemoryFile(b"".join(out)) as memfile, memfile.open() as dataset:
            pixels = dataset.read()
            if mask is None:
                return pixels
            valid = dataset.read_masks(1) > 0
        return _masked(pixels, np.broadcast_to(~valid, pixels.shape).copy())

    # -- the levels ----------------------------------------------------------
    def shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """(height, width) of the full resolution and of each overview level."""
        shapes = [(height, width)]
        for _ in range(self.overviews):
            h, w = shapes[-1]
            shapes.append((_half(h), _half(w)))
        return shapes


def as_written(block: np.ndarray, nodata: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """``block``'s pixels as the file holds them, and its internal mask (255
    valid, 0 masked) when it has one: masked pixels become nodata, or, without
    nodata, 0 under a mask of the pixels masked in any band."""
    if not isinstance(block, np.ma.MaskedArray):
        return block, None
    masked = np.ma.getmaskarray(block)
    if nodata is not None:
        return block.filled(nodata), None
    if not masked.any():
        return block.data, None
    return block.filled(0), np.where(masked.any(axis=0), 0, 255).astype("uint8")


def _reduce_written(block: np.ndarray, resampling: str, nodata: Any) -> np.ndarray:
    """:func:`reduce2` of ``block`` as the file holds it: an overview made from
    the written pixels, the same whether they were just computed or read back."""
    with timings.timed("encode"):
        data, mask = as_written(block, nodata)
        if mask is not None:
            data = _masked(data, np.broadcast_to(mask == 0, data.shape))
        return reduce2(data, resampling, nodata)


def _masked(data: np.ndarray, mask: np.ndarray) -> np.ma.MaskedArray:
    """A masked array whose fill value its dtype holds: numpy's default for
    integers (999999) does not fit uint16 and fails to cross between
    dask.distributed workers."""
    return np.ma.MaskedArray(data, mask=mask, fill_value=np.zeros((), dtype=data.dtype))


def _tile_bytes(raw: bytes, ifd: dict) -> list:
    offsets = ifd[tiff.TILE_OFFSETS].values()
    counts = ifd[tiff.TILE_BYTE_COUNTS].values()
    return [raw[int(o):int(o) + int(n)] for o, n in zip(offsets, counts)]


def _overview_count(profile: dict, block: int) -> int:
    """COG overview levels: given (at most down to 1 x 1, as GDAL), or halving
    until the image fits in one tile."""
    overviews = str(profile.get("overviews", "auto")).lower()
    if overviews == "none":
        return 0
    height, width = int(profile["height"]), int(profile["width"])
    if "overview_count" in profile:
        most = 0
        while height > 1 or width > 1:
            height, width, most = _half(height), _half(width), most + 1
        return min(int(profile["overview_count"]), most)
    count = 0
    while height > block or width > block:
        height, width, count = _half(height), _half(width), count + 1
    return count


def _exact(nodata: Any, dtype: np.dtype) -> Any:
    """``nodata`` as an int for integer outputs (int64 values beyond 2**53
    stay exact), as a float otherwise."""
    if dtype.kind in "iu" and float(nodata).is_integer():
        return int(nodata)
    return float(nodata)


def for_profile(profile: dict) -> Encoding | None:
    """The :class:`Encoding` of an output profile, or None when GDAL itself
    must write it (another driver, strips, another codec or option).

    Examples
    --------
    >>> enc = for_profile({"driver": "COG", "count": 1, "dtype": "float32",
    ...                    "width": 2000, "height": 1000, "compress": "deflate"})
    >>> enc.block, enc.overviews, enc.resampling
    ((512, 512), 2, 'average')
    >>> for_profile({"driver": "GTiff", "count": 1, "dtype": "uint8",
    ...              "width": 10, "height": 10}) is None  # strips: GDAL writes them
    True
    """
    lower = {key.lower(): value for key, value in profile.items()}
    driver = str(lower.get("driver", "GTiff")).upper()
    dtype = np.dtype(lower["dtype"])
    if dtype.kind == "c":  # (complex overviews: GDAL's own route)
        return None
    if driver == "COG":
        if set(lower) - _COG_KEYS:
            return None
        by = bx = int(lower.get("blocksize", lower.get("blockxsize", 512)))  # as cog.py
        compress = str(lower.get("compress", "lzw")).lower()
        interleave = "pixel"
        level = lower.get("level")
        resampling = str(lower.get("overview_resampling", lower.get("resampling", "")))
        resampling = resampling.lower() or ("average" if dtype.kind in "fc" else "nearest")
        if resampling not in RESAMPLINGS or str(lower.get("overviews", "auto")).lower() not in (
                "auto", "none", "ignore_existing"):
            return None
    elif driver == "GTIFF":
        if set(lower) - _GTIFF_KEYS or not _truthy(lower.get("tiled", False)):
            return None
        by, bx = int(lower.get("blockysize", 256)), int(lower.get("blockxsize", 256))
        compress = str(lower.get("compress", "none")).lower()
        interleave = str(lower.get("interleave", "pixel")).lower()
        level, resampling = None, "nearest"
    else:
        return None
    if compress not in CODECS or interleave not in ("pixel", "band") or by % 16 or bx % 16:
        return None
    creation: dict[str, Any] = {"tiled": True, "blockxsize": bx, "blockysize": by,
                                "compress": compress, "interleave": interleave}
    if "predictor" in lower:
        if driver == "GTIFF" and not str(lower["predictor"]).strip().isdigit():
            return None  # GDAL's GTiff driver says what it thinks of it
        predictor = _predictor(lower["predictor"], dtype)
        if predictor != 1:
            creation["predictor"] = predictor
    for key in ("zlevel", "zstd_level"):
        if key in lower and driver == "GTIFF":
            creation[key] = lower[key]
    if level is not None and compress in ("deflate", "zstd"):
        creation["zlevel" if compress == "deflate" else "zstd_level"] = level
    if driver == "GTIFF" and "photometric" in lower:
        creation["photometric"] = lower["photometric"]
    nodata = lower.get("nodata")
    return Encoding(
        creation=tuple(sorted(creation.items())), block=(by, bx), count=int(lower["count"]),
        dtype=dtype.name, nodata=None if nodata is None else _exact(nodata, dtype),
        planes=int(lower["count"]) if interleave == "band" else 1,
        cog=driver == "COG", overviews=_overview_count(lower, max(by, bx)) if driver == "COG"
        else 0, resampling=resampling, bigtiff=str(lower.get("bigtiff", "if_needed")).lower(),
    )


# -- the graph ------------------------------------------------------------------
def _encode_block(block: np.ndarray, encoding: Encoding, level: int, row_offsets: np.ndarray,
                  col_offsets: np.ndarray, sink=None, block_id=None):
    # (block_id and the offsets, not block_info: a dict per chunk costs about
    # 1 ms a chunk to build and carry in the graph)
    row, col = int(row_offsets[block_id[1]]), int(col_offsets[block_id[2]])
    if row % encoding.block[0] or col % encoding.block[1]:
        raise StoreError(f"a chunk at row {row}, column {col} does not start on a "
                         f"{encoding.block[0]} x {encoding.block[1]} tile")
    with timings.timed("encode"):
        tiles = encoding.encode(block, row, col, level)
        if sink is not None:  # (into a part file, from the workers)
            tiles = sink(tiles)
    out = np.empty((1, 1, 1), dtype=object)
    out[0, 0, 0] = tiles
    return out


def _encoded(array: da.Array, encoding: Encoding, level: int, sink=None) -> da.Array:
    chunks = ((1,), (1,) * len(array.chunks[1]), (1,) * len(array.chunks[2]))
    # (offsets as arrays: dask's task spec walks tuples in every task's arguments)
    return array.map_blocks(_encode_block, encoding, level, np.asarray(offsets(array.chunks[1])),
                            np.asarray(offsets(array.chunks[2])), sink, chunks=chunks,
                            dtype=object,
                            meta=np.empty((0, 0, 0), dtype=object),
                            # (after the array's own name: fused with it, the task keeps
                            # the user's name in the dashboard, "map_windows", "truediv")
                            name=f"{array.name}-encode-{level}-"
                            + da.core.tokenize(array, encoding, level,
                                               getattr(sink, "owner", None)))


def _half(size: int) -> int:
    """An overview level's size from the level above's, as GDAL's COG driver
    makes it: halved, rounded down (never below 1 pixel)."""
    return max(1, size // 2)


def reduce2(block: np.ndarray, resampling: str, nodata: float | None) -> np.ndarray:
    """``block`` (``(count, h, w)``) at half resolution, as GDAL's overviews:
    each pixel from the 2 x 2 pixels it covers; an odd last row or column is
    dropped, as GDAL's COG driver rounds overview sizes down (a side of 1
    pixel stays 1).

    ``"nearest"`` takes the top-left pixel (as GDAL does for a factor of 2);
    ``"average"`` the mean of the valid pixels (not nodata or masked; nodata
    or masked if none), rounded half away from zero for integers.

    Examples
    --------
    >>> a = np.arange(12, dtype="float32").reshape(1, 3, 4)
    >>> reduce2(a, "average", None)[0]
    array([[2.5, 4.5]], dtype=float32)
    >>> reduce2(a, "nearest", None)[0]
    array([[0., 2.]], dtype=float32)
    """
    _, height, width = block.shape
    step_h, step_w = (2 if height > 1 else 1), (2 if width > 1 else 1)
    half_h, half_w = height // step_h, width // step_w
    block = block[:, :half_h * step_h, :half_w * step_w]
    if resampling == "nearest":
        return block[:, ::step_h, ::step_w]
    if step_h == step_w == 2 and _all_valid(block, nodata):  # the common case, quick
        parts = [block[:, r::2, c::2].astype("float64") for r in (0, 1) for c in (0, 1)]
        mean = (parts[0] + parts[1] + parts[2] + parts[3]) * 0.25
        return _rounded(mean, block.dtype).astype(block.dtype)
    data = np.ma.getdata(block).astype("float64")
    valid = ~np.ma.getmaskarray(block)
    if nodata is not None:  # (NaN without a NaN nodata is averaged in, as GDAL does)
        valid &= ~(np.isnan(data) if math.isnan(nodata) else data == nodata)
    shape = (block.shape[0], half_h, step_h, half_w, step_w)
    total = np.where(valid, data, 0).reshape(shape).sum(axis=(2, 4))
    count = valid.reshape(shape).sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    empty = count == 0
    mean = _rounded(mean, block.dtype)
    fill = nodata if nodata is not None else (np.nan if block.dtype.kind in "fc" else 0)
    out = np.where(empty, fill, mean).astype(block.dtype)
    if isinstance(block, np.ma.MaskedArray) and nodata is None:
        return _masked(out, empty)
    return out


def _rounded(mean: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Means for an integer dtype rounded half away from zero, as GDAL does."""
    if np.dtype(dtype).kind in "fc":
        return mean
    return np.copysign(np.floor(np.abs(mean) + 0.5), mean)


def _all_valid(block: np.ndarray, nodata: float | None) -> bool:
    """No masked or nodata pixel in ``block``."""
    if isinstance(block, np.ma.MaskedArray) and np.ma.getmask(block) is not np.ma.nomask \
            and np.ma.getmask(block).any():
        return False
    data = np.ma.getdata(block)
    if nodata is None:
        return True
    return not (np.isnan(data).any() if math.isnan(nodata) else (data == nodata).any())


def _overview(array: da.Array, encoding: Encoding) -> tuple[da.Array, dict]:
    """The next overview level of ``array``, and the rechunking that makes its
    chunks whole tiles.

    Every chunk but the last has an even size (whole tiles), so halving each
    chunk halves the level as GDAL does.
    """
    chunks = [array.chunks[0]]
    for sizes in array.chunks[1:]:
        chunks.append((1,) if sum(sizes) == 1 else tuple(size // 2 for size in sizes))
    reduced = array.map_blocks(_reduce_written, encoding.resampling, encoding.nodata,
                               chunks=tuple(chunks), dtype=array.dtype, meta=array._meta,
                               name="overview-" + da.core.tokenize(array, encoding))
    new = {}
    for axis, block in ((1, encoding.block[0]), (2, encoding.block[1])):
        sizes = [size for size in reduced.chunks[axis] if size]  # (an odd last pixel gone)
        if len(sizes) != len(reduced.chunks[axis]) or any(size % block for size in sizes[:-1]):
            whole = max(1, round(max(sizes) / block)) * block
            new[axis] = whole if any(size % block for size in sizes[:-1]) else tuple(sizes)
    return reduced, new


def encoded_arrays(array: da.Array, encoding: Encoding, journal: Journal | None = None,
                   sink=None) -> list[tuple[da.Array, list]]:
    """The encoded tiles of ``array`` (chunked to whole tiles, all bands in
    each chunk) and, for a COG, of each overview level: object arrays with
    one :class:`Tiles` per chunk, each with the place ``(level, tile row,
    tile column)`` of each of its chunks, in key order.

    With a ``journal`` of chunks already written, an overview chunk still to
    compute takes the chunks below it that are written from the spool (decoded,
    not computed again), so the graph needs no work a written chunk did.
    ``sink`` (a :class:`~riomucho_dask.write.parts.PartSink`) may put the
    tiles' bytes into part files on the workers.
    """
    levels = [array]
    for n in range(encoding.overviews):
        reduced, rechunk = _overview(levels[-1], encoding)
        if journal is not None and journal.entries:
            reduced = _restored(reduced, levels[-1], rechunk, n, encoding, journal)
        levels.append(reduced.rechunk(rechunk) if rechunk else reduced)
    return [(_encoded(level_array, encoding, n, sink), places(level_array, encoding, n))
            for n, level_array in enumerate(levels)]


def places(array: da.Array, encoding: Encoding, level: int) -> list:
    """``(level, tile row, tile column)`` of each chunk of ``array``, row by row."""
    rows, cols = offsets(array.chunks[1]), offsets(array.chunks[2])
    by, bx = encoding.block
    return [(level, rows[i] // by, cols[j] // bx)
            for i in range(len(array.chunks[1])) for j in range(len(array.chunks[2]))]


def _overlapping(edges: tuple, start: int, stop: int) -> range:
    """Indices of the chunks (between ``edges``) that overlap ``[start, stop)``.

    Examples
    --------
    >>> list(_overlapping((0, 4, 8, 10), 3, 9))
    [0, 1, 2]
    >>> list(_overlapping((0, 4, 8, 10), 4, 4))
    []
    """
    if start >= stop:
        return range(0)
    first = bisect.bisect_right(edges, start) - 1
    last = bisect.bisect_left(edges, stop)
    return range(first, last)


def _restored(reduced: da.Array, above: da.Array, rechunk: dict, level: int,
              encoding: Encoding, journal: Journal) -> da.Array:
    """``reduced`` (``above`` halved, chunk by chunk) with each chunk whose
    ``above`` chunk is already written, and is still needed by an overview
    chunk to compute, read back from the spool and halved here."""
    parent = reduced.rechunk(rechunk) if rechunk else reduced
    parent_rows, parent_cols = offsets(parent.chunks[1]), offsets(parent.chunks[2])
    rows, cols = offsets(reduced.chunks[1]), offsets(reduced.chunks[2])
    by, bx = encoding.block
    done = journal.entries
    literal = {}
    for (i, j), place in zip(np.ndindex(len(rows) - 1, len(cols) - 1),
                             places(above, encoding, level)):
        if place not in done:
            continue
        needed = [(level + 1, parent_rows[pi] // by, parent_cols[pj] // bx)
                  for pi in _overlapping(parent_rows, rows[i], rows[i + 1])
                  for pj in _overlapping(parent_cols, cols[j], cols[j + 1])]
        if all(p in done for p in needed):
            continue
        height, width = above.chunks[1][i], above.chunks[2][j]
        data = encoding.decode(journal.read(done[place]), height, width)
        literal[i, j] = _reduce_written(data, encoding.resampling, encoding.nodata)
    if not literal:
        return reduced
    name = "restored-" + da.core.tokenize(reduced.name, sorted(literal))
    layer = {
        (name, 0, i, j): literal[i, j] if (i, j) in literal else (reduced.name, 0, i, j)
        for i, j in np.ndindex(len(rows) - 1, len(cols) - 1)
    }
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[reduced])
    return da.Array(graph, name, reduced.chunks, meta=reduced._meta)
