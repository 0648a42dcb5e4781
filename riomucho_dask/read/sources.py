"""Sources: what an input reads and how, behind one call, :meth:`Source.read`.

A :class:`Source` is one input of a job: a raster file, or a mosaic of
files (a list of paths), read onto a :class:`~.grid.Grid` with a
resampling, plain or masked, in the GDAL options captured where the graph
was built.  It holds paths and metadata, never an open dataset, so it
travels in any graph; each thread reads through its own cached handles
(:mod:`.handles`).

How a window of the grid is read from one file:

- **aligned** (same CRS, pixel size and pixel edges): a plain windowed
  read, the file's pixels as they are; where the grid reaches past the
  file, its nodata (0 without one).  A file on the grid itself costs
  exactly what a windowed read costs.
- **otherwise**: GDAL's warper, through one ``WarpedVRT`` of the file onto
  the whole grid per thread (what a user writes by hand), read at the
  window.  No resampling code of our own.

A mosaic reads each of its files that reach the window, in order; the
first valid pixel wins (``rasterio.merge``'s default, ``method="first"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from dask.base import tokenize
from rasterio.enums import MaskFlags, Resampling
from rasterio.windows import Window

from .. import gdal_options, timings
from ..errors import InputError, InputReadError, gdal_message, is_gdal_error
from . import handles, nearest
from .grid import Grid, apply, union

__all__ = ["Source", "resampling_of", "native_grid", "common_dtype"]

#: Pixels around a warped file's footprint that a resampling kernel may reach.
_KERNEL_MARGIN = 4


def resampling_of(value: Any, label: str = "resampling") -> Resampling:
    """A ``rasterio.enums.Resampling`` from itself or its name (default nearest).

    Examples
    --------
    >>> resampling_of("bilinear"), resampling_of(None)
    (<Resampling.bilinear: 1>, <Resampling.nearest: 0>)
    """
    if value is None:
        return Resampling.nearest
    if isinstance(value, Resampling):
        return value
    if isinstance(value, str):
        try:
            return Resampling[value.lower()]
        except KeyError:
            pass
    raise InputError(
        f"{label}={value!r} is not a resampling: one of "
        f"{[r.name for r in Resampling if r.value < 1000]} or a rasterio Resampling"
    )


def common_dtype(infos) -> np.dtype:
    """The dtype every file of a source is read as (their common one)."""
    return np.result_type(*(np.dtype(info.dtype) for info in infos))


def native_grid(infos) -> Grid:
    """The grid of one file, or of a mosaic: the union of its files' footprints,
    on the first file's pixels and CRS."""
    grids = [Grid.from_info(info) for info in infos]
    return grids[0] if len(grids) == 1 else union(grids[0], grids)


@dataclass(frozen=True)
class _File:
    """One file of a source, and where it lies on the grid."""

    path: str
    signature: Any
    offset: tuple[int, int] | None  # (row, col) of the grid's origin in the file; None: warp
    shape: tuple[int, int]  # the file's (height, width)
    reach: tuple[int, int, int, int]  # grid rows and cols it may cover: (r0, r1, c0, c1)


