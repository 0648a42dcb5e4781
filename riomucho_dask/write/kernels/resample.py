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

import numpy as np

from .average import fast2x2, fast_rows, representable, round_mean, weighted_mean
from .levels import auto_factors, level_sizes, mask_source_levels, source_levels
from .mode import mode_fill, mode_of
from .sampling import (
    METHODS,
    axis_weights,
    check_method,
    nearest_pixels,
    piece_windows,
    source_range,
    take,
)

__all__ = ["level_sizes", "source_levels", "mask_source_levels", "auto_factors", "source_range",
           "nearest_pixels", "resample", "resample_mask", "METHODS"]


def _valid(data: np.ndarray, nodata: float | None, mask: np.ndarray | None) -> np.ndarray | None:
    """Where ``data`` counts (not nodata, not masked); None when all do."""
    valid = None if mask is None else ~mask
    if nodata is not None:
        if math.isnan(nodata):
            bad = np.isnan(data) if data.dtype.kind == "f" else None
        else:
            bad = data == np.asarray(nodata).astype(data.dtype) \
                if representable(nodata, data.dtype) else None
        if bad is not None:
            valid = ~bad if valid is None else valid & ~bad
    return valid


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
    method = check_method(method)
    dtype = piece.dtype
    masked = isinstance(piece, np.ma.MaskedArray)
    mask = np.ma.getmaskarray(piece) if masked else None
    data = np.ma.getdata(piece)
    (a, b), (c, d) = dst_rows, dst_cols
    rows, cols = piece_windows(data.shape[1:], piece_row, piece_col, dst_rows, dst_cols,
                                src_shape, dst_shape, method)
    if method == "average":  # weights from the level's own offsets
        rows = rows[:2] + axis_weights(*rows)
        cols = cols[:2] + axis_weights(*cols)
    rows = (rows[0] - piece_row, rows[1] - piece_row) + rows[2:]
    cols = (cols[0] - piece_col, cols[1] - piece_col) + cols[2:]
    if method == "nearest":
        out = take(take(data, rows[0], 1), cols[0], 2).copy()
        if masked:
            return _with_mask(out, _mask_level(mask[:1], rows, cols, method))
        return out
    if method == "mode":  # GDAL's byte mode looks at nodata only, never at the mask
        valid = _valid(data, nodata, None if dtype == np.uint8 else mask)
        fill = mode_fill(nodata, np.dtype(dtype))
        out = mode_of(data, valid, rows, cols, fill if valid is not None else None, dtype)
        if masked:
            return _with_mask(out, _mask_level(mask[:1], rows, cols, method))
        return out
    valid = _valid(data, nodata, mask)
    fast = None if valid is not None else fast_rows(rows, src_shape, dst_shape)
    if fast is not None and fast.all():  # the common case: exact 2 x 2 windows
        return fast2x2(data, cols[0], rows[0], np.arange(c, d), dst_shape[1], np.dtype(dtype))
    slow = slice(None) if fast is None else ~fast
    some = tuple(r[slow] if r is not None else None for r in rows)
    mean, empty = weighted_mean(data, valid, some, cols)
    fill = nodata if nodata is not None else 0
    out = np.empty((data.shape[0], b - a, d - c), dtype)
    out[:, slow, :] = round_mean(mean, empty, np.dtype(dtype), nodata, fill)
    if fast is not None and fast.any():
        out[:, fast, :] = fast2x2(data, cols[0], rows[0][fast], np.arange(c, d),
                                   dst_shape[1], np.dtype(dtype))
    if masked:
        return _with_mask(out, _mask_level(mask[:1], rows, cols, method))
    return out


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
        return take(take(mask, y0, 1), x0, 2)
    if method == "mode":
        return mode_of(mask.astype("uint8"), None, rows, cols, None, np.dtype("uint8")).astype(bool)
    valid = ~mask
    any_row = np.zeros((mask.shape[0], len(y0), mask.shape[2]), bool)
    for k in range(int((y1 - y0).max())):
        any_row |= take(valid, y0 + k, 1) & (k < (y1 - y0))[None, :, None]
    any_valid = np.zeros((mask.shape[0], len(y0), len(x0)), bool)
    for k in range(int((x1 - x0).max())):
        any_valid |= take(any_row, x0 + k, 2) & (k < (x1 - x0))[None, None, :]
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
    method = check_method(method)
    mask = np.asarray(mask, bool)[None]
    rows, cols = piece_windows(mask.shape[1:], piece_row, piece_col, dst_rows, dst_cols,
                                src_shape, dst_shape, method)
    rows = (rows[0] - piece_row, rows[1] - piece_row)
    cols = (cols[0] - piece_col, cols[1] - piece_col)
    return _mask_level(mask, rows, cols, method)[0]
