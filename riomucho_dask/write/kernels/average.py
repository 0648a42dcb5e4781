"""GDAL's ``average`` overview kernel: weighted means summed and rounded as
GDAL 3.10 sums and rounds them, and its exact 2 x 2 code (:func:`fast2x2`).

Over the windows of :mod:`~riomucho_dask.write.kernels.sampling`; the rules
are listed in :mod:`riomucho_dask.write.kernels.resample`.
"""

from __future__ import annotations

import math

import numpy as np

from .sampling import source_windows, take

__all__ = ["weighted_mean", "round_mean", "fast2x2", "fast_rows", "representable",
           "replacement"]


def representable(value: float, dtype: np.dtype) -> bool:
    if dtype.kind == "f":
        return True
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def replacement(nodata: float, dtype: np.dtype):
    """GDAL's ``GetReplacementValueIfNoData``: what a mean equal to nodata becomes."""
    f32 = np.float32(nodata)
    if dtype.kind == "f":
        if nodata == 0:
            return np.finfo("float32").tiny
        return np.float32(np.float64(f32) + 1e-7 * np.float64(f32))
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        top = np.iinfo(dtype).max
        return top - 1 if nodata == top else nodata + 1
    # int32 / uint32: the next float32 away from nodata
    value = float(f32)
    limit = np.iinfo(dtype).max - (64 if dtype.kind == "i" else 128)
    step = -1.0 if np.float32(value + 1) >= limit else 1.0
    out = np.float32(value + 1)
    dbl = value
    while out == f32:
        dbl += step
        out = np.float32(dbl)
    return float(out)


def _line_pass(data, valid, first, end, left, right, axis):
    """Along ``axis``, per window: the sum of ``value * weight`` in GDAL's
    order (first pixel, middle ones, last one) and, with ``valid``, only of
    the valid pixels, with the sum of their weights and their count."""
    shape = [1] * data.ndim
    shape[axis] = -1
    n = np.reshape(end - first, shape)
    w_left = np.reshape(left, shape)
    w_right = np.reshape(right, shape)
    value = take(data, first, axis).astype("float64")
    if valid is None:
        total = value * w_left
        weight = count = None
    else:
        ok = take(valid, first, axis)
        total = np.where(ok, value * w_left, 0.0)
        weight = np.where(ok, w_left, 0.0)
        count = ok.astype("int32")
    for k in range(1, int(n.max())):
        value = take(data, first + k, axis).astype("float64")
        middle = k + 1 < n
        last = k + 1 == n
        term = np.where(middle, value, np.where(last, value * w_right, 0.0))
        if valid is not None:
            ok = take(valid, first + k, axis) & (k < n)
            total = total + np.where(ok, term, 0.0)
            weight = weight + np.where(ok, np.where(middle, 1.0, w_right), 0.0)
            count = count + ok
        else:
            total = total + term
    return total, weight, count


def _vertical(line, first, end, top, bottom):
    shape = (1, -1, 1)
    n = np.reshape(end - first, shape)
    total = take(line, first, 1) * np.reshape(top, shape)
    w_bottom = np.reshape(bottom, shape)
    for k in range(1, int(n.max())):
        value = take(line, first + k, 1)
        total = total + np.where(k + 1 < n, value, np.where(k + 1 == n, value * w_bottom, 0.0))
    return total


def _vertical_count(line_n, first, end):
    shape = (1, -1, 1)
    n = np.reshape(end - first, shape)
    count = take(line_n, first, 1)
    for k in range(1, int(n.max())):
        count = count + np.where(k < n, take(line_n, first + k, 1), 0)
    return count


