"""Reading: raster paths -> lazy dask arrays chunked to block windows."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.enums import MaskFlags

from .. import gdal_options
from ..errors import InputError, InputNotFoundError
from ..paths import is_remote
from ..windows import block_chunks, slices_to_window
from ..workers import setup_once
from . import handles
from .grid import Grid
from .sources import Source, native_grid

__all__ = [
    "open_raster", "RasterInfo", "raster_info", "raster_array", "raster_sources",
    "array_grids", "grid_tag", "Grid", "Source",
]

#: Prefix of the names of the arrays open_raster makes.
NAME = "open_raster-"


@dataclass(frozen=True)
class RasterInfo:
    """What riomucho_dask needs to know of an input raster (no pixels)."""

    path: str
    count: int
    height: int
    width: int
    dtype: str
    block_shape: tuple[int, int]
    crs: Any
    transform: Any
    nodata: Any
    profile: dict
    signature: Any
    alpha: bool = False  # a band is an alpha band (its mask)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.count, self.height, self.width)


def raster_info(path: str | os.PathLike) -> RasterInfo:
    """Read the metadata of ``path`` (no pixels).

    Raises
    ------
    InputNotFoundError
        When the file does not exist or GDAL cannot open it.
    """
    path = os.fspath(path)
    if not is_remote(path):
        if not os.path.exists(path):
            raise InputNotFoundError(f"input {path!r} does not exist")
        # absolute in the graph: workers elsewhere (a remote cluster's) may run
        # in another directory
        path = os.path.abspath(path)
    with handles.open_dataset(path) as src:
        dtypes = set(src.dtypes)
        dtype = np.result_type(*dtypes).name if len(dtypes) > 1 else src.dtypes[0]
        return RasterInfo(
            path=path,
            count=src.count,
            height=src.height,
            width=src.width,
            dtype=dtype,
            block_shape=tuple(src.block_shapes[0]),
            crs=src.crs,
            transform=src.transform,
            nodata=src.nodata,
            profile=dict(src.profile),
            signature=handles.signature(path),
            alpha=any(MaskFlags.alpha in flags for flags in src.mask_flag_enums),
        )


class RasterSource:
    """A picklable array-like that reads windows of a :class:`Source`.

    It holds the source (paths and metadata), never an open dataset, so it
    is safe to put in any graph; :func:`raster_sources` finds it there, and
    with it the grid the array is on.
    """

    def __init__(self, source: Source):
        self.source = source
        self.grid = source.grid
        self.shape = (source.count, *source.grid.shape)
        self.dtype = np.dtype(source.dtype)
        self.ndim = 3

    def __getitem__(self, key):
        bands, rows, cols = key
        window = slices_to_window(rows, cols)
        indexes = list(range(1, self.shape[0] + 1))[bands]
        setup_once()
        with gdal_options.env(self.source.gdal_env):
            return self.source.read(window, indexes)


class GridTag:
    """A stand-in read by nothing, in the graph of an array that reads its files
    itself (``manual_read``, overlaps): it says which grid the array is on.

    Its blocks are empty; the task that gets one ignores it.
    """

    def __init__(self, grid: Grid, shape: tuple[int, int, int]):
        self.grid = grid
        self.shape = shape
        self.dtype = np.dtype("uint8")
        self.ndim = 3

    def __getitem__(self, key):
        return _EMPTY


_EMPTY = np.empty((0, 0, 0), "uint8")


def open_raster(
    path: str | os.PathLike | list | tuple,
    *,
    chunks: str | int | tuple[int, int] = "blocks",
    masked: bool = False,
) -> da.Array:
    """Open a raster (or a mosaic of rasters) as a lazy dask array ``(bands, rows, cols)``.

    Nothing is read until the array is computed; the graph holds the path
    and the windows, never an open dataset, so it runs on any scheduler.

    Parameters
    ----------
    path : str, os.PathLike, or a list or tuple of them
        A raster rasterio can open; a list or tuple of paths is their mosaic
        (on the union of their footprints, the first file's CRS and pixels;
        the first valid pixel wins, as ``rasterio.merge``).
    chunks : "blocks", int or (int, int), optional
        ``"blocks"`` (default): one chunk per block window of the (first)
        file, partial edge blocks included.  Otherwise the chunk size in
        pixels, a whole multiple of the block shape (any size for a striped
        file, whose strips span the whole width).  All bands are in every chunk.
    masked : bool, optional
        Chunks are numpy masked arrays, masked where
        ``dataset.read(masked=True)`` masks them (nodata, internal masks,
        alpha), and outside the files of a mosaic.

    Returns
    -------
    dask.array.Array
        It knows its grid: ``to_raster`` of it, or of arrays derived from it,
        needs no ``like=``.

    Raises
    ------
    InputNotFoundError
        At once, when the file does not exist (an ``OSError``).

    Examples
    --------
    >>> arr = open_raster("scene_a.tif")
    >>> arr.shape, arr.chunksize
    ((3, 97, 131), (3, 32, 32))
    >>> open_raster("scene_a.tif", chunks=64).chunks[1:]
    ((64, 33), (64, 64, 3))
    """
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    if not paths:
        raise InputError("open_raster needs a path, or a list of paths for a mosaic")
    infos = tuple(raster_info(p) for p in paths)
    label = f"input {infos[0].path!r}" if len(infos) == 1 else (
        f"mosaic of {len(infos)} files from {infos[0].path!r}")
    source = Source(infos, native_grid(infos), masked=masked, label=label)
    row_chunks, col_chunks = block_chunks(*source.grid.shape, infos[0].block_shape, chunks)
    return raster_array(source, row_chunks, col_chunks)


def raster_array(source: Source, row_chunks, col_chunks) -> da.Array:
    """The lazy array of one source on its grid, chunked as given (all bands in
    one chunk)."""
    name = NAME + tokenize(source, row_chunks, col_chunks)
    meta = np.empty((0, 0, 0), dtype=source.dtype)
    return da.from_array(
        RasterSource(source),
        chunks=((source.count,), row_chunks, col_chunks),
        name=name,
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.ma.masked_array(meta) if source.masked else meta,
    )


def grid_tag(grid: Grid, row_chunks, col_chunks) -> da.Array:
    """An array of empty blocks that carries ``grid`` in its graph (see :class:`GridTag`)."""
    shape = (1, *grid.shape)
    return da.from_array(GridTag(grid, shape), chunks=((1,), row_chunks, col_chunks),
                         name=NAME + "grid-" + tokenize(grid, row_chunks, col_chunks),
                         lock=False, asarray=False, fancy=False, meta=_EMPTY)


def _graph_objects(array: da.Array) -> list:
    layers = getattr(array.__dask_graph__(), "layers", {})
    found = []
    for name, layer in layers.items():
        if not name.startswith("original-" + NAME):
            continue
        for value in layer.values():
            value = getattr(value, "value", value)  # a DataNode in newer dask
            if isinstance(value, (RasterSource, GridTag)) and value not in found:
                found.append(value)
    return found


def raster_sources(array: da.Array) -> list[Source]:
    """The sources an array reads, found in its graph (empty for other arrays).

    Georeferencing travels with the graph, so ``open_raster(a) * 2`` still
    knows it comes from ``a``; a persisted array (its graph holds futures)
    no longer does.
    """
    found = []
    for value in _graph_objects(array):
        if isinstance(value, RasterSource) and value.source not in found:
            found.append(value.source)
    return found


def array_grids(array: da.Array) -> list[Grid]:
    """The grids of what an array reads (one when it is on one grid), from its graph."""
    grids = []
    for value in _graph_objects(array):
        if value.grid not in grids:
            grids.append(value.grid)
    return grids
