"""Nodata values and the dtypes that can hold them (below every stage)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["nodata_fits", "nodata_value", "invalid"]


def nodata_fits(nodata: Any, dtype: np.dtype) -> bool:
    """Whether ``dtype`` can hold ``nodata`` exactly (None always fits).

    Examples
    --------
    >>> nodata_fits(-9999, np.dtype("uint8")), nodata_fits(255, np.dtype("uint8"))
    (False, True)
    >>> nodata_fits(float("nan"), np.dtype("int16")), nodata_fits(float("nan"), np.dtype("f4"))
    (False, True)
    """
    if nodata is None:
        return True
    if np.isnan(nodata):
        return dtype.kind in "fc"
    if dtype.kind in "fc":
        return True
    info = np.iinfo(dtype)
    return float(nodata).is_integer() and info.min <= nodata <= info.max


def nodata_value(nodata: Any, dtype: np.dtype) -> Any:
    """``nodata`` as a value of ``dtype`` (as GDAL compares pixels with it: a float32
    band's nodata 0.1 is float32's 0.1), or None when there is none or ``dtype``
    cannot hold it.

    Examples
    --------
    >>> bool(nodata_value(0.1, np.dtype("float32")) == np.float32(0.1))
    True
    >>> nodata_value(-9999, np.dtype("uint8")) is None
    True
    """
    if nodata is None:
        return None
    try:
        with np.errstate(all="ignore"):
            return np.array(nodata).astype(dtype, casting="unsafe")[()] \
                if dtype.kind == "f" else np.array(nodata, dtype=dtype)[()]
    except (OverflowError, ValueError, TypeError):
        return None


def invalid(data: np.ndarray, nodata: Any) -> np.ndarray | None:
    """The pixels of ``data`` that are not values: its ``nodata`` (see
    :func:`nodata_value`) and, in floats, NaN; None where every pixel is one (no
    array made).  The rule of the statistics written with an output and of zonal
    statistics (GDAL's ``ComputeStatistics``, rasterstats).

    Examples
    --------
    >>> invalid(np.array([1.0, np.nan, -9.0]), -9)
    array([False,  True,  True])
    >>> invalid(np.array([1, 2], dtype="uint8"), -9999) is None
    True
    """
    value = nodata_value(nodata, data.dtype)
    floating = data.dtype.kind in "fc"
    bad = None
    if value is not None and not (floating and np.isnan(value)):
        same = data == value
        if same.any():
            bad = same
    if floating:
        nan = np.isnan(data)
        if nan.any():
            bad = nan if bad is None else bad | nan
    return bad
