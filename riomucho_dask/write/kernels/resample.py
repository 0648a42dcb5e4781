"""Overview kernels equal, bit for bit, to GDAL's GTiff ``BuildOverviews``.

The internal overviews of a tiled GeoTIFF are computed chunk by chunk in the
graph (never by reading the output back): any rectangle of destination
pixels of a level is computed from the source pixels it needs
(:func:`source_range`) by :func:`resample`, with the values GDAL 3.10's
``GDALRegenerateOverviews`` writes for ``nearest``, ``average`` and
``mode``.

The rules (found by reading GDAL's ``gcore/overview.cpp`` and checked
against GDAL 3.10.3 by ``tests/test_resample.py``):

* A level of factor ``f`` has ``ceil(height / f) x ceil(width / f)``
  pixels; a factor whose level GDAL takes for one already made is skipped
  (:func:`level_sizes`).
* Each destination pixel ``i`` of an axis covers the source interval
  ``[i * r, (i + 1) * r)``, ``r = src_size / dst_size`` (a float64):

  - ``nearest`` takes source pixel ``int(0.5 + i * r)``;
  - ``average`` and ``mode`` take pixels ``int(i * r + 1e-8)`` to
    ``ceil((i + 1) * r - 1e-8)`` (at least one); ``average`` weighs the
    first and last of them by the fraction of them inside the interval
    (1 for a first pixel that is the only one) and divides by the sum of
    the weights.

* ``average`` sums in float64 (in GDAL's order), then rounds: uint8 and
  uint16 by ``int(mean + 0.5)``; int16 through a float32 mean rounded
  half away from zero; int32 through a float64 mean rounded half away
  from zero; float32 and float64 keep the mean (cast).  An exact 2 x 2
  window of float32 without nodata is GDAL's SSE code instead: float32
  sums ``((a + c) + (b + d)) * 0.25`` by groups of 4 destination pixels,
  and ``(((a + b) + c) + d) * 0.25`` for the last ``width % 4`` columns.
* Nodata pixels (NaN for a NaN nodata) are left out of ``average`` and
  ``mode``; a window without a valid pixel gives nodata (``mode``: 0 when
  nodata does not fit the unsigned type of the band's size, e.g. -9999
  on int16, or is NaN); a mean equal to nodata in the working type is
  replaced by a value next to it (GDAL's replacement value).  Without
  nodata a float NaN is averaged in (NaN), and ``mode`` counts NaNs as
  one value.  ``nearest`` copies whatever it lands on.
* ``mode`` picks the most frequent value; of values as frequent, the one
  that reached that count first scanning rows then columns.
* Levels cascade: which level each one is computed from is
  :func:`source_levels` (the previous level for the usual 2, 4, 8, ...).
* An internal (per-dataset) mask: GDAL first makes the mask's levels,
  resampling the mask band alone (:func:`mask_source_levels`: ``nearest``
  from the full resolution, ``average`` and ``mode`` cascade whatever the
  interleave; :func:`resample_mask`: ``nearest`` flag, ``average`` masked
  where no pixel of the window is valid, ``mode`` the most frequent flag).
  Then the pixels, each level from the level :func:`source_levels` with
  ``masked=True`` says (band-interleaved: all from the full resolution,
  GDAL does not cascade a masked band), with that level's mask:
  ``average`` and ``mode`` leave masked pixels out and give 0 for a
  window without a valid pixel, except uint8 ``mode``, which GDAL takes
  with the masked pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["level_sizes", "source_levels", "mask_source_levels", "auto_factors", "source_range",
           "nearest_pixels", "resample", "resample_mask", "METHODS"]

METHODS = ("nearest", "average", "mode")
_EPS = 1e-8


def _div_round_up(size: int, factor: int) -> int:
    return (size + factor - 1) // factor


def _ov_level_adjust(factor: int, width: int, height: int) -> int:
    """GDAL's ``GDALOvLevelAdjust2``: the factor a level of ``factor`` really has."""
    if width >= height // 2 and not (width < height and width < factor):
        size = _div_round_up(width, factor)
        return int(0.5 + width / size)
    size = _div_round_up(height, factor)
    return int(0.5 + height / size)


