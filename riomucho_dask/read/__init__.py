"""Reading: raster paths -> lazy dask arrays chunked to block windows."""

from __future__ import annotations

import os
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from .. import gdal_options
from ..errors import InputError
from ..windows import block_chunks, slices_to_window
from ..workers import setup_once
from . import handles  # noqa: F401  (riomucho_dask.read.handles, for the stages above)
from .grid import GRID_NAMES, Grid, names_crs, resolve
from .info import RasterInfo, raster_info
from .series import Series, SeriesSource
from .sources import Source, native_grid, resampling_of

__all__ = [
    "open_raster", "RasterInfo", "raster_info", "raster_array", "raster_sources",
    "array_grids", "grid_tag", "Grid", "Source", "Series", "SeriesSource", "series_array",
    "array_series", "SERIES_WINDOW", "OnGrid", "window_shape", "inputs_nodata",
]

#: Windows (rows, cols) of a grid that comes from no file (a Grid, a series).
SERIES_WINDOW = (512, 512)

#: Prefix of the names of the arrays open_raster makes.
NAME = "open_raster-"


class OnGrid:
    """What the array-likes of sources (files, series, shapes to rasterize) have in
    common: a ``grid`` and a ``shape`` whose last two axes are the grid's.

    An array made by ``da.from_array(obj, name=...)`` of one of them holds ``obj``
    under the layer ``"original-" + name``; :func:`array_grids` finds it there,
    through any dask work done on the array since.  A new kind of source
    (:mod:`riomucho_dask.vector`'s rasterized shapes) subclasses it, and is known
    to ``map_windows``, ``to_raster`` and ``to_xarray`` without their changing.
    """

    grid: Grid
    shape: tuple

    def array(self, chunks: tuple, name: str, dtype, masked: bool = False) -> da.Array:
        """This source as a lazy dask array named ``name`` (which
        :func:`array_grids` finds it by): no lock (each read opens its own
        handles), blocks as the source returns them (no ``asarray``, no fancy
        indexing), a ``meta`` of ``dtype``, masked when the blocks are."""
        meta = np.empty((0,) * len(chunks), dtype=dtype)
        return da.from_array(self, chunks=chunks, name=name, lock=False, asarray=False,
                             fancy=False, meta=np.ma.masked_array(meta) if masked else meta)


class RasterSource(OnGrid):
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


