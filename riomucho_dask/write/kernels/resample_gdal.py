"""Overview resamplings made by GDAL itself, chunk by chunk.

``bilinear``, ``cubic``, ``cubicspline`` and ``lanczos`` overview
pixels of a tiled GeoTIFF are not computed by kernels of our own
(:mod:`riomucho_dask.write.kernels.resample` has ``nearest``, ``average`` and
``mode``): each chunk of a level is resampled by GDAL from the piece of the
level above that its pixels need, plus a margin for the kernel, held in an
in-memory dataset and read at the chunk's exact fractional window with the
level's ratio, so GDAL places its kernel where ``BuildOverviews`` places it.
The output is never read back.

rasterio hands GDAL the window's integer size truncated (``int(width)``),
and GDAL's MEM driver copies pixels, without resampling, when that size is
the buffer's on both axes: a chunk of a pixel or two at a ratio below 2
(the last column and row of 257 -> 129, say).  Such a read is widened
(:func:`_widened`) by neighbouring destination pixels, thrown away.

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

__all__ = ["METHODS", "source_range", "resample", "read_extent"]

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
    (a, b), (c, d) = dst_rows, dst_cols
    ry, rx = src_shape[0] / dst_shape[0], src_shape[1] / dst_shape[1]
    data, piece_row, piece_col, rows, cols = read_extent(
        np.ma.getdata(piece), piece_row, piece_col, dst_rows, dst_cols, src_shape, dst_shape)
    count, height, width = data.shape
    profile = {"driver": "MEM", "count": count, "height": height, "width": width,
               "dtype": data.dtype.name, "transform": _TRANSFORM}
    if nodata is not None:
        profile["nodata"] = nodata
    window = Window(cols[0] * rx - piece_col, rows[0] * ry - piece_row,
                    (cols[1] - cols[0]) * rx, (rows[1] - rows[0]) * ry)
    with MemoryFile() as memfile, memfile.open(**profile) as dataset:
        dataset.write(data)
        out = dataset.read(window=window, out_shape=(count, rows[1] - rows[0], cols[1] - cols[0]),
                           resampling=_RESAMPLING[method])
    return out[:, a - rows[0]:b - rows[0], c - cols[0]:d - cols[0]]


def read_extent(data: np.ndarray, piece_row: int, piece_col: int,
                dst_rows: tuple[int, int], dst_cols: tuple[int, int],
                src_shape: tuple[int, int], dst_shape: tuple[int, int]):
    """``(data, piece_row, piece_col, rows, cols)``: the destination pixels to read
    for ``dst_rows`` x ``dst_cols`` (those, or wider where GDAL's MEM driver would
    copy rather than resample: :func:`_widened`) and the piece padded to hold their
    source pixels (:func:`_padded`); ``data`` and the offsets unchanged otherwise."""
    (a, b), (c, d) = dst_rows, dst_cols
    ry, rx = src_shape[0] / dst_shape[0], src_shape[1] / dst_shape[1]
    rows, cols = (a, b), (c, d)
    if int((b - a) * ry) <= b - a and int((d - c) * rx) <= d - c:  # (MEM would copy)
        cols = _widened(c, d, dst_shape[1], rx)
        if int((cols[1] - cols[0]) * rx) > cols[1] - cols[0]:
            data, piece_col = _padded(data, 2, piece_col, cols, rx)
        else:  # (a whole axis, not reduced)
            cols = (c, d)
            rows = _widened(a, b, dst_shape[0], ry)
            data, piece_row = _padded(data, 1, piece_row, rows, ry)
    return data, piece_row, piece_col, rows, cols


def _widened(start: int, stop: int, size: int, ratio: float) -> tuple[int, int]:
    """Destination pixels ``[start, stop)`` of an axis of ``size`` grown by their
    neighbours (before them first) until rasterio's integer size of their window,
    ``int(length * ratio)``, exceeds their count, or they are the whole axis.

    Examples
    --------
    >>> _widened(128, 129, 129, 257 / 129)
    (127, 129)
    >>> _widened(0, 1, 23, 45 / 23)
    (0, 2)
    """
    while int((stop - start) * ratio) <= stop - start and (start > 0 or stop < size):
        if start > 0:
            start -= 1
        else:
            stop += 1
    return start, stop


def _padded(data: np.ndarray, axis: int, offset: int, dst: tuple[int, int],
            ratio: float) -> tuple[np.ndarray, int]:
    """``data`` (starting at ``offset`` on ``axis``) padded with zeros to hold the
    source pixels of destination pixels ``dst``, and its new offset.  The zeros
    stand for pixels of the level above, never past its edges, that only the
    added destination pixels take: the piece holds, with its margin, every
    pixel the wanted ones take."""
    before = max(0, offset - math.floor(dst[0] * ratio))
    after = max(0, math.ceil(dst[1] * ratio) - (offset + data.shape[axis]))
    if before or after:
        widths = [(0, 0)] * 3
        widths[axis] = (before, after)
        data = np.pad(data, widths)
    return data, offset - before