def weighted_mean(data, valid, rows, cols):
    """The weighted mean of each window, as GDAL sums it (float64), and
    where no pixel is valid (None without ``valid``).  ``rows`` and ``cols``:
    each window's first and end pixel in ``data``, first and last weight,
    and total weight."""
    (y0, y1, y_left, y_right, y_full), (x0, x1, x_left, x_right, x_full) = rows, cols
    line, line_w, line_n = _line_pass(data, valid, x0, x1, x_left, x_right, axis=2)
    total = _vertical(line, y0, y1, y_left, y_right)
    if valid is None:
        return total / (x_full[None, None, :] * y_full[None, :, None]), None
    weight = _vertical(line_w, y0, y1, y_left, y_right)
    count = _vertical_count(line_n, y0, y1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / weight
    return mean, count == 0


def _grid(data, y, x):
    """``data[:, y][:, :, x]``, by slices when ``y`` and ``x`` step by 2."""
    def as_slice(index):
        if len(index) and index[0] >= 0 and np.all(np.diff(index) == 2):
            return slice(int(index[0]), int(index[-1]) + 1, 2)
        return None
    sy, sx = as_slice(y), as_slice(x)
    rows = data[:, sy] if sy is not None else take(data, y, 1)
    return rows[:, :, sx] if sx is not None else take(rows, x, 2)


def fast2x2(data, x0, y0, dst_cols, dst_width, dtype):
    """GDAL's code for exact 2 x 2 windows without nodata (rows ``y0``,
    columns ``x0`` of ``data``, each window's top-left pixel)."""
    if dtype in (np.uint8, np.uint16, np.float32) and len(y0) and len(x0) \
            and y0[0] >= 0 and x0[0] >= 0 and np.all(np.diff(y0) == 2) \
            and np.all(np.diff(x0) == 2):
        # Whole rows first (contiguous, quick), then column pairs: the same
        # sums, in GDAL's order for float32, ((a + c) + (b + d)).
        y, x = int(y0[0]), int(x0[0])
        rows = slice(y, y + 2 * len(y0), 2)
        below = slice(y + 1, y + 2 * len(y0), 2)
        top = data[:, rows] if dtype == np.float32 else data[:, rows].astype("uint32")
        pairs = top + data[:, below]
        total = pairs[:, :, x:x + 2 * len(x0):2] + pairs[:, :, x + 1:x + 2 * len(x0):2]
        if dtype != np.float32:
            return ((total + 2) >> 2).astype(dtype)
        out = total * np.float32(0.25)
        tail = np.asarray(dst_cols) >= dst_width - dst_width % 4
        if tail.any():  # (GDAL's scalar code for the last columns: ((a + b) + c) + d)
            a, b = _grid(data, y0, x0[tail]), _grid(data, y0, x0[tail] + 1)
            c, d = _grid(data, y0 + 1, x0[tail]), _grid(data, y0 + 1, x0[tail] + 1)
            out[:, :, tail] = (((a + b) + c) + d) * np.float32(0.25)
        return out
    a = _grid(data, y0, x0)
    b = _grid(data, y0, x0 + 1)
    c = _grid(data, y0 + 1, x0)
    d = _grid(data, y0 + 1, x0 + 1)
    if dtype == np.uint8 or dtype == np.uint16:  # integer sums, (sum + 2) / 4
        total = a.astype("uint32") + b + c + d
        return ((total + 2) >> 2).astype(dtype)
    if dtype.kind in "iu" and dtype.itemsize <= 4:  # exact means, half away from zero
        total = a.astype("int64") + b + c + d
        return (np.sign(total) * ((np.abs(total) + 2) // 4)).astype(dtype)
    if dtype == np.float32:
        quarter = np.float32(0.25)
        out = ((a + c) + (b + d)) * quarter  # SSE, by groups of 4 pixels
        tail = np.asarray(dst_cols) >= dst_width - dst_width % 4
        if tail.any():
            scalar = (((a + b) + c) + d) * quarter
            out[:, :, tail] = scalar[:, :, tail]
        return out
    # float64 working type (float64, int64, ...): the scalar sum
    mean = (((a.astype("float64") + b) + c) + d) * 0.25
    return round_mean(mean, None, dtype, None, 0)


def round_mean(mean: np.ndarray, empty: np.ndarray | None, dtype: np.dtype,
           nodata: float | None, fill: float) -> np.ndarray:
    """A float64 mean as GDAL stores it for ``dtype``: in its working type
    (uint8, uint16: ``int(mean + 0.5)``; other types up to 16 bits and
    float32: float32; others float64), a value equal to nodata replaced,
    then converted to ``dtype`` (``+ 0.5`` or ``- 0.5`` in the working type,
    truncated, clamped).  ``fill`` where ``empty`` (no valid pixel)."""
    if empty is None:
        empty = np.zeros(mean.shape, bool)
    integer_work = dtype == np.uint8 or dtype == np.uint16
    if integer_work:
        out = np.floor(np.where(empty | np.isnan(mean), 0, mean) + 0.5)
    elif dtype.itemsize <= 2 or dtype == np.float32:
        out = mean.astype("float32")
    else:
        out = mean
    if nodata is not None and not math.isnan(nodata) and representable(nodata, dtype):
        same = (out == np.asarray(nodata, dtype=out.dtype)) & ~empty
        if same.any():
            out = np.where(same, replacement(nodata, dtype), out).astype(out.dtype)
    if dtype.kind in "iu" and not integer_work:
        half = np.where(out >= 0, 0.5, -0.5).astype(out.dtype)
        with np.errstate(invalid="ignore"):
            out = np.trunc(out + half)
        info = np.iinfo(dtype)
        out = np.clip(np.where(np.isnan(out), 0, out), info.min, info.max)
    if empty.any():
        out = np.where(empty, fill, out)
    return out.astype(dtype)


def fast_rows(rows, src_shape, dst_shape):
    """The destination rows GDAL computes with its exact 2 x 2 code: all
    windows of the level's columns are 2 wide and follow each other, and
    the row's window is 2 high."""
    if src_shape[1] != 2 * dst_shape[1]:
        return None
    first, end = source_windows(0, dst_shape[1], src_shape[1], dst_shape[1], "average")[:2]
    if not (np.all(end - first == 2) and np.all(first[1:] == end[:-1])):
        return None
    return (rows[1] - rows[0]) == 2
