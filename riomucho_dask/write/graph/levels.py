"""Pieces of an overview level's graph shared by a new write and a resumed one."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np

from ... import timings
from ..kernels.overviews import reduce2
from ..kernels.pixels import as_held

__all__ = ["reduce_written", "overlapping"]


def reduce_written(block: np.ndarray, resampling: str, nodata: Any) -> np.ndarray:
    """:func:`reduce2` of ``block`` as the file holds it: an overview made from
    the written pixels, the same whether they were just computed or read back."""
    with timings.timed("encode"):
        return reduce2(as_held(block, nodata), resampling, nodata)


def overlapping(edges: tuple, start: int, stop: int) -> range:
    """Indices of the chunks (between ``edges``) that overlap ``[start, stop)``.

    Examples
    --------
    >>> list(overlapping((0, 4, 8, 10), 3, 9))
    [0, 1, 2]
    >>> list(overlapping((0, 4, 8, 10), 4, 4))
    []
    """
    if start >= stop:
        return range(0)
    first = bisect.bisect_right(edges, start) - 1
    last = bisect.bisect_left(edges, stop)
    return range(first, last)
