"""Neighbourhoods: a window grown by an overlap, read from the file in one go.

Pixels inside the raster always come from the file (also when the overlap
is wider than a block); outside it, ``boundary`` says what the run
function sees, as ``np.pad`` would pad the whole raster.
"""

from __future__ import annotations

from numbers import Real
from typing import Any, Literal

import numpy as np
from rasterio.windows import Window

from ..errors import OverlapError

__all__ = [
    "Boundary", "BOUNDARIES", "check", "check_overlap", "check_boundary", "check_fits",
    "check_inputs_fit", "read_padded", "trim",
]

BOUNDARIES = ("nodata", "reflect", "edge")
Boundary = Literal["nodata", "reflect", "edge"] | float


def check_overlap(overlap: Any) -> tuple[int, int]:
    """``(rows, cols)`` from ``overlap=N`` or ``(rows, cols)``.

    Examples
    --------
    >>> check_overlap(2), check_overlap((1, 3)), check_overlap(None)
    ((2, 2), (1, 3), (0, 0))
    """
    if overlap is None:
        return (0, 0)
    values = (overlap, overlap) if _is_int(overlap) else overlap
    try:
        rows, cols = values
    except (TypeError, ValueError):
        rows = cols = None
    if not (_is_int(rows) and _is_int(cols)) or rows < 0 or cols < 0:
        raise OverlapError(
            f"overlap must be a number of pixels N >= 0 or (rows, cols), not {overlap!r}"
        )
    return (int(rows), int(cols))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_boundary(boundary: Any) -> Boundary:
    """``boundary`` if it is one of :data:`BOUNDARIES` or a number."""
    if isinstance(boundary, str):
        if boundary in BOUNDARIES:
            return boundary
    elif isinstance(boundary, Real) and not isinstance(boundary, bool):
        return boundary
    raise OverlapError(
        f"boundary must be one of {list(BOUNDARIES)} or a number, not {boundary!r}"
    )


def check(overlap: Any, boundary: Any, mode: str) -> tuple[tuple[int, int], Boundary]:
    """``(overlap as (rows, cols), boundary)``, checked, for a run in ``mode``."""
    overlap, boundary = check_overlap(overlap), check_boundary(boundary)
    if mode == "manual_read" and overlap != (0, 0):
        raise OverlapError(
            f"overlap={overlap} with mode='manual_read': manual_read reads for itself; "
            "overlap applies to simple_read and array_read"
        )
    return overlap, boundary


def check_fits(boundary: Boundary, dtype: Any, label: str) -> None:
    """Raise OverlapError when a constant ``boundary`` cannot be held by ``dtype``.

    Examples
    --------
    >>> check_fits(-1, "uint8", "input 'a.tif'")
    Traceback (most recent call last):
    ...
    riomucho_dask.errors.OverlapError: boundary=-1 does not fit input 'a.tif' (uint8)
    """
    if isinstance(boundary, str):
        return
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return
    value = float(boundary)
    info = np.iinfo(dtype)
    if np.isnan(value) or not value.is_integer() or not info.min <= value <= info.max:
        raise OverlapError(f"boundary={boundary!r} does not fit {label} ({dtype})")


def check_inputs_fit(boundary: Boundary, inputs) -> None:
    """:func:`check_fits` for every raster the inputs (``map.inputs.Input``) read."""
    for current in inputs:
        for info in current.infos:
            check_fits(boundary, info.dtype, current.label)


def read_padded(source, window: Window, overlap: tuple[int, int],
                boundary: Boundary = "nodata") -> np.ndarray:
    """All bands of ``window`` of a :class:`~riomucho_dask.read.Source`'s grid,
    grown by ``overlap`` pixels on each side.

    One read of the part inside the grid; the rest is padded as ``np.pad``
    pads the whole raster: ``"reflect"``, ``"edge"``, a constant, or
    ``"nodata"`` (the source's nodata, 0 when it has none; masked, for a
    masked source).

    Examples
    --------
    >>> from riomucho_dask.read import Grid, Source, raster_info
    >>> source = Source((raster_info("scene_a.tif"),), Grid.from_raster("scene_a.tif"))
    >>> read_padded(source, Window(0, 0, 32, 32), (1, 2), "edge").shape
    (3, 34, 36)
    """
    rows, cols = overlap
    height, width = source.grid.shape
    row0, col0 = int(window.row_off) - rows, int(window.col_off) - cols
    row1 = int(window.row_off) + int(window.height) + rows
    col1 = int(window.col_off) + int(window.width) + cols
    inner_row0, inner_row1 = max(row0, 0), min(row1, height)
    inner_col0, inner_col1 = max(col0, 0), min(col1, width)
    data = source.read(Window(inner_col0, inner_row0, inner_col1 - inner_col0,
                              inner_row1 - inner_row0))
    pad = ((0, 0), (inner_row0 - row0, row1 - inner_row1), (inner_col0 - col0, col1 - inner_col1))
    if not any(before or after for before, after in pad):
        return data
    mask = np.ma.getmaskarray(data) if isinstance(data, np.ma.MaskedArray) else None
    pixels = data.data if mask is not None else data
    if boundary in ("reflect", "edge"):
        padded = np.pad(pixels, pad, mode=boundary)
        padded_mask = None if mask is None else np.pad(mask, pad, mode=boundary)
    else:
        value = source.fill_value() if boundary == "nodata" else boundary
        padded = np.pad(pixels, pad, mode="constant", constant_values=value)
        padded_mask = None if mask is None else np.pad(
            mask, pad, mode="constant", constant_values=boundary == "nodata")
    if mask is None:
        return padded
    return np.ma.MaskedArray(padded, mask=padded_mask, fill_value=data.fill_value)


def trim(result: np.ndarray, overlap: tuple[int, int], height: int, width: int) -> np.ndarray:
    """The core ``(count, height, width)`` of a result of the padded shape."""
    rows, cols = overlap
    return result[:, rows:rows + height, cols:cols + width]
