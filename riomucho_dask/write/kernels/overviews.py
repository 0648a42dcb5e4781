"""Overview kernels: pure functions of numpy arrays, no GDAL, no dask.

Each overview level is made from the level above it, chunk by chunk, in the
graph that computes the full resolution (:mod:`riomucho_dask.write.graph.encode`),
so its pixels must equal GDAL's for the same data: :func:`reduce2` halves a
block as GDAL's COG driver does (level sizes rounded down).
"""

from __future__ import annotations

import math

import numpy as np

from .average import fast2x2
from .pixels import masked

__all__ = ["half", "reduce2"]


def half(size: int) -> int:
    """An overview level's size from the level above's, as GDAL's COG driver
    makes it: halved, rounded down (never below 1 pixel)."""
    return max(1, size // 2)


def reduce2(block: np.ndarray, resampling: str, nodata: float | None) -> np.ndarray:
    """``block`` (``(count, h, w)``) at half resolution, as GDAL's overviews:
    each pixel from the 2 x 2 pixels it covers; an odd last row or column is
    dropped, as GDAL's COG driver rounds overview sizes down (a side of 1
    pixel stays 1).

    ``"nearest"`` takes the top-left pixel (as GDAL does for a factor of 2);
    ``"average"`` the mean of the valid pixels (not nodata or masked; nodata
    or masked if none), rounded half away from zero for integers; without
    nodata or mask, GDAL's exact 2 x 2 code, the GeoTIFF kernel's
    (:func:`~riomucho_dask.write.kernels.average.fast2x2`: float32 summed in
    float32).

    Examples
    --------
    >>> a = np.arange(12, dtype="float32").reshape(1, 3, 4)
    >>> reduce2(a, "average", None)[0]
    array([[2.5, 4.5]], dtype=float32)
    >>> reduce2(a, "nearest", None)[0]
    array([[0., 2.]], dtype=float32)
    """
    _, height, width = block.shape
    step_h, step_w = (2 if height > 1 else 1), (2 if width > 1 else 1)
    half_h, half_w = height // step_h, width // step_w
    block = block[:, :half_h * step_h, :half_w * step_w]
    if resampling == "nearest":
        return block[:, ::step_h, ::step_w]
    if step_h == step_w == 2 and nodata is None and not isinstance(block, np.ma.MaskedArray):
        # GDAL's code for exact 2 x 2 windows without nodata or mask, the GeoTIFF
        # kernel's: integer sums rounded half away from zero, float32 summed in
        # float32 in GDAL's order.  The block's columns count as the level's: a
        # COG's chunks are whole tiles, so only the level's last chunk has the
        # ``width % 4`` last columns GDAL sums apart.
        rows, cols = np.arange(0, 2 * half_h, 2), np.arange(0, 2 * half_w, 2)
        return fast2x2(block, cols, rows, np.arange(half_w), half_w, block.dtype)
    if step_h == step_w == 2 and _all_valid(block, nodata):  # (GDAL's general code, quick)
        parts = [block[:, r::2, c::2].astype("float64") for r in (0, 1) for c in (0, 1)]
        mean = (parts[0] + parts[1] + parts[2] + parts[3]) * 0.25
        return _rounded(mean, block.dtype).astype(block.dtype)
    data = np.ma.getdata(block).astype("float64")
    valid = ~np.ma.getmaskarray(block)
    if nodata is not None:  # (NaN without a NaN nodata is averaged in, as GDAL does)
        valid &= ~(np.isnan(data) if math.isnan(nodata) else data == nodata)
    shape = (block.shape[0], half_h, step_h, half_w, step_w)
    total = np.where(valid, data, 0).reshape(shape).sum(axis=(2, 4))
    count = valid.reshape(shape).sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    empty = count == 0
    mean = _rounded(mean, block.dtype)
    fill = nodata if nodata is not None else (np.nan if block.dtype.kind in "fc" else 0)
    out = np.where(empty, fill, mean).astype(block.dtype)
    if isinstance(block, np.ma.MaskedArray) and nodata is None:
        return masked(out, empty)
    return out


def _rounded(mean: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Means for an integer dtype rounded half away from zero, as GDAL does."""
    if np.dtype(dtype).kind in "fc":
        return mean
    return np.copysign(np.floor(np.abs(mean) + 0.5), mean)


def _all_valid(block: np.ndarray, nodata: float | None) -> bool:
    """No masked or nodata pixel in ``block``."""
    if isinstance(block, np.ma.MaskedArray) and np.ma.getmask(block) is not np.ma.nomask \
            and np.ma.getmask(block).any():
        return False
    data = np.ma.getdata(block)
    if nodata is None:
        return True
    return not (np.isnan(data).any() if math.isnan(nodata) else (data == nodata).any())


