"""Which source pixels each destination pixel of an overview level takes, as GDAL does.

Each destination pixel ``i`` of an axis covers the source interval
``[i * r, (i + 1) * r)``, ``r = src_size / dst_size`` (a float64);
``nearest`` takes one pixel, ``average`` and ``mode`` a window of them, the
first and last weighed by the fraction of them inside the interval
(:func:`axis_weights`).  The per-method reductions over these windows are in
:mod:`~riomucho_dask.write.kernels.average` and
:mod:`~riomucho_dask.write.kernels.mode`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["METHODS", "source_range", "nearest_pixels", "source_windows", "piece_windows",
           "axis_weights", "take", "check_method"]

METHODS = ("nearest", "average", "mode")
_EPS = 1e-8


def check_method(method: str) -> str:
    method = str(method).lower()
    if method not in METHODS:
        raise ValueError(f"resampling {method!r} is not one of {METHODS}")
    return method


def source_windows(start: int, stop: int, src_size: int, dst_size: int, method: str):
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
    first, end, _, _ = source_windows(dst_start, dst_stop, src_size, dst_size, check_method(method))
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
    first, end, _, _ = source_windows(dst_start, dst_stop, src_size, dst_size, "nearest")
    return first, end


def axis_weights(first, end, off, off2):
    """First and last pixel weights of each window and their full-line total."""
    single = end == first + 1
    left = np.where(single, 1.0, 1.0 - (off - first))
    right = 1.0 - (end - off2)
    full = np.where(single, left, left + (end - first - 2) + right)
    return left, right, full


def take(piece: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
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


def piece_windows(shape: tuple[int, int], piece_row: int, piece_col: int,
                   dst_rows: tuple[int, int], dst_cols: tuple[int, int],
                   src_shape: tuple[int, int], dst_shape: tuple[int, int], method: str):
    """The source windows (:func:`source_windows`) of the destination rows and
    columns, checked to lie in a piece of ``shape`` at ``piece_row``, ``piece_col``."""
    rows = source_windows(*dst_rows, src_shape[0], dst_shape[0], method)
    cols = source_windows(*dst_cols, src_shape[1], dst_shape[1], method)
    height, width = shape
    if rows[0].min() < piece_row or rows[1].max() > piece_row + height \
            or cols[0].min() < piece_col or cols[1].max() > piece_col + width:
        raise ValueError("the piece does not hold the source pixels the destination needs")
    return rows, cols