def _ov_factor(ov_width: int, width: int, ov_height: int, height: int) -> int:
    """GDAL's ``GDALComputeOvFactor``: the factor of an existing level."""
    if width != 1 and width >= height // 2:
        return int(0.5 + width / ov_width)
    return int(0.5 + height / ov_height)


def level_sizes(height: int, width: int, factors: Sequence[int]) -> list[tuple[int, int]]:
    """The ``(height, width)`` of each overview level GDAL's GTiff driver makes.

    A level of factor ``f`` is ``ceil(height / f) x ceil(width / f)``.  As
    GDAL does, a factor is skipped when a level already made has the same
    factor (``GDALComputeOvFactor``) as it or as its adjusted factor
    (``GDALOvLevelAdjust2``): 3 after 2 on a 7 x 7 raster, say.  Levels
    come in the order of ``factors`` (give them increasing).

    Parameters
    ----------
    height, width : int
        The full-resolution size.
    factors : sequence of int
        The overview factors, as given to ``build_overviews``.

    Returns
    -------
    list of (int, int)

    Examples
    --------
    >>> level_sizes(301, 257, [2, 4, 8])
    [(151, 129), (76, 65), (38, 33)]
    >>> level_sizes(7, 7, [2, 3, 5])
    [(4, 4), (2, 2)]
    """
    sizes: list[tuple[int, int]] = []
    for factor in factors:
        factor = int(factor)
        adjusted = _ov_level_adjust(factor, width, height)
        if any(_ov_factor(w, width, h, height) in (factor, adjusted) for h, w in sizes):
            continue
        sizes.append((_div_round_up(height, factor), _div_round_up(width, factor)))
    return sizes


def source_levels(height: int, width: int, factors: Sequence[int], method: str,
                  interleave: str = "pixel", masked: bool = False) -> list[int | None]:
    """The level GDAL computes the pixels of each level of :func:`level_sizes` from.

    ``-1`` is the full resolution, ``k`` the level ``k``; None a level GDAL
    makes but never fills (left all nodata, or 0 without nodata): one whose factor GDAL does not
    find again when it looks the levels up (``GDALComputeOvFactor`` on the
    X side, ``GDALOvLevelAdjust2`` on the Y side, as for a 5 x 3 raster
    and a factor 8).

    * Pixel-interleaved files of several bands go through
      ``GDALRegenerateOverviewsMultiBand``: a level is computed from the
      previous computed level when that level is wider, else from the full
      resolution, whatever the method.
    * Band-interleaved files, and one-band files whatever their interleave
      (give ``interleave="band"``), go band by band through
      ``GDALRegenerateOverviewsEx``: ``average``
      and ``mode`` cascade (each level from the previous one),
      ``nearest`` takes every level from the full resolution.  With an
      internal mask (``masked``) GDAL does not cascade: every level from
      the full resolution, whatever the method.

    The pixels are resampled with the mask of the level they come from
    (GDAL's own mask of that level: give the level as :func:`resample`
    returned it); the mask itself comes from :func:`mask_source_levels`.

    Examples
    --------
    >>> source_levels(301, 257, [2, 4, 8], "average")
    [-1, 0, 1]
    >>> source_levels(40, 1, [2, 4], "average")
    [-1, -1]
    >>> source_levels(45, 37, [2, 4], "nearest", interleave="band")
    [-1, -1]
    >>> source_levels(5, 3, [2, 4, 8], "average")
    [-1, 0, None]
    >>> source_levels(45, 37, [2, 4, 8], "mode", interleave="band", masked=True)
    [-1, -1, -1]
    """
    method = _check(method)
    sizes = level_sizes(height, width, factors)
    filled = [False] * len(sizes)
    for factor in factors:
        adjusted = _ov_level_adjust(int(factor), width, height)
        for k, (h, w) in enumerate(sizes):
            if _ov_factor(w, width, h, height) in (int(factor), adjusted):
                filled[k] = True
                break
    out: list[int | None] = []
    previous = -1
    for k, (_, w) in enumerate(sizes):
        if not filled[k]:
            out.append(None)
            continue
        if interleave == "band":
            out.append(-1 if method == "nearest" or masked else previous)
        else:
            out.append(previous if previous >= 0 and sizes[previous][1] > w else -1)
        previous = k
    return out


