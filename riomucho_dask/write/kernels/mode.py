"""GDAL's ``mode`` overview kernel: the most frequent valid value of each window.

Over the windows of :mod:`~riomucho_dask.write.kernels.sampling`; the rules
are listed in :mod:`riomucho_dask.write.kernels.resample`.

Ours, not GDAL's read chunk by chunk (as
:mod:`~riomucho_dask.write.kernels.resample_gdal` reads the other resamplings):
measured by ``benchmarks/mode.py`` (``benchmarks/RESULTS-mode.md``), GDAL
takes 1.01x to 1.80x this kernel's time on the pieces the graph reads (512 to
1024 source pixels a side; it is faster only with the whole raster in one
piece), and its read is not ``BuildOverviews`` where a whole piece is masked
or nodata (GDAL fills it with the nodata value, or 0: BuildOverviews writes
0 for an int16 nodata of -3000 or a NaN nodata, and a uint8 band's mode of
its masked pixels), which needs :func:`mode_fill` and the byte rule here anyway.
"""

from __future__ import annotations

import math

import numpy as np

from .sampling import take

__all__ = ["mode_of", "mode_fill"]


def mode_of(data, valid, rows, cols, nodata, dtype):
    """The most frequent valid value of each window (NaNs are one value); of
    values as frequent, the first to reach that count in GDAL's scan (rows,
    then columns)."""
    y0, y1 = rows[:2]
    x0, x1 = cols[:2]
    span_y, span_x = int((y1 - y0).max()), int((x1 - x0).max())
    values, oks = [], []
    for ky in range(span_y):
        row = take(data, y0 + ky, 1)
        row_ok = (ky < (y1 - y0))[None, :, None]
        if valid is not None:
            row_valid = take(valid, y0 + ky, 1)
        for kx in range(span_x):
            ok = row_ok & (kx < (x1 - x0))[None, None, :]
            if valid is not None:
                ok = ok & take(row_valid, x0 + kx, 2)
            values.append(take(row, x0 + kx, 2))
            oks.append(ok)
    best_count = np.zeros(values[0].shape, "int32")
    best = np.zeros(values[0].shape, dtype)
    for k, (value, ok) in enumerate(zip(values, oks)):
        count = ok.astype("int32")  # occurrences of value up to k (itself included)
        nan = np.isnan(value) if dtype.kind == "f" else None
        for j in range(k):
            same = values[j] == value
            if nan is not None:  # NaN is NaN (GDAL's IsSame)
                same |= nan & np.isnan(values[j])
            count = count + (oks[j] & same)
        better = ok & (count > best_count)
        best = np.where(better, value, best)
        best_count = np.where(better, count, best_count)
    if nodata is not None:
        best = np.where(best_count == 0, nodata, best)
    return best.astype(dtype)


def mode_fill(nodata: float | None, dtype: np.dtype):
    """What GDAL's mode writes for a window without a valid pixel: nodata if
    it fits the unsigned type of the band's size (GDAL's mode works on
    int16 as uint16, int32 as uint32; on floats a NaN does not fit), else 0."""
    if nodata is None or math.isnan(nodata):
        return 0
    if dtype.kind == "f":
        return nodata
    unsigned = np.iinfo(f"uint{dtype.itemsize * 8}")
    return nodata if unsigned.min <= nodata <= unsigned.max else 0
