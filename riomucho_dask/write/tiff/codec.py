"""The GDAL codec of encoded tiles: a chunk of pixels in, its tiles' bytes out.

Each chunk of the output (whole tiles, all bands) is written by its own
task into an in-memory GeoTIFF with the output's creation options, and the
finished tile bytes (predictor and compression applied by GDAL, exactly as
for the output) are taken from it.  The same one-tile files give the
output's IFDs (:func:`template`), and chunks already written are read back
from their bytes (:func:`decode`, to resume a write).

GDAL was chosen over tifffile + imagecodecs (what odc-geo uses) by
measurement: 4 float32 512-px tiles, deflate with the floating-point
predictor, take 80 ms through GDAL's in-memory GeoTIFF against 89 ms
with imagecodecs' predictor and libdeflate (one run, this machine), and
GDAL needs no new package and applies every option as GDAL does.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.windows import Window

from ..kernels.pixels import as_written, masked
from ..kernels.statistics import measure
from ..spec.layout import Encoding
from ..spec.metadata import Metadata
from . import ifd as tiff

__all__ = ["Tiles", "encode", "decode", "template", "as_written"]

#: An identity-free transform for the chunk files (tiles only; no warning).
_CHUNK_TRANSFORM = Affine(2.0, 0.0, 0.0, 0.0, -2.0, 0.0)


@dataclass(frozen=True)
class Tiles:
    """The encoded tiles of one chunk of one level.

    ``data`` holds one ``bytes`` per tile, plane by plane then row by row
    (one plane unless bands are interleaved by band); ``mask`` the tiles of
    the internal mask, when the chunk had masked pixels and no nodata;
    ``stats`` the chunk's band statistics (full resolution, when the
    encoding asks for them: :mod:`riomucho_dask.write.kernels.statistics`).
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


def _chunk_profile(encoding: Encoding, height: int, width: int) -> dict:
    return {**dict(encoding.creation), "driver": "GTiff", "count": encoding.count,
            "dtype": encoding.dtype, "height": height, "width": width,
            "transform": _CHUNK_TRANSFORM}


def _gtiff_bytes(profile: dict, data: np.ndarray, mask: np.ndarray | None,
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


def encode(encoding: Encoding, block: np.ndarray, row: int, col: int, level: int = 0) -> Tiles:
    """Encode ``block`` (``(count, h, w)``, maybe masked), whose first pixel
    is at (``row``, ``col``) of ``level``, into its tiles."""
    # (a GeoTIFF's overview levels keep the pixels under their mask, as GDAL;
    # a COG's are GDAL's COG driver's: 0 there)
    _, height, width = block.shape
    window = f"window {Window(col, row, width, height)!r}" if level == 0 else None
    data, mask = as_written(block, encoding.nodata, keep=level > 0 and not encoding.cog,
                            window=window)
    stats = measure(data, mask, encoding.nodata) if encoding.stats and level == 0 else None
    by, bx = encoding.block
    place = (level, row // by, col // bx, -(-height // by), -(-width // bx))
    creation = dict(encoding.creation)
    if mask is None and creation["compress"] == "none" and "predictor" not in creation:
        # Uncompressed tiles are the pixels themselves: no GDAL dataset needed
        # (about 3 ms a tile saved, most of the cost of small windows).
        return Tiles(*place, _raw_tiles(encoding, data), stats=stats)
    raw = _gtiff_bytes(_chunk_profile(encoding, height, width), data, mask)
    ifds = tiff.read_ifds(raw)
    return Tiles(*place, _tile_bytes(raw, ifds[0]),
                 _tile_bytes(raw, ifds[1]) if mask is not None else None, stats=stats)


def _raw_tiles(encoding: Encoding, data: np.ndarray) -> list:
    """Uncompressed tiles of ``data`` as GDAL lays them out: little-endian,
    edge tiles padded to the full tile, samples interleaved by pixel or one
    plane per band."""
    count, height, width = data.shape
    by, bx = encoding.block
    rows, cols = -(-height // by), -(-width // bx)
    padded = np.zeros((count, rows * by, cols * bx), np.dtype(encoding.dtype).newbyteorder("<"))
    padded[:, :height, :width] = data
    grid = padded.reshape(count, rows, by, cols, bx)
    if encoding.planes == 1:  # (rows, cols, by, bx, count): each tile's pixels, samples last
        tiles = grid.transpose(1, 3, 2, 4, 0)
        return [tiles[r, c].tobytes() for r in range(rows) for c in range(cols)]
    tiles = grid.transpose(0, 1, 3, 2, 4)  # (band, rows, cols, by, bx)
    return [tiles[b, r, c].tobytes()
            for b in range(count) for r in range(rows) for c in range(cols)]


def template(encoding: Encoding, crs: Any, transform: Any, mask: bool,
             metadata: Metadata | None = None) -> tuple[list[dict], bytes]:
    """GDAL's IFDs for the output (one tile, georeferenced; with an internal
    mask when ``mask``; with ``metadata`` set, so GDAL writes its tags: the
    ``GDAL_METADATA`` XML, the palette, text tags), and its all-valid mask
    tile (``b""`` without)."""
    by, bx = encoding.block
    profile = {**_chunk_profile(encoding, by, bx), "crs": crs, "transform": transform}
    if transform is None:  # no georeferencing: GDAL writes none either
        del profile["transform"]
    if encoding.nodata is not None:
        profile["nodata"] = encoding.nodata
    data = np.zeros((encoding.count, by, bx), encoding.dtype)
    with warnings.catch_warnings():  # (not georeferenced: said by the profile)
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        raw = _gtiff_bytes(profile, data,
                           np.full((by, bx), 255, "uint8") if mask else None, metadata)
    ifds = tiff.read_ifds(raw)
    return ifds, (_tile_bytes(raw, ifds[1])[0] if mask else b"")


def decode(encoding: Encoding, tiles: tuple[list, list | None], height: int,
           width: int) -> np.ndarray:
    """The pixels of a ``height`` x ``width`` chunk from its encoded tiles
    (and mask tiles): a masked array when there is a mask."""
    data, mask = tiles
    ifds, _ = template(encoding, None, _CHUNK_TRANSFORM, mask is not None)
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
    return masked(pixels, np.broadcast_to(~valid, pixels.shape).copy())


def _tile_bytes(raw: bytes, ifd: dict) -> list:
    offsets = ifd[tiff.TILE_OFFSETS].values()
    counts = ifd[tiff.TILE_BYTE_COUNTS].values()
    return [raw[int(o):int(o) + int(n)] for o, n in zip(offsets, counts)]