def mask_source_levels(height: int, width: int, factors: Sequence[int],
                       method: str) -> list[int | None]:
    """The level GDAL computes the internal (per-dataset) mask of each level from.

    GDAL resamples the mask band alone, before the pixels, as one band of a
    band-interleaved file (:func:`source_levels` with ``interleave="band"``),
    whatever the file's interleave: ``nearest`` from the full resolution's
    mask, ``average`` and ``mode`` from the previous level's mask; None
    for a level GDAL never fills.  Resample it with :func:`resample_mask`
    (or take the mask :func:`resample` returns when the pixels come from the
    same level).

    Examples
    --------
    >>> mask_source_levels(301, 257, [2, 4, 8], "nearest")
    [-1, -1, -1]
    >>> mask_source_levels(301, 257, [2, 4, 8], "mode")
    [-1, 0, 1]
    """
    return source_levels(height, width, factors, method, interleave="band")


def auto_factors(height: int, width: int, block: int | tuple[int, int]) -> list[int]:
    """Factors 2, 4, 8, ... until the level fits in one block.

    The rule of ``gdaladdo`` without levels with ``--minsize`` set to the
    block's side: factors double while ``ceil(width / f) > block_width`` or
    ``ceil(height / f) > block_height``; the last factor is the first whose
    level fits in one block.  Nothing when the raster already fits.

    Parameters
    ----------
    height, width : int
        The full-resolution size.
    block : int or (int, int)
        The block's side, or its ``(height, width)``.

    Returns
    -------
    list of int

    Examples
    --------
    >>> auto_factors(301, 257, 32)
    [2, 4, 8, 16]
    >>> auto_factors(16, 16, 16)
    []
    """
    block_h, block_w = (block, block) if isinstance(block, int) else block
    factors: list[int] = []
    factor = 1
    while _div_round_up(width, factor) > block_w or _div_round_up(height, factor) > block_h:
        factor *= 2
        factors.append(factor)
    return factors


def _windows(start: int, stop: int, src_size: int, dst_size: int, method: str):
    """Per destination pixel of ``[start, stop)``: first and end source pixel,
    and (``average``) the offsets ``i * r`` and ``(i + 1) * r``."""
    ratio = src_size / dst_size
    index = np.arange(start, stop, dtype="float64")
    if method == "nearest":
        first = np.maximum((0.5 + index * ratio).astype("int64"), 0)
        first = np.minimum(first, src_size - 1)
        return first, first + 1, None, None
    off = index * ratio
    off2 = (index + 1) * ratio
    first = np.maximum((off + _EPS).astype("int64"), 0)
    end = np.ceil(off2 - _EPS).astype("int64")
    end = np.where(end == first, end + 1, end)
    end = np.minimum(end, src_size)
    return first, end, off, off2


def source_range(dst_start: int, dst_stop: int, src_size: int, dst_size: int,
                 method: str) -> tuple[int, int]:
    """The source pixels (one axis) destination pixels ``[dst_start, dst_stop)`` need.

    Parameters
    ----------
    dst_start, dst_stop : int
        The destination pixels (``dst_start < dst_stop``).
    src_size, dst_size : int
        The size of the source and destination levels on that axis.
    method : {"nearest", "average", "mode"}

    Returns
    -------
    (int, int)
        ``(src_start, src_stop)``, within ``[0, src_size)``.

    Examples
    --------
    >>> source_range(0, 10, 301, 151, "average")
    (0, 20)
    >>> source_range(150, 151, 301, 151, "average")
    (299, 301)
    >>> source_range(3, 5, 100, 50, "nearest")
    (6, 9)
    """
    first, end, _, _ = _windows(dst_start, dst_stop, src_size, dst_size, _check(method))
    return int(first.min()), int(end.max())


