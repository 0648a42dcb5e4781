"""Inputs of map_windows: paths, mosaics and arrays; the grid they are read onto."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ..dataarrays import as_input, georeferencing, is_dataarray
from ..errors import InputError, InputMismatchError
from ..read import RasterInfo, array_grids, raster_info, raster_sources
from ..read.grid import GRID_NAMES, Grid, names_crs, resolve
from ..read.series import Series
from ..read.sources import common_dtype, native_grid

__all__ = ["Input", "resolve_inputs", "resolve_grid", "check_alignment", "names_crs",
           "GRID_NAMES"]


@dataclass(frozen=True)
class Input:
    """One input: a path or a mosaic (the files it reads, with their metadata),
    a series (dated sources), or a 3-D dask array (with the grid of what its
    graph reads, where known)."""

    label: str
    infos: tuple[RasterInfo, ...] = ()  # the file, a mosaic's files; an array: what it reads
    grid: Grid | None = None  # the grid it is on; None: an array of unknown georeferencing
    array: da.Array | None = None
    series: Series | None = None

    @property
    def is_files(self) -> bool:
        """A path or a mosaic (read by us), rather than an array."""
        return self.array is None

    @property
    def shape(self) -> tuple[int, int, int]:
        if self.array is not None:
            return tuple(self.array.shape)
        if self.series is not None:  # bands per step
            return (sum(group[0].count for group in self.series.infos()[0]), *self.grid.shape)
        return (self.infos[0].count, *self.grid.shape)

    @property
    def dtype(self) -> np.dtype:
        if self.array is not None:
            return self.array.dtype
        return common_dtype(self.infos)

    @property
    def block_shape(self) -> tuple[int, int]:
        if self.array is not None:
            return tuple(self.array.chunksize[1:])
        return self.infos[0].block_shape


def _is_path(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike))


def resolve_inputs(inputs: Any, mode: str) -> list[Input]:
    """Inputs as files (a path, or a list or tuple of paths: a mosaic) and 3-D
    dask arrays, each with what is known of it.

    xarray DataArrays (rioxarray's ``(band, y, x)`` or ``(y, x)``) become their
    dask array, with their ``.rio`` georeferencing.

    Raises
    ------
    InputError
        No inputs, an input of the wrong type or shape, an array or a mosaic
        in ``manual_read``.
    InputNotFoundError
        A path that does not exist or cannot be opened.
    InputMismatchError
        An array whose graph reads rasters on different grids.
    """
    if _is_path(inputs) or isinstance(inputs, (da.Array, Series)) or is_dataarray(inputs):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise InputError("no inputs given")
    resolved = []
    for position, item in enumerate(inputs):
        if isinstance(item, Series):
            if mode == "manual_read":
                raise InputError(
                    f"input {position} is a series: manual_read hands the run function one "
                    "open dataset per input, and a series is many files a window; read it "
                    "with simple_read or array_read")
            infos = item.all_infos()
            label = f"input {position} ({item!r})"
            resolved.append(Input(label, infos, item.native_grid(), series=item))
        elif _is_path(item):
            info = raster_info(item)
            resolved.append(Input(f"input {info.path!r}", (info,), native_grid((info,))))
        elif isinstance(item, (list, tuple)):
            if not item or not all(_is_path(p) for p in item):
                raise InputError(
                    f"input {position} is a {type(item).__name__} of {len(item)} items: a "
                    "mosaic is a non-empty list or tuple of paths")
            if mode == "manual_read":
                raise InputError(
                    f"input {position} is a mosaic: manual_read opens each input as one "
                    "dataset; give the files as inputs of their own")
            infos = tuple(raster_info(p) for p in item)
            label = f"input {position} (mosaic of {len(infos)} files from {infos[0].path!r})"
            resolved.append(Input(label, infos, native_grid(infos)))
        elif is_dataarray(item) or isinstance(item, da.Array):
            kind = "DataArray" if is_dataarray(item) else "dask array"
            if mode == "manual_read":
                raise InputError(
                    f"input {position} is a {kind}: manual_read needs paths to open")
            if is_dataarray(item):
                data, label, info = as_input(item, position)
                resolved.append(Input(label, (), Grid.from_info(info), data))
                continue
            if item.ndim not in (2, 3):
                raise InputError(
                    f"input {position} has shape {item.shape}: expected (bands, rows, cols)"
                )
            sources = raster_sources(item)
            reads = ", ".join(repr(path) for source in sources for path in source.paths)
            label = f"input {position} (dask array{' reading ' + reads if reads else ''})"
            grids = array_grids(item)
            if len(grids) > 1:
                raise InputMismatchError(
                    f"{label} reads rasters on {len(grids)} different grids "
                    f"({'; '.join(map(repr, grids))}); map_windows cannot tell which one "
                    "it is on")
            resolved.append(Input(label, sources[0].infos if len(sources) == 1 else (),
                                  grids[0] if grids else None,
                                  item if item.ndim == 3 else item[np.newaxis]))
        else:
            raise InputError(
                f"input {position} is a {type(item).__name__}: expected a path, a list of "
                "paths (a mosaic), a Series, a dask array or an xarray DataArray"
            )
    return resolved


def resolve_grid(grid: Any, inputs: list[Input]) -> Grid | None:
    """The grid every input is read onto (None: the inputs' own, which must agree).

    Raises
    ------
    InputError
        A grid that is none of those ``map_windows`` takes (a CRS alone, or a
        tuple such as ``("EPSG:3857", 100)``, is not one), or one made from
        inputs without georeferencing.
    """
    if grid is None:
        return None
    if is_dataarray(grid):
        georef = georeferencing(grid, "grid")
        return Grid(georef["crs"], georef["transform"], grid.sizes["x"], grid.sizes["y"])
    known = [current.grid for current in inputs if current.grid is not None]
    return resolve(grid, inputs[0].grid, known, first_label=inputs[0].label)


def check_alignment(inputs: list[Input], grid: Grid | None = None) -> None:
    """Raise InputMismatchError when inputs do not line up.

    Without a ``grid``, every input must be on the first one's grid (size,
    and where known CRS, resolution and transform).  With one, files are read
    onto it, but arrays are not resampled: they must already be on it.
    """
    if grid is None:
        first = inputs[0]
        reference = next((current for current in inputs if current.grid is not None), None)
        for current in inputs:
            shape = current.shape[-2:]
            said = [] if current.grid is None or reference is None else \
                reference.grid.differences(current.grid)
            if tuple(shape) != tuple(first.shape[-2:]) and not said:
                raise InputMismatchError(
                    f"{current.label} is {shape[0]} x {shape[1]} (height x width) but "
                    f"{first.label} is {first.shape[1]} x {first.shape[2]}; "
                    "map_windows(..., grid='first') reads every input onto the first's grid"
                )
            if said:
                raise InputMismatchError(
                    f"{current.label} does not line up with {reference.label}: it has "
                    f"{'; '.join(said)}.  map_windows(..., grid='first') reads every "
                    "input onto the first's grid (or grid='union', 'intersection', a "
                    "raster path, a Grid)"
                )
        return
    for current in inputs:
        if current.is_files:
            continue
        if current.grid is None:
            if tuple(current.shape[-2:]) != grid.shape:
                raise InputMismatchError(
                    f"{current.label} is {current.shape[1]} x {current.shape[2]} "
                    f"(height x width) but the grid is {grid.height} x {grid.width}")
            continue
        said = grid.differences(current.grid)
        if said:
            raise InputMismatchError(
                f"{current.label} is not on the grid ({'; '.join(said)}): arrays are "
                "not resampled; give the raster's path instead, which is read onto the grid"
            )
