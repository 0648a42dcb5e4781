"""Overview resamplings made by GDAL itself, chunk by chunk.

``bilinear``, ``cubic``, ``cubicspline`` and ``lanczos`` overview
pixels of a tiled GeoTIFF are not computed by kernels of our own
(:mod:`riomucho_dask.write.kernels.resample` has ``nearest``, ``average`` and
``mode``): each chunk of a level is resampled by GDAL from the piece of the
level above that its pixels need, plus a margin for the kernel, held in an
in-memory dataset and read at the chunk's exact fractional window with the
level's ratio, so GDAL places its kernel where ``BuildOverviews`` places it.
The output is never read back.

GDAL's RasterIO and ``BuildOverviews`` share the kernels
(``GDALResampleChunk_Convolution``), but not every rounding step: the test
suite measures where they differ (integers with nodata at the edges of a
nodata area) and the README quotes it.
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.windows import Window

from ...errors import StoreError

__all__ = ["METHODS", "source_range", "resample"]

#: GDAL's resamplings taken through GDAL, with their kernel's radius (source
#: pixels at a ratio of 1; GDAL widens it by the ratio).
RADIUS = {"bilinear": 1, "cubic": 2, "cubicspline": 2, "lanczos": 3}
METHODS = tuple(RADIUS)
_RESAMPLING = {"bilinear": Resampling.bilinear, "cubic": Resampling.cubic,
               "cubicspline": Resampling.cubic_spline, "lanczos": Resampling.lanczos}
#: Any transform but the identity (which rasterio warns of): the pixels only matter.
_TRANSFORM = Affine(2.0, 0.0, 0.0, 0.0, -2.0, 0.0)


def source_range(dst_start: int, dst_stop: int, src_size: int, dst_size: int,
                 method: str) -> tuple[int, int]:
    """The source pixels (one axis) destination pixels ``[dst_start, dst_stop)``
    need through GDAL's kernel for ``method``, with a margin, within ``[0, src_size)``.

    Examples
    --------
    >>> source_range(10, 20, 200, 100, "cubic")
    (14, 46)
    """
    ratio = src_size / dst_size
    margin = math.ceil(RADIUS[method] * max(ratio, 1.0)) + 2
    return (max(0, math.floor(dst_start * ratio) - margin),
            min(src_size, math.ceil(dst_stop * ratio) + margin))


def resample(piece: np.ndarray, piece_row: int, piece_col: int,
             dst_rows: tuple[int, int], dst_cols: tuple[int, int],
             src_shape: tuple[int, int], dst_shape: tuple[int, int],
             method: str, nodata: float | None = None) -> np.ndarray:
    """Destination pixels ``dst_rows`` x ``dst_cols`` of an overview level
    resampled by GDAL from ``piece`` (as :func:`riomucho_dask.write.resample.resample`,
    whose arguments these are).

    Examples
    --------
    >>> a = np.arange(64, dtype="float32").reshape(1, 8, 8)
    >>> resample(a, 0, 0, (0, 2), (0, 2), (8, 8), (4, 4), "bilinear").shape
    (1, 2, 2)
    """
    if isinstance(piece, np.ma.MaskedArray) and np.ma.getmask(piece).any():
        raise StoreError(
            f"overview_resampling={method!r} cannot take an internal mask: give the output "
            "a nodata value (nodata=), or use 'nearest', 'average' or 'mode'")
    data = np.ma.getdata(piece)
    count, height, width = data.shape
    (a, b), (c, d) = dst_rows, dst_cols
    ry, rx = src_shape[0] / dst_shape[0], src_shape[1] / dst_shape[1]
    profile = {"driver": "MEM", "count": count, "height": height, "width": width,
               "dtype": data.dtype.name, "transform": _TRANSFORM}
    if nodata is not None:
        profile["nodata"] = nodata
    window = Window(c * rx - piece_col, a * ry - piece_row, (d - c) * rx, (b - a) * ry)
    with MemoryFile() as memfile, memfile.open(**profile) as dataset:
        dataset.write(data)
        return dataset.read(window=window, out_shape=(count, b - a, d - c),
                            resampling=_RESAMPLING[method])