def nearest_pixels(dst_start: int, dst_stop: int, src_size: int,
                   dst_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The source pixel (one axis) ``nearest`` takes for each destination pixel
    of ``[dst_start, dst_stop)``, and that pixel + 1.

    Examples
    --------
    >>> nearest_pixels(0, 4, 7, 4)[0]
    array([0, 2, 4, 5])
    """
    first, end, _, _ = _windows(dst_start, dst_stop, src_size, dst_size, "nearest")
    return first, end


def _check(method: str) -> str:
    method = str(method).lower()
    if method not in METHODS:
        raise ValueError(f"resampling {method!r} is not one of {METHODS}")
    return method


def _valid(data: np.ndarray, nodata: float | None, mask: np.ndarray | None) -> np.ndarray | None:
    """Where ``data`` counts (not nodata, not masked); None when all do."""
    valid = None if mask is None else ~mask
    if nodata is not None:
        if math.isnan(nodata):
            bad = np.isnan(data) if data.dtype.kind == "f" else None
        else:
            bad = data == np.asarray(nodata).astype(data.dtype) \
                if _representable(nodata, data.dtype) else None
        if bad is not None:
            valid = ~bad if valid is None else valid & ~bad
    return valid


def _representable(value: float, dtype: np.dtype) -> bool:
    if dtype.kind == "f":
        return True
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


def _replacement(nodata: float, dtype: np.dtype):
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


def _axis_weights(first, end, off, off2):
    """First and last pixel weights of each window and their full-line total."""
    single = end == first + 1
    left = np.where(single, 1.0, 1.0 - (off - first))
    right = 1.0 - (end - off2)
    full = np.where(single, left, left + (end - first - 2) + right)
    return left, right, full


def _take(piece: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """``piece``'s rows or columns ``index`` (clipped to it); a view when
    ``index`` steps regularly (ratio 2, say)."""
    index = np.clip(index, 0, piece.shape[axis] - 1)
    if len(index) > 1:
        step = int(index[1] - index[0])
        if step > 0 and np.all(np.diff(index) == step):
            cut = [slice(None)] * piece.ndim
            cut[axis] = slice(int(index[0]), int(index[-1]) + 1, step)
            return piece[tuple(cut)]
    return np.take(piece, index, axis=axis)


def _line_pass(data, valid, first, end, left, right, axis):
    """Along ``axis``, per window: the sum of ``value * weight`` in GDAL's
    order (first pixel, middle ones, last one) and, with ``valid``, only of
    the valid pixels, with the sum of their weights and their count."""
    shape = [1] * data.ndim
    shape[axis] = -1
    n = np.reshape(end - first, shape)
    w_left = np.reshape(left, shape)
    w_right = np.reshape(right, shape)
    value = _take(data, first, axis).astype("float64")
    if valid is None:
        total = value * w_left
        weight = count = None
    else:
        ok = _take(valid, first, axis)
        total = np.where(ok, value * w_left, 0.0)
        weight = np.where(ok, w_left, 0.0)
        count = ok.astype("int32")
    for k in range(1, int(n.max())):
        value = _take(data, first + k, axis).astype("float64")
        middle = k + 1 < n
        last = k + 1 == n
        term = np.where(middle, value, np.where(last, value * w_right, 0.0))
        if valid is not None:
            ok = _take(valid, first + k, axis) & (k < n)
            total = total + np.where(ok, term, 0.0)
            weight = weight + np.where(ok, np.where(middle, 1.0, w_right), 0.0)
            count = count + ok
        else:
            total = total + term
    return total, weight, count


def _vertical(line, first, end, top, bottom):
    shape = (1, -1, 1)
    n = np.reshape(end - first, shape)
    total = _take(line, first, 1) * np.reshape(top, shape)
    w_bottom = np.reshape(bottom, shape)
    for k in range(1, int(n.max())):
        value = _take(line, first + k, 1)
        total = total + np.where(k + 1 < n, value, np.where(k + 1 == n, value * w_bottom, 0.0))
    return total


def _vertical_count(line_n, first, end):
    shape = (1, -1, 1)
    n = np.reshape(end - first, shape)
    count = _take(line_n, first, 1)
    for k in range(1, int(n.max())):
        count = count + np.where(k < n, _take(line_n, first + k, 1), 0)
    return count


def _mean(data, valid, rows, cols):
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
    rows = data[:, sy] if sy is not None else _take(data, y, 1)
    return rows[:, :, sx] if sx is not None else _take(rows, x, 2)


def _fast2x2(data, x0, y0, dst_cols, dst_width, dtype):
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
    return _round(mean, None, dtype, None, 0)


def _round(mean: np.ndarray, empty: np.ndarray | None, dtype: np.dtype,
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
    if nodata is not None and not math.isnan(nodata) and _representable(nodata, dtype):
        same = (out == np.asarray(nodata, dtype=out.dtype)) & ~empty
        if same.any():
            out = np.where(same, _replacement(nodata, dtype), out).astype(out.dtype)
    if dtype.kind in "iu" and not integer_work:
        half = np.where(out >= 0, 0.5, -0.5).astype(out.dtype)
        with np.errstate(invalid="ignore"):
            out = np.trunc(out + half)
        info = np.iinfo(dtype)
        out = np.clip(np.where(np.isnan(out), 0, out), info.min, info.max)
    if empty.any():
        out = np.where(empty, fill, out)
    return out.astype(dtype)


def _mode(data, valid, rows, cols, nodata, dtype):
    """The most frequent valid value of each window (NaNs are one value); of
    values as frequent, the first to reach that count in GDAL's scan (rows,
    then columns)."""
    y0, y1 = rows[:2]
    x0, x1 = cols[:2]
    span_y, span_x = int((y1 - y0).max()), int((x1 - x0).max())
    values, oks = [], []
    for ky in range(span_y):
        row = _take(data, y0 + ky, 1)
        row_ok = (ky < (y1 - y0))[None, :, None]
        if valid is not None:
            row_valid = _take(valid, y0 + ky, 1)
        for kx in range(span_x):
            ok = row_ok & (kx < (x1 - x0))[None, None, :]
            if valid is not None:
                ok = ok & _take(row_valid, x0 + kx, 2)
            values.append(_take(row, x0 + kx, 2))
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


def _piece_windows(shape: tuple[int, int], piece_row: int, piece_col: int,
                   dst_rows: tuple[int, int], dst_cols: tuple[int, int],
                   src_shape: tuple[int, int], dst_shape: tuple[int, int], method: str):
    """The source windows (:func:`_windows`) of the destination rows and
    columns, checked to lie in a piece of ``shape`` at ``piece_row``, ``piece_col``."""
    rows = _windows(*dst_rows, src_shape[0], dst_shape[0], method)
    cols = _windows(*dst_cols, src_shape[1], dst_shape[1], method)
    height, width = shape
    if rows[0].min() < piece_row or rows[1].max() > piece_row + height \
            or cols[0].min() < piece_col or cols[1].max() > piece_col + width:
        raise ValueError("the piece does not hold the source pixels the destination needs")
    return rows, cols


def resample(piece: np.ndarray, piece_row: int, piece_col: int,
             dst_rows: tuple[int, int], dst_cols: tuple[int, int],
             src_shape: tuple[int, int], dst_shape: tuple[int, int],
             method: str, nodata: float | None = None) -> np.ndarray:
    """Destination pixels of an overview level, as GDAL's GTiff BuildOverviews.

    Parameters
    ----------
    piece : numpy.ndarray or numpy.ma.MaskedArray
        ``(count, h, w)``: source pixels ``[piece_row, piece_row + h) x
        [piece_col, piece_col + w)`` of the source level, at least the
        :func:`source_range` of the wanted pixels.  A masked array (leave
        ``nodata`` None; the mask the same on every band) is a GeoTIFF with
        an internal mask, masked as GDAL masked that level: ``average``
        leaves masked pixels out (0 where all are); ``mode`` too (0 where
        all are), except on uint8, whose mode GDAL takes with the masked
        pixels (its byte code looks at nodata only); ``nearest`` copies.
        The mask returned is the one GDAL computes from ``piece``'s mask
        (:func:`resample_mask`); GDAL's mask of a level may come from
        another level than its pixels (:func:`mask_source_levels`).
    piece_row, piece_col : int
        Where ``piece`` starts in the source level.
    dst_rows, dst_cols : (int, int)
        The destination pixels wanted, ``[a, b)`` and ``[c, d)``.
    src_shape, dst_shape : (int, int)
        The full ``(height, width)`` of the source and destination levels.
    method : {"nearest", "average", "mode"}
    nodata : float, optional
        The nodata value (NaN for NaN), as GDAL treats it.

    Returns
    -------
    numpy.ndarray
        ``(count, b - a, d - c)`` of ``piece``'s dtype (a masked array for
        a masked ``piece``).

    Examples
    --------
    >>> a = np.arange(16, dtype="uint8").reshape(1, 4, 4)
    >>> resample(a, 0, 0, (0, 2), (0, 2), (4, 4), (2, 2), "average")[0]
    array([[ 3,  5],
           [11, 13]], dtype=uint8)
    >>> resample(a[:, 2:, :], 2, 0, (1, 2), (0, 2), (4, 4), (2, 2), "nearest")[0]
    array([[ 8, 10]], dtype=uint8)
    """
    method = _check(method)
    dtype = piece.dtype
    masked = isinstance(piece, np.ma.MaskedArray)
    mask = np.ma.getmaskarray(piece) if masked else None
    data = np.ma.getdata(piece)
    (a, b), (c, d) = dst_rows, dst_cols
    rows, cols = _piece_windows(data.shape[1:], piece_row, piece_col, dst_rows, dst_cols,
                                src_shape, dst_shape, method)
    if method == "average":  # weights from the level's own offsets
        rows = rows[:2] + _axis_weights(*rows)
        cols = cols[:2] + _axis_weights(*cols)
    rows = (rows[0] - piece_row, rows[1] - piece_row) + rows[2:]
    cols = (cols[0] - piece_col, cols[1] - piece_col) + cols[2:]
    if method == "nearest":
        out = _take(_take(data, rows[0], 1), cols[0], 2).copy()
        if masked:
            return _with_mask(out, _mask_level(mask[:1], rows, cols, method))
        return out
    if method == "mode":  # GDAL's byte mode looks at nodata only, never at the mask
        valid = _valid(data, nodata, None if dtype == np.uint8 else mask)
        fill = _mode_fill(nodata, np.dtype(dtype))
        out = _mode(data, valid, rows, cols, fill if valid is not None else None, dtype)
        if masked:
            return _with_mask(out, _mask_level(mask[:1], rows, cols, method))
        return out
    valid = _valid(data, nodata, mask)
    fast = None if valid is not None else _fast_rows(rows, src_shape, dst_shape)
    if fast is not None and fast.all():  # the common case: exact 2 x 2 windows
        return _fast2x2(data, cols[0], rows[0], np.arange(c, d), dst_shape[1], np.dtype(dtype))
    slow = slice(None) if fast is None else ~fast
    some = tuple(r[slow] if r is not None else None for r in rows)
    mean, empty = _mean(data, valid, some, cols)
    fill = nodata if nodata is not None else 0
    out = np.empty((data.shape[0], b - a, d - c), dtype)
    out[:, slow, :] = _round(mean, empty, np.dtype(dtype), nodata, fill)
    if fast is not None and fast.any():
        out[:, fast, :] = _fast2x2(data, cols[0], rows[0][fast], np.arange(c, d),
                                   dst_shape[1], np.dtype(dtype))
    if masked:
        return _with_mask(out, _mask_level(mask[:1], rows, cols, method))
    return out


def _mode_fill(nodata: float | None, dtype: np.dtype):
    """What GDAL's mode writes for a window without a valid pixel: nodata if
    it fits the unsigned type of the band's size (GDAL's mode works on
    int16 as uint16, int32 as uint32; on floats a NaN does not fit), else 0."""
    if nodata is None or math.isnan(nodata):
        return 0
    if dtype.kind == "f":
        return nodata
    unsigned = np.iinfo(f"uint{dtype.itemsize * 8}")
    return nodata if unsigned.min <= nodata <= unsigned.max else 0


def _fast_rows(rows, src_shape, dst_shape):
    """The destination rows GDAL computes with its exact 2 x 2 code: all
    windows of the level's columns are 2 wide and follow each other, and
    the row's window is 2 high."""
    if src_shape[1] != 2 * dst_shape[1]:
        return None
    first, end = _windows(0, dst_shape[1], src_shape[1], dst_shape[1], "average")[:2]
    if not (np.all(end - first == 2) and np.all(first[1:] == end[:-1])):
        return None
    return (rows[1] - rows[0]) == 2


