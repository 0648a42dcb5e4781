"""Reading: raster paths -> lazy dask arrays chunked to block windows."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

from . import _handles
from .errors import InputNotFoundError
from .windows import block_chunks

__all__ = ["open_raster", "RasterInfo", "raster_info"]


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
    if "://" not in path and not path.startswith("/vsi") and not os.path.exists(path):
        raise InputNotFoundError(f"input {path!r} does not exist")
    with _handles.open_dataset(path) as src:
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
            signature=_handles._signature(path),
        )


class _RasterArray:
    """A picklable array-like that reads windows through the handle cache.

    It holds the path and shape only, so it is safe to put in any graph.
    """

    def __init__(self, info: RasterInfo):
        self.path = info.path
        self.shape = info.shape
        self.dtype = np.dtype(info.dtype)
        self.ndim = 3
        self.gdal_env = _handles.captured_env()

    def __getitem__(self, key):
        bands, rows, cols = key
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        indexes = list(range(1, self.shape[0] + 1))[bands]
        with _handles.env(self.gdal_env):
            dataset = _handles.get_dataset(self.path)
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
    return _as_dask(info, row_chunks, col_chunks)


def _as_dask(info: RasterInfo, row_chunks, col_chunks) -> da.Array:
    name = "open_raster-" + tokenize(info.path, info.signature, row_chunks, col_chunks)
    arr = da.from_array(
        _RasterArray(info),
        chunks=((info.count,), row_chunks, col_chunks),
        name=name,
        lock=False,
        asarray=False,
        fancy=False,
        meta=np.empty((0, 0, 0), dtype=info.dtype),
    )
    _RASTERS[arr.name] = info
    return arr


# Georeferencing of arrays made by open_raster, by dask name, so that
# map_windows can check that array inputs line up.
_RASTERS: dict[str, RasterInfo] = {}