@dataclass(frozen=True, eq=False)
class Source:
    """One input, read onto a grid (see the module's docstring).

    Parameters
    ----------
    infos : tuple of RasterInfo
        The file, or the files of a mosaic in order (first valid pixel wins).
    grid : Grid
        What the source is read onto.
    resampling : rasterio.enums.Resampling
        For files that are not on the grid's pixels.
    masked : bool
        Reads give numpy masked arrays (nodata, internal masks, alpha, and
        the grid's pixels outside the files).
    label : str
        How errors name the input.
    """

    infos: tuple
    grid: Grid
    resampling: Resampling = Resampling.nearest
    masked: bool = False
    label: str = ""
    gdal_env: gdal_options.GDALOptions = field(default_factory=gdal_options.captured_env)
    files: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        counts = {info.count for info in self.infos}
        if len(counts) > 1:
            raise InputError(
                f"{self.label}: the files of a mosaic must have one band count, not "
                f"{sorted(counts)} ({', '.join(repr(i.path) for i in self.infos)})")
        object.__setattr__(self, "files", tuple(self._place(info) for info in self.infos))

    def _place(self, info) -> _File:
        own = Grid.from_info(info)
        offset = self.grid.offset_in(own)
        if offset is not None:
            r0, c0 = -offset[0], -offset[1]
            reach = (r0, r0 + info.height, c0, c0 + info.width)
        else:
            left, bottom, right, top = own.footprint(self.grid.crs)
            inverse = ~self.grid.transform
            cols, rows = zip(*(apply(inverse, xy) for xy in ((left, top), (right, top),
                                                       (left, bottom), (right, bottom))))
            reach = (math.floor(min(rows)) - _KERNEL_MARGIN,
                     math.ceil(max(rows)) + _KERNEL_MARGIN,
                     math.floor(min(cols)) - _KERNEL_MARGIN,
                     math.ceil(max(cols)) + _KERNEL_MARGIN)
        return _File(info.path, info.signature, offset,
                     (info.height, info.width), reach)

    def __eq__(self, other) -> bool:  # (a NaN nodata is not equal to itself)
        return isinstance(other, Source) and tokenize(self) == tokenize(other)

    def __hash__(self) -> int:
        return hash(tokenize(self))

    def __dask_tokenize__(self):
        return ("Source", tuple((f.path, f.signature) for f in self.files), self.grid,
                self.resampling.name, self.masked, sorted(self.gdal_env.options.items()))

    # -- what it is ---------------------------------------------------------
    @property
    def count(self) -> int:
        return self.infos[0].count

    @property
    def dtype(self) -> np.dtype:
        return common_dtype(self.infos)

    @property
    def nodata(self) -> Any:
        """The first file's nodata (a mosaic's, as ``rasterio.merge``)."""
        return self.infos[0].nodata

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.files)

    @property
    def is_mosaic(self) -> bool:
        return len(self.files) > 1

    @property
    def on_grid(self) -> bool:
        """Whether reads are plain windowed reads of one file that is the grid."""
        (first, *rest) = self.files
        return not rest and first.offset == (0, 0) and first.shape == self.grid.shape

    # -- reading --------------------------------------------------------------
    def fill_value(self, dtype: np.dtype | None = None) -> Any:
        """What the grid holds where no file has a pixel: nodata, else 0."""
        dtype = np.dtype(dtype or self.dtype)
        nodata = self.nodata
        if nodata is None or (np.isnan(nodata) and dtype.kind not in "fc"):
            return np.zeros((), dtype)[()]
        return np.array(nodata).astype(dtype)[()]

    def read(self, window: Window, indexes: list[int] | None = None) -> np.ndarray:
        """The bands ``indexes`` (default all) of ``window`` of the grid, as the
        source's dtype: a masked array when the source is ``masked``."""
        pixels = (self.count if indexes is None else len(indexes)) * int(window.height) \
            * int(window.width)
        with timings.timed("read", pixels_read=pixels):
            return self._read(window, indexes)

    def _read(self, window: Window, indexes: list[int] | None) -> np.ndarray:
        indexes = list(range(1, self.count + 1)) if indexes is None else list(indexes)
        dtype = self.dtype
        want_valid = self.masked or self.is_mosaic
        if not self.is_mosaic:
            data, valid = self._read_file(self.files[0], window, indexes, dtype, want_valid)
        else:
            data, valid = self._blank(window, indexes, dtype)
            for file in self.files:
                if not _reaches(file, window):
                    continue
                more, more_valid = self._read_file(file, window, indexes, dtype, True)
                take = more_valid & ~valid
                np.copyto(data, more, where=take)
                valid |= take
                if valid.all():
                    break
        if not self.masked:
            return data
        return np.ma.MaskedArray(data, mask=~valid, fill_value=self.fill_value(dtype))

    def _blank(self, window: Window, indexes, dtype) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(indexes), int(window.height), int(window.width))
        return np.full(shape, self.fill_value(dtype), dtype), np.zeros(shape, bool)

    def _read_file(self, file: _File, window: Window, indexes, dtype,
                   want_valid: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """``(pixels, valid)`` of one file at a grid window (valid is None unless
        asked for); a GDAL failure is an :class:`InputReadError` naming the file,
        the window and GDAL's message."""
        try:
            return self._read_file_unchecked(file, window, indexes, dtype, want_valid)
        except Exception as err:
            if not is_gdal_error(err):
                raise
            raise InputReadError(
                f"reading {file.path!r} at window {_window_text(window)} failed: "
                f"{gdal_message(err)}") from err

    def _read_file_unchecked(self, file: _File, window: Window, indexes, dtype,
                             want_valid: bool) -> tuple[np.ndarray, np.ndarray | None]:
        if not _reaches(file, window):
            data, valid = self._blank(window, indexes, dtype)
            return data, valid if want_valid else None
        if file.offset is None and self.resampling == Resampling.nearest:
            return nearest.read(handles.get_dataset(file.path), self.grid, window, indexes,
                                dtype, want_valid)
        if file.offset is None:
            # (from the file itself: a STAC item's metadata may not say its nodata)
            dataset = handles.get_dataset(file.path)
            alpha = want_valid and dataset.nodata is None and not any(
                MaskFlags.alpha in flags for flags in dataset.mask_flag_enums)
            vrt = handles.get_warped(file.path, self.grid, self.resampling, alpha=alpha)
            return _read_warped(vrt, indexes, window, dtype, want_valid)
        dataset = handles.get_dataset(file.path)
        height, width = int(window.height), int(window.width)
        row0, col0 = int(window.row_off) + file.offset[0], int(window.col_off) + file.offset[1]
        inner_r0, inner_c0 = max(row0, 0), max(col0, 0)
        inner_r1, inner_c1 = min(row0 + height, file.shape[0]), min(col0 + width, file.shape[1])
        inner = Window(inner_c0, inner_r0, inner_c1 - inner_c0, inner_r1 - inner_r0)
        if (inner_r0, inner_c0, inner_r1, inner_c1) == (row0, col0, row0 + height,
                                                         col0 + width):
            data = dataset.read(indexes, window=inner, out_dtype=dtype)
            return data, (_valid(dataset, indexes, inner) if want_valid else None)
        data, valid = self._blank(window, indexes, dtype)
        place = (slice(None), slice(inner_r0 - row0, inner_r1 - row0),
                 slice(inner_c0 - col0, inner_c1 - col0))
        data[place] = dataset.read(indexes, window=inner, out_dtype=dtype)
        if want_valid:
            valid[place] = _valid(dataset, indexes, inner)
        return data, valid if want_valid else None

    def dataset(self):
        """This thread's open dataset for ``manual_read``: the file itself when
        it is the grid, else a ``WarpedVRT`` of it onto the grid."""
        file = self.files[0]
        if self.on_grid:
            return handles.get_dataset(file.path)
        return handles.get_warped(file.path, self.grid, self.resampling)


def _read_warped(vrt, indexes, window: Window, dtype,
                 want_valid: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``(pixels, valid)`` of a WarpedVRT at ``window``, read piece by piece on the
    VRT's own blocks.  GDAL warps a request within a block through its block
    path, but a larger one in one go, with the kernel's scale taken from that
    request's source window: a downsampling bilinear read of 600 x 600 differed
    from 512 x 512 ones on most pixels.  Pieces on the block grid make the pixels
    the same whatever the windows and tasks."""
    block_rows, block_cols = vrt.block_shapes[0]
    row0, col0 = int(window.row_off), int(window.col_off)
    height, width = int(window.height), int(window.width)
    if row0 // block_rows == (row0 + height - 1) // block_rows and \
            col0 // block_cols == (col0 + width - 1) // block_cols:
        return (vrt.read(indexes, window=window, out_dtype=dtype),
                _valid(vrt, indexes, window) if want_valid else None)
    data = np.empty((len(indexes), height, width), dtype)
    valid = np.empty(data.shape, bool) if want_valid else None
    for r in range(row0 // block_rows * block_rows, row0 + height, block_rows):
        for c in range(col0 // block_cols * block_cols, col0 + width, block_cols):
            r0, c0 = max(r, row0), max(c, col0)
            r1, c1 = min(r + block_rows, row0 + height), min(c + block_cols, col0 + width)
            piece = Window(c0, r0, c1 - c0, r1 - r0)
            place = (slice(None), slice(r0 - row0, r1 - row0), slice(c0 - col0, c1 - col0))
            data[place] = vrt.read(indexes, window=piece, out_dtype=dtype)
            if valid is not None:
                valid[place] = _valid(vrt, indexes, piece)
    return data, valid


def _window_text(window: Window) -> str:
    return (f"(row {int(window.row_off)}, col {int(window.col_off)}, "
            f"{int(window.height)} x {int(window.width)})")


def _reaches(file: _File, window: Window) -> bool:
    r0, r1, c0, c1 = file.reach
    return (r0 < window.row_off + window.height and window.row_off < r1
            and c0 < window.col_off + window.width and window.col_off < c1)


def _valid(dataset, indexes, window: Window) -> np.ndarray:
    """Which pixels of ``window`` hold data, per band (``read_masks`` > 0)."""
    if handles.all_valid(dataset, indexes):
        return np.ones((len(indexes), int(window.height), int(window.width)), bool)
    return dataset.read_masks(indexes, window=window) > 0