def _mask_level(mask, rows, cols, method):
    """GDAL's internal mask of destination pixels from ``mask`` (``(1, h, w)``,
    True where masked): ``(1, rows, cols)``.  GDAL
    resamples the mask band alone (a byte band of 0 and 255, its own mask):
    ``nearest`` takes the nearest flag; ``average`` masks the windows
    without a valid pixel; ``mode`` takes the most frequent flag (masked
    ones counted, GDAL's byte mode does not look at masks), of flags as
    frequent the first to reach that count."""
    y0, y1 = rows[:2]
    x0, x1 = cols[:2]
    if method == "nearest":
        return _take(_take(mask, y0, 1), x0, 2)
    if method == "mode":
        return _mode(mask.astype("uint8"), None, rows, cols, None, np.dtype("uint8")).astype(bool)
    valid = ~mask
    any_row = np.zeros((mask.shape[0], len(y0), mask.shape[2]), bool)
    for k in range(int((y1 - y0).max())):
        any_row |= _take(valid, y0 + k, 1) & (k < (y1 - y0))[None, :, None]
    any_valid = np.zeros((mask.shape[0], len(y0), len(x0)), bool)
    for k in range(int((x1 - x0).max())):
        any_valid |= _take(any_row, x0 + k, 2) & (k < (x1 - x0))[None, None, :]
    return ~any_valid