class SeriesArray(OnGrid):
    """A picklable array-like that reads windows of a :class:`SeriesSource`:
    ``(time, band, rows, cols)``, or, ``flat``, ``(time * band, rows, cols)``
    (time-major: what ``map_windows`` carries to its tasks)."""

    def __init__(self, source: SeriesSource, flat: bool = False):
        self.source = source
        self.grid = source.grid
        self.flat = flat
        time, count, height, width = source.shape
        self.shape = (time * count, height, width) if flat else source.shape
        self.dtype = np.dtype(source.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        if self.flat:
            layers, rows, cols = key
            steps, bands = range(len(self.source.steps)), None
        else:
            steps, bands, rows, cols = key
            steps = range(len(self.source.steps))[steps]
            bands = list(range(self.source.count))[bands]
        window = slices_to_window(rows, cols)
        setup_once()
        with gdal_options.env(self.source.gdal_env):
            data = self.source.read(window, steps, bands)
        if self.flat:
            data = data.reshape((-1, *data.shape[2:]))[layers]
        return data


class GridTag(OnGrid):
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
    path: str | os.PathLike | list | tuple | Series,
    *,
    grid: Any = None,
    chunks: str | int | tuple[int, int] = "blocks",
    masked: bool = False,
    resampling: Any = None,
) -> da.Array:
    """Open a raster, a mosaic or a series as a lazy dask array.

    Nothing is read until the array is computed; the graph holds the paths
    and the windows, never an open dataset, so it runs on any scheduler.

    Parameters
    ----------
    path : str, os.PathLike, a list or tuple of them, or a Series
        A raster rasterio can open; a list or tuple of paths is their mosaic
        (on the union of their footprints, the first file's CRS and pixels;
        the first valid pixel wins, as ``rasterio.merge``); a
        :class:`~riomucho_dask.Series` (dated sources, e.g. from
        :func:`~riomucho_dask.stac_series`) needs ``grid``.
    grid : Grid, path, "first", "union" or "intersection", optional
        The grid the files are read onto (see ``map_windows``): a
        :class:`~riomucho_dask.Grid` (e.g. ``Grid.from_bounds``), a raster's
        grid, or the first file's / the union / the intersection of the files'
        footprints (in the first file's CRS and pixels).  Default: the file's
        own grid (a mosaic's union).  Required for a series.
    chunks : "blocks", int or (int, int), optional
        ``"blocks"`` (default): one chunk per block window of the (first)
        file, partial edge blocks included; 512 x 512 on a grid that comes
        from no file (a ``Grid``, a series).  Otherwise the chunk size in
        pixels, a whole multiple of the block shape (any size for a striped
        file, whose strips span the whole width).  All bands (and all dates
        of a series) are in every chunk.
    masked : bool, optional
        Chunks are numpy masked arrays, masked where
        ``dataset.read(masked=True)`` masks them (nodata, internal masks,
        alpha), and outside the files.
    resampling : str or rasterio.enums.Resampling, optional
        How files not on the grid's pixels are resampled (default nearest).

    Returns
    -------
    dask.array.Array
        ``(bands, rows, cols)``; for a series ``(time, band, rows, cols)``.
        It knows its grid: ``to_raster`` (of a 3-D array) and ``to_xarray``
        need no ``like=``.

    Raises
    ------
    InputNotFoundError
        At once, when a file does not exist (an ``OSError``).
    InputError
        A series without ``grid``, an unknown grid.

    Examples
    --------
    >>> arr = open_raster("scene_a.tif")
    >>> arr.shape, arr.chunksize
    ((3, 97, 131), (3, 32, 32))
    >>> open_raster("scene_a.tif", chunks=64).chunks[1:]
    ((64, 33), (64, 64, 3))

    A series (two dates of one scene here) onto a raster's grid:

    >>> from riomucho_dask import Series
    >>> s = Series([("2024-05-01", "scene_a.tif"), ("2024-05-02T10:00Z", "scene_a.tif")])
    >>> cube = open_raster(s, grid="scene_b.tif")
    >>> cube.shape, cube.chunksize
    ((2, 3, 97, 131), (2, 3, 32, 32))
    """
    resampling = resampling_of(resampling)
    if isinstance(path, Series):
        if grid is None:
            raise InputError(
                "open_raster of a Series needs grid=: a riomucho_dask.Grid (e.g. "
                "Grid.from_bounds(bounds, crs, resolution)), a raster path, 'union' or "
                "'intersection' of the series' footprints")
        infos = path.all_infos()
        on = grid_of(grid, infos)
        source = path.source(on, resampling=resampling, masked=masked)
        row_chunks, col_chunks = block_chunks(*on.shape, window_shape(grid, chunks), chunks)
        return series_array(source, row_chunks, col_chunks)
    paths = list(path) if isinstance(path, (list, tuple)) else [path]
    if not paths:
        raise InputError("open_raster needs a path, or a list of paths for a mosaic")
    infos = tuple(raster_info(p) for p in paths)
    label = f"input {infos[0].path!r}" if len(infos) == 1 else (
        f"mosaic of {len(infos)} files from {infos[0].path!r}")
    on = native_grid(infos) if grid is None else grid_of(grid, infos)
    source = Source(infos, on, resampling, masked=masked, label=label)
    block_shape = infos[0].block_shape if grid is None else window_shape(grid, chunks)
    row_chunks, col_chunks = block_chunks(*on.shape, block_shape, chunks)
    return raster_array(source, row_chunks, col_chunks)


