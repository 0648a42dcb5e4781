"""Nearest-neighbour reads onto another grid, with maps shared by every file of one grid.

GDAL's warper with an exact transformer (what makes a window's pixels not
depend on the window) transforms every pixel of every request: a series of
60 dates of one tile transforms the same coordinates 60 times, and it is most
of the time a STAC composite spends (94 ms a 512 x 512 window, against 16 ms
with the approximate transformer).  For nearest, a window's pixels are
picked from the source by a map of source rows and columns, the same for
every file on one grid: :func:`source_map` computes it once (GDAL's own
arithmetic: the pixel centre through the grid's transform, PROJ through
``rasterio.warp.transform``, GDAL's inverse geotransform, ``floor``) and keeps
it in a per-process cache bounded in bytes; :func:`read` reads the source's
window plainly and picks the pixels.  The tests compare it with
``WarpedVRT(..., tolerance=1e-9)`` reads, bit for bit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from rasterio.warp import transform as transform_points
from rasterio.windows import Window

from .grid import Grid
from .handles import all_valid

__all__ = ["SourceMap", "source_map", "read", "CACHE_BYTES"]

#: Bytes of maps a process keeps (least recently used dropped first).
CACHE_BYTES = 64 * 2**20


@dataclass(frozen=True)
class SourceMap:
    """Where each pixel of a grid window comes from in a file: ``rows`` and
    ``cols`` (in the file's pixels, relative to ``window``, the part of the
    file they fall in) where ``inside``; None when no pixel falls in the file."""

    rows: np.ndarray  # int32, (height, width)
    cols: np.ndarray
    inside: np.ndarray  # bool, (height, width)
    window: Window  # of the file

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.cols.nbytes + self.inside.nbytes


def _inverse(transform) -> tuple[float, ...]:
    """GDAL's inverse geotransform (``GDALInvGeoTransform``), term for term: its
    arithmetic decides which pixel a centre on an edge falls in."""
    gt0, gt1, gt2, gt3, gt4, gt5 = (transform.c, transform.a, transform.b, transform.f,
                                    transform.d, transform.e)
    if gt2 == 0 and gt4 == 0:
        return (-gt0 / gt1, 1.0 / gt1, 0.0, -gt3 / gt5, 0.0, 1.0 / gt5)
    inv_det = 1.0 / (gt1 * gt5 - gt2 * gt4)
    return ((gt2 * gt3 - gt0 * gt5) * inv_det, gt5 * inv_det, -gt2 * inv_det,
            (-gt1 * gt3 + gt0 * gt4) * inv_det, -gt4 * inv_det, gt1 * inv_det)


def _compute(crs, transform, shape: tuple[int, int], grid: Grid,
             window: Window) -> SourceMap | None:
    row0, col0 = int(window.row_off), int(window.col_off)
    height, width = int(window.height), int(window.width)
    t = grid.transform
    cols, rows = np.meshgrid(np.arange(col0, col0 + width) + 0.5,
                             np.arange(row0, row0 + height) + 0.5)
    xs = t.c + cols * t.a + rows * t.b
    ys = t.f + cols * t.d + rows * t.e
    xs, ys = transform_points(grid.crs, crs, xs.ravel(), ys.ravel())
    xs, ys = np.asarray(xs), np.asarray(ys)
    inv = _inverse(transform)
    with np.errstate(invalid="ignore"):
        px = np.floor(inv[0] + xs * inv[1] + ys * inv[2])
        py = np.floor(inv[3] + xs * inv[4] + ys * inv[5])
    inside = np.isfinite(px) & np.isfinite(py) & (px >= 0) & (px < shape[1]) & \
        (py >= 0) & (py < shape[0])
    if not inside.any():
        return None
    px = np.where(inside, px, 0).astype(np.int64)
    py = np.where(inside, py, 0).astype(np.int64)
    r0, r1 = int(py[inside].min()), int(py[inside].max()) + 1
    c0, c1 = int(px[inside].min()), int(px[inside].max()) + 1
    return SourceMap((py - r0).clip(0).astype(np.int32).reshape(height, width),
                     (px - c0).clip(0).astype(np.int32).reshape(height, width),
                     inside.reshape(height, width), Window(c0, r0, c1 - c0, r1 - r0))


class _Cache:
    def __init__(self):
        self.lock = threading.Lock()
        self.maps: OrderedDict = OrderedDict()
        self.nbytes = 0

    def get(self, key):
        with self.lock:
            found = self.maps.get(key, False)
            if found is not False:
                self.maps.move_to_end(key)
            return found

    def put(self, key, value) -> None:
        size = 0 if value is None else value.nbytes
        with self.lock:
            if key in self.maps:
                return
            self.maps[key] = value
            self.nbytes += size
            while self.nbytes > CACHE_BYTES and len(self.maps) > 1:
                _, dropped = self.maps.popitem(last=False)
                self.nbytes -= 0 if dropped is None else dropped.nbytes


_cache = _Cache()


def source_map(crs, transform, shape: tuple[int, int], grid: Grid,
               window: Window) -> SourceMap | None:
    """The :class:`SourceMap` of ``window`` of ``grid`` in a file of ``crs``,
    ``transform`` and ``shape`` (rows, cols): computed once a process for every
    file on that grid."""
    key = (crs.to_wkt() if crs is not None else None, tuple(transform)[:6], tuple(shape),
           grid, (int(window.row_off), int(window.col_off), int(window.height),
                  int(window.width)))
    found = _cache.get(key)
    if found is False:
        found = _compute(crs, transform, shape, grid, window)
        _cache.put(key, found)
    return found


def read(dataset, grid: Grid, window: Window, indexes: list[int], dtype,
         want_valid: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``(pixels, valid)`` of ``window`` of ``grid``, nearest neighbour from
    ``dataset``, as a ``WarpedVRT`` onto the grid reads them: outside the file
    and where the file has no valid pixel (nodata, mask, alpha), the file's
    nodata (0 without one), invalid."""
    shape = (len(indexes), int(window.height), int(window.width))
    fill = dataset.nodata if dataset.nodata is not None else 0
    found = source_map(dataset.crs, dataset.transform, (dataset.height, dataset.width),
                       grid, window)
    data = np.full(shape, np.array(fill).astype(dtype), dtype)
    valid = np.zeros(shape, bool)
    if found is not None:
        pixels = dataset.read(indexes, window=found.window, out_dtype=dtype)
        rows, cols, inside = found.rows, found.cols, found.inside
        picked = pixels[:, rows, cols]
        if all_valid(dataset, indexes):
            ok = np.broadcast_to(inside, shape)
        else:
            masks = dataset.read_masks(indexes, window=found.window) > 0
            ok = masks[:, rows, cols] & inside
        np.copyto(data, picked, where=ok)
        valid = np.array(ok)
    return data, (valid if want_valid else None)
