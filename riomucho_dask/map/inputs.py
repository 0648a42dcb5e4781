"""Inputs of map_windows: paths and arrays, and whether they line up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ..dataarrays import as_input, is_dataarray
from ..errors import InputError, InputMismatchError
from ..read import RasterInfo, raster_info, raster_sources

__all__ = ["Input", "resolve_inputs", "check_alignment"]


@dataclass(frozen=True)
class Input:
    """One input: a path (with its metadata) or a 3-D dask array (with the
    georeferencing of the rasters its graph reads, where there are any)."""

    item: str | da.Array
    label: str
    info: RasterInfo | None  # the raster itself, or the first raster an array reads
    sources: tuple[RasterInfo, ...] = ()

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.info.shape if isinstance(self.item, str) else tuple(self.item.shape)


def resolve_inputs(inputs: Any, mode: str) -> list[Input]:
    """Inputs as paths (str) and 3-D dask arrays, each with what is known of it.

    xarray DataArrays (rioxarray's ``(band, y, x)`` or ``(y, x)``) become their
    dask array, with their ``.rio`` georeferencing.

    Raises
    ------
    InputError
        No inputs, an input of the wrong type or shape, or an array in
        ``manual_read``.
    InputNotFoundError
        A path that does not exist or cannot be opened.
    """
    if isinstance(inputs, (str, os.PathLike, da.Array)) or is_dataarray(inputs):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise InputError("no inputs given")
    resolved = []
    for position, item in enumerate(inputs):
        if isinstance(item, (str, os.PathLike)):
            info = raster_info(item)
            resolved.append(Input(info.path, f"input {info.path!r}", info, (info,)))
        elif is_dataarray(item):
            if mode == "manual_read":
                raise InputError(
                    f"input {position} is a DataArray: manual_read needs paths to open"
                )
            data, label, info = as_input(item, position)
            resolved.append(Input(data, label, info, (info,)))
        elif isinstance(item, da.Array):
            if mode == "manual_read":
                raise InputError(
                    f"input {position} is a dask array: manual_read needs paths to open"
                )
            if item.ndim not in (2, 3):
                raise InputError(
                    f"input {position} has shape {item.shape}: expected (bands, rows, cols)"
                )
            sources = tuple(raster_sources(item))
            label = f"input {position} (dask array)"
            resolved.append(Input(item if item.ndim == 3 else item[np.newaxis], label,
                                  sources[0] if sources else None, sources))
        else:
            raise InputError(
                f"input {position} is a {type(item).__name__}: expected a path, a dask array "
                "or an xarray DataArray"
            )
    return resolved


def check_alignment(inputs: list[Input]) -> None:
    """Raise InputMismatchError when inputs differ in size, transform or CRS.

    Arrays are checked through the rasters their graphs read (so
    ``open_raster(a) * 2`` is checked against ``a``); an array reading
    several rasters must itself read aligned ones.
    """
    first = inputs[0]
    first_shape = first.shape[-2:]
    reference = None  # (label, info) of the first georeferenced raster
    for current in inputs:
        shape = current.shape[-2:]
        if tuple(shape) != tuple(first_shape):
            raise InputMismatchError(
                f"{current.label} is {shape[0]} x {shape[1]} (height x width) but "
                f"{first.label} is {first_shape[0]} x {first_shape[1]}"
            )
        for info in current.sources:
            if reference is None:
                reference = (current.label, info)
                continue
            label, want = reference
            reads_itself = isinstance(current.item, str) or info.path == current.label
            what = current.label if reads_itself else (
                f"{current.label}, which reads {info.path!r},")
            if info.crs != want.crs:
                raise InputMismatchError(
                    f"{what} has CRS {info.crs} but {label} has {want.crs}"
                )
            if not info.transform.almost_equals(want.transform):
                raise InputMismatchError(
                    f"{what} has transform {tuple(info.transform)[:6]} but "
                    f"{label} has {tuple(want.transform)[:6]}"
                )