def window_shape(grid: Any, chunks: Any) -> tuple[int, int]:
    """The block shape chunks follow on a grid: a raster's blocks, else (a grid from
    no file) :data:`SERIES_WINDOW` by default, and any chunk size given."""
    if isinstance(grid, (str, os.PathLike)) and grid not in GRID_NAMES \
            and not names_crs(grid):
        return raster_info(grid).block_shape
    return SERIES_WINDOW if isinstance(chunks, str) else (1, 1)


def grid_of(grid: Any, infos) -> Grid:
    """The grid ``grid`` names for files ``infos`` (see :func:`.grid.resolve`)."""
    grids = [Grid.from_info(info) for info in infos]
    return resolve(grid, grids[0], grids, first_label=f"input {infos[0].path!r}")


def series_array(source: SeriesSource, row_chunks, col_chunks, *,
                 flat: bool = False) -> da.Array:
    """The lazy ``(time, band, rows, cols)`` array of a series on its grid (every
    date and band in each chunk); ``flat``: ``(time * band, rows, cols)``."""
    name = NAME + ("flat-" if flat else "") + tokenize(source, row_chunks, col_chunks)
    wrapped = SeriesArray(source, flat)
    lead = ((wrapped.shape[0],),) if flat else ((wrapped.shape[0],), (wrapped.shape[1],))
    return wrapped.array((*lead, row_chunks, col_chunks), name, source.dtype, source.masked)


def raster_array(source: Source, row_chunks, col_chunks) -> da.Array:
    """The lazy array of one source on its grid, chunked as given (all bands in
    one chunk)."""
    return RasterSource(source).array(((source.count,), row_chunks, col_chunks),
                                      NAME + tokenize(source, row_chunks, col_chunks),
                                      source.dtype, source.masked)


def grid_tag(grid: Grid, row_chunks, col_chunks) -> da.Array:
    """An array of empty blocks that carries ``grid`` in its graph (see :class:`GridTag`)."""
    return GridTag(grid, (1, *grid.shape)).array(
        ((1,), row_chunks, col_chunks), NAME + "grid-" + tokenize(grid, row_chunks, col_chunks),
        _EMPTY.dtype)


def _graph_objects(array: da.Array) -> list:
    layers = getattr(array.__dask_graph__(), "layers", {})
    found = []
    for name, layer in layers.items():
        if not name.startswith("original-"):
            continue
        for value in layer.values():
            value = getattr(value, "value", value)  # a DataNode in newer dask
            if isinstance(value, OnGrid) and value not in found:
                found.append(value)
    return found


def inputs_nodata(array: da.Array) -> Any:
    """The nodata of the rasters an array reads, when they share one and the array
    keeps their dtype (an identity copy, a mosaic, arithmetic in kind); None
    otherwise, never for a new quantity: the one rule of ``to_raster`` and
    ``to_xarray`` without ``like=``."""
    sources = raster_sources(array)
    keys = {"nan" if isinstance(s.nodata, float) and np.isnan(s.nodata) else s.nodata
            for s in sources}
    if len(keys) == 1 and None not in keys and all(
            np.dtype(s.dtype) == array.dtype for s in sources):
        return sources[0].nodata
    return None


def raster_sources(array: da.Array) -> list[Source]:
    """The sources an array reads, found in its graph (empty for other arrays).

    Georeferencing travels with the graph, so ``open_raster(a) * 2`` still
    knows it comes from ``a``; a persisted array (its graph holds futures)
    no longer does.
    """
    found = []
    for value in _graph_objects(array):
        if isinstance(value, (RasterSource, SeriesArray)) and value.source not in found:
            found.append(value.source)
    return found


def array_series(array: da.Array) -> list[SeriesSource]:
    """The series an array reads, found in its graph."""
    return [source for source in raster_sources(array) if isinstance(source, SeriesSource)]


def array_grids(array: da.Array) -> list[Grid]:
    """The grids of what an array reads (one when it is on one grid), from its graph."""
    grids = []
    for value in _graph_objects(array):
        if value.grid not in grids:
            grids.append(value.grid)
    return grids
