"""Shapes burned onto a grid, window by window: a source like the others."""

from __future__ import annotations

import math
import os
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.dtypes import can_cast_dtype, check_dtype

from ..dataarrays import georeferencing
from ..errors import InputError
from ..read import OnGrid, window_shape
from ..read.grid import GRID_NAMES, Grid, resolve
from ..windows import block_chunks, slices_to_window
from .shapes import ShapeIndex, burn, read_shapes, to_grid

__all__ = ["rasterize", "ShapeRaster", "grid_for"]

#: Strips of a striped grid raster are grouped to at least this many rows a window.
STRIP_ROWS = 256

#: Prefix of the names of the arrays rasterize makes.
NAME = "rasterize-"


def grid_for(grid: Any) -> Grid:
    """The grid ``grid`` names: a Grid, a raster path or a georeferenced DataArray."""
    if isinstance(grid, str) and grid in GRID_NAMES:
        raise InputError(f"grid={grid!r} names a grid of inputs; shapes have no grid of "
                         "their own: give a riomucho_dask.Grid or a raster path")
    if hasattr(grid, "rio") and hasattr(grid, "sizes"):
        georef = georeferencing(grid, "grid")
        return Grid(georef["crs"], georef["transform"], grid.sizes["x"], grid.sizes["y"])
    return resolve(grid, None, [])


class ShapeRaster(OnGrid):
    """A picklable array-like ``(1, rows, cols)`` that burns the shapes of a
    :class:`~.shapes.ShapeIndex` into any window of its grid."""

    def __init__(self, index: ShapeIndex, *, fill: Any, dtype: Any, all_touched: bool):
        self.index = index
        self.grid = index.grid
        self.fill = fill
        self.dtype = np.dtype(dtype)
        self.all_touched = all_touched
        self.shape = (1, *self.grid.shape)
        self.ndim = 3

    def __dask_tokenize__(self):
        return ("ShapeRaster", self.index, self.fill, self.dtype.str, self.all_touched)

    def __getitem__(self, key):
        bands, rows, cols = key
        window = slices_to_window(rows, cols)
        height, width = int(window.height), int(window.width)
        out = self.burn(int(window.row_off), int(window.col_off), height, width)
        return out[np.newaxis][bands]

    def burn(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        ids = self.index.query(row_off, col_off, height, width)
        if not len(ids) or not height or not width:
            return np.full((height, width), self.fill, dtype=self.dtype)
        values = self.index.values
        shapes = [(self.index.geometries[i], 1 if values is None else values[i]) for i in ids]
        return burn(shapes, out_shape=(height, width),
                    transform=self.index.window_transform(row_off, col_off),
                    fill=self.fill, all_touched=self.all_touched, dtype=self.dtype)


def rasterize(shapes: Any, grid: Any, *, values: Any = None, all_touched: bool = False,
              fill: Any = 0, dtype: Any = "uint8", crs: Any = None,
              chunks: str | int | tuple[int, int] = "blocks") -> da.Array:
    """Burn shapes onto a grid, lazily, window by window.

    Each window is burned by ``rasterio.features.rasterize`` with the window's own
    transform, from only the shapes whose bounds touch it (an STRtree built once,
    when the graph is built).  The graph holds the shapes once, in one object,
    whatever the number of windows; the array knows its grid, so it lines up with
    the other inputs of :func:`~riomucho_dask.map_windows` and is written by
    :func:`~riomucho_dask.to_raster` without ``like=``.

    Parameters
    ----------
    shapes : geometries, GeoJSON, pairs, GeoDataFrame or path
        shapely geometries; GeoJSON geometries or Features (mappings), or a
        FeatureCollection; ``(geometry, value)`` pairs; a GeoDataFrame (any object
        with ``geometry``, ``columns`` and ``crs``: geopandas is not needed); or a
        vector file GDAL reads (GeoJSON, GeoPackage, Shapefile...), read with
        pyogrio, in its own CRS (GeoJSON: EPSG:4326).  Later shapes are burned
        over earlier ones.
    grid : Grid, path or DataArray
        The grid to burn onto: a :class:`~riomucho_dask.Grid`, a raster's grid
        (its blocks are the windows), a georeferenced DataArray's.
    values : str or sequence of numbers, optional
        The value burned for each shape: a Feature property's name, or one number
        per shape; default the pairs' values, else 1.
    all_touched : bool, optional
        Burn every pixel a shape touches, not only those whose centre is inside.
    fill : number, optional
        The value of pixels no shape covers (default 0).
    dtype : str or numpy dtype, optional
        The array's dtype (default uint8); every value must fit in it.
    crs : CRS, str or int, optional
        The shapes' CRS, where it is not the grid's and they do not say it
        themselves (files and GeoDataFrames do); they are transformed onto the
        grid's CRS (``rasterio.warp.transform_geom``).
    chunks : "blocks", int or (int, int), optional
        Windows: a raster's blocks (strips of fewer than 256 rows grouped to at
        least 256: a burn per strip of a 1-row striped file would be a task per
        row), 512 x 512 on a ``Grid`` (as :func:`~riomucho_dask.open_raster`), or
        this size in pixels.

    Returns
    -------
    dask.array.Array
        ``(1, rows, cols)`` of ``dtype``.

    Raises
    ------
    InputError
        A shape that is not a geometry (named by its index), a value that is not a
        number or does not fit ``dtype``, an unknown property, a CRS that cannot be
        parsed or transformed, a grid that is none of those above.
    MissingExtraError
        Without shapely (or, for a file, pyogrio): the ``vector`` extra.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> import riomucho_dask as rmd
    >>> fields = [(box(500100, 4199500, 500600, 4199900), 1),
    ...           (box(500400, 4199300, 501000, 4199700), 2)]
    >>> classes = rmd.rasterize(fields, "scene_a.tif")
    >>> classes.shape, classes.chunksize, classes.dtype
    ((1, 97, 131), (1, 32, 32), dtype('uint8'))
    >>> np.bincount(classes.compute().ravel()).tolist()
    [8707, 1600, 2400]
    >>> rmd.to_raster(classes, "classes.tif")   # no like=: it knows its grid
    'classes.tif'
    """
    on = grid_for(grid)
    dtype = np.dtype(dtype)
    if not check_dtype(dtype.name):
        raise InputError(f"dtype {dtype.name!r} is not one rasterio can burn")
    features = read_shapes(shapes, crs)
    burned = features.values(values)
    if burned is not None and len(burned) and not can_cast_dtype(burned, dtype):
        raise InputError(f"values from {burned.min()} to {burned.max()} do not fit dtype "
                         f"{dtype.name}: pass dtype=")
    if not can_cast_dtype(np.asarray([fill]), dtype):
        raise InputError(f"fill={fill!r} does not fit dtype {dtype.name}")
    index = ShapeIndex(to_grid(features, on), on, burned)
    raster_grid = isinstance(grid, (str, os.PathLike))
    block = window_shape(grid, chunks) if raster_grid else window_shape(on, chunks)
    if raster_grid and chunks == "blocks" and block[1] >= on.width and block[0] < STRIP_ROWS:
        block = (block[0] * math.ceil(STRIP_ROWS / block[0]), block[1])
    row_chunks, col_chunks = block_chunks(*on.shape, block, chunks)
    index.index_windows(row_chunks, col_chunks)
    source = ShapeRaster(index, fill=fill, dtype=dtype, all_touched=bool(all_touched))
    return source.array(((1,), row_chunks, col_chunks),
                        NAME + tokenize(source, row_chunks, col_chunks), dtype)
