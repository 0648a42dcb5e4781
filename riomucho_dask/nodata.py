"""Nodata values and the dtypes that can hold them (below every stage)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["nodata_fits"]


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