def _with_mask(out: np.ndarray, flags: np.ndarray) -> np.ma.MaskedArray:
    """``out`` masked by ``flags`` (``(1, h, w)``) on every band."""
    return np.ma.MaskedArray(out, np.broadcast_to(flags, out.shape).copy())


def resample_mask(mask: np.ndarray, piece_row: int, piece_col: int,
                  dst_rows: tuple[int, int], dst_cols: tuple[int, int],
                  src_shape: tuple[int, int], dst_shape: tuple[int, int],
                  method: str) -> np.ndarray:
    """Destination pixels of a level's internal mask, as GDAL's GTiff BuildOverviews.

    GDAL makes the per-dataset mask's levels before the pixels', from the
    level :func:`mask_source_levels` says (the full resolution for
    ``nearest``, the previous level for ``average`` and ``mode``), whatever
    level and interleave the pixels come from: ``nearest`` takes the
    nearest flag, ``average`` masks the windows without a valid pixel,
    ``mode`` takes the most frequent flag (masked ones counted; of flags as
    frequent, the first to reach that count).  This is the mask
    :func:`resample` gives for a masked piece; call this one when the mask
    comes from another level than the pixels.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(h, w)`` bool, True where masked: pixels ``[piece_row, piece_row +
        h) x [piece_col, piece_col + w)`` of the mask's source level, at
        least the :func:`source_range` of the wanted pixels.
    piece_row, piece_col, dst_rows, dst_cols, src_shape, dst_shape, method
        As for :func:`resample`.

    Returns
    -------
    numpy.ndarray
        ``(b - a, d - c)`` bool, True where masked.

    Examples
    --------
    >>> m = np.array([[1, 1, 0, 1], [1, 0, 0, 1]], bool)
    >>> resample_mask(m, 0, 0, (0, 1), (0, 2), (2, 4), (1, 2), "average")
    array([[False, False]])
    >>> resample_mask(m, 0, 0, (0, 1), (0, 2), (2, 4), (1, 2), "mode")
    array([[ True, False]])
    """
    method = _check(method)
    mask = np.asarray(mask, bool)[None]
    rows, cols = _piece_windows(mask.shape[1:], piece_row, piece_col, dst_rows, dst_cols,
                                src_shape, dst_shape, method)
    rows = (rows[0] - piece_row, rows[1] - piece_row)
    cols = (cols[0] - piece_col, cols[1] - piece_col)
    return _mask_level(mask, rows, cols, method)[0]
