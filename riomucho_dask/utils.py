"""rio-mucho's ``riomucho.utils``, kept for code that imports it."""

from __future__ import annotations

import rasterio

from .map.contract import array_stack as _array_stack

__all__ = ["getOptions", "getWindows", "array_stack"]


def getOptions(input):
    """A source's profile (the default output profile)."""
    with rasterio.open(input) as src:
        return src.profile


def getWindows(input):
    """A source's block windows, as ``[[window, ij], ...]``."""
    with rasterio.open(input) as src:
        return [[window, ij] for ij, window in src.block_windows()]


def array_stack(arrays):
    """Stack every band of every array, in order.

    Raises ``ValueError`` when heights and widths differ.

    Examples
    --------
    >>> array_stack([np.zeros((2, 3, 4)), np.ones((1, 3, 4))]).shape
    (3, 3, 4)
    """
    return _array_stack(arrays)
