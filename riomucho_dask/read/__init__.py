"""Reading: raster paths -> lazy dask arrays chunked to block windows."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

from .. import gdal_options
from ..errors import InputNotFoundError
from ..execute.worker import setup_once
from ..paths import is_remote
from ..windows import block_chunks
from . import handles

__all__ = ["open_raster", "RasterInfo", "raster_info", "raster_array", "raster_sources"]

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
    if not is_remote(path) and not os.path.exists(path):
        raise InputNotFoundError(f"input {path!r} does not exist")
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
        )


def path_signatures(items) -> list:
    """What identifies the version of each local file among ``items`` (None for
    anything else): in a token, a rewritten input makes another job."""
    return [handles.signature(os.fspath(item)) if isinstance(item, (str, os.PathLike)) else None
            for item in items]


class RasterSource:
    """A picklable array-like that reads windows through the handle cache.

    It holds the raster's metadata and path, never an open dataset, so it
    is safe to put in any graph; :func:`raster_sources` finds it there.
    """

    def __init__(self, info: RasterInfo):
        self.info = info
        self.shape = info.shape
        self.dtype = np.dtype(info.dtype)
        self.ndim = 3
        self.gdal_env = gdal_options.captured_env()

    def __getitem__(self, key):
        bands, rows, cols = key
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        indexes = list(range(1, self.shape[0] + 1))[bands]
        setup_once()
        with gdal_options.env(self.gdal_env):
            dataset = handles.get_dataset(self.info.path)
            return dataset.read(indexes, window=window, out_dtype=self.dtype)


def open_raster(
    path: str | os.PathLike,
    *,
    chunks: str | int | tuple[int, int] = "blocks",
) -> da.Array:
    """Open a raster as a lazy dask array ``(bands, rows, cols)``.

    Nothing is read until the array is computed; the graph holds the path
    and the windows, never an open dataset, so it runs on any scheduler.

    Parameters
    ----------
    path : str or os.PathLike
        A raster rasterio can open.
    chunks : "blocks", int or (int, int), optional
        ``"blocks"`` (default): one chunk per block window of the file,
        partial edge blocks included.  Otherwise the chunk size in pixels,
        a whole multiple of the block shape.  All bands are in every chunk.

    Returns
    -------
    dask.array.Array

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
    info = raster_info(path)
    row_chunks, col_chunks = block_chunks(info.height, info.width, info.block_shape, chunks)
    return raster_array(info, row_chunks, col_chunks)


def raster_array(info: RasterInfo, row_chunks, col_chunks) -> da.Array:
    """The lazy array of one raster, chunked as given (all bands in one chunk)."""
    name = NAME + tokenize(info.path, info.signature, row_chunks, col_chunks)
    return da.from_array(
        RasterSource(info),
        chunks=((info.count,), row_chunks, col_chunks),
        name=name,
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.empty((0, 0, 0), dtype=info.dtype),
    )


def raster_sources(array: da.Array) -> list[RasterInfo]:
    """The rasters an array reads, found in its graph (empty for other arrays).

    Georeferencing travels with the graph, so ``open_raster(a) * 2`` still
    knows it comes from ``a``; a persisted array (its graph holds futures)
    no longer does.
    """
    layers = getattr(array.__dask_graph__(), "layers", {})
    found = []
    for name, layer in layers.items():
        if not name.startswith("original-" + NAME):
            continue
        for value in layer.values():
            value = getattr(value, "value", value)  # a DataNode in newer dask
            if isinstance(value, RasterSource) and value.info not in found:
                found.append(value.info)
    return found
