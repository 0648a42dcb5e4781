"""map_windows: a run function over the windows of one or more rasters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

from ..errors import InputError, OverlapError, WindowGridError
from ..read import NAME, path_signatures, raster_array
from ..windows import block_chunks, chunk_window, grid_from_windows, offsets
from .contract import MODES, Mode, RunFunction, RunSpec, array_stack, check_mode
from .inputs import Input, check_alignment, resolve_inputs
from .overlap import Boundary, check_inputs_fit
from .overlap import check as check_overlap_args

__all__ = ["map_windows", "MODES", "Mode", "array_stack"]


class WindowRunner:
    """The per-chunk task: the window and ij of the chunk, then the run function.

    The window comes from the chunk index (``block_id``) and the grid's
    offsets.  Windows given by the user (kept as given, with their ``ij``)
    arrive as one extra, object-typed block per chunk, so a task's graph
    never holds the whole window list.
    """

    def __init__(self, spec: RunSpec, row_chunks, col_chunks, given_windows: bool):
        self.spec = spec
        self.row_offsets = offsets(row_chunks)
        self.col_offsets = offsets(col_chunks)
        self.given_windows = given_windows

    def __dask_tokenize__(self):
        spec = self.spec
        return (
            tokenize(spec.run_function), spec.mode, spec.paths, path_signatures(spec.paths),
            tokenize(spec.global_args),
            spec.count, str(spec.dtype), spec.strict_dtype, spec.overlap, spec.boundary,
            tokenize(spec.gdal_env.options),  # GDAL options may change what is read
            self.row_offsets, self.col_offsets, self.given_windows,
        )

    def __call__(self, *blocks, block_id=None):
        i, j = block_id[1:]
        own = chunk_window(self.row_offsets, self.col_offsets, i, j)
        height, width = int(own.height), int(own.width)
        if self.given_windows:
            window, ij = blocks[-1].item()
            blocks = blocks[:-1]
        else:
            window, ij = own, (i, j)
        return self.spec.run(window, ij, height, width,
                             blocks=None if self.spec.reads_files else blocks)


def file_path(current: Input, position: int) -> str:
    """The file an input reads: its path, or the raster of an open_raster array."""
    item = current.item
    if isinstance(item, str):
        return item
    if item.name.startswith(NAME) and len(current.sources) == 1:
        return current.sources[0].path
    raise OverlapError(
        f"input {position} is an array that is not read straight from a file: overlap "
        "reads each window's neighbourhood from the inputs' files, so give paths or "
        "open_raster arrays (for other arrays, use dask's map_overlap)"
    )


def _plain(lookup: dict, row_chunks, col_chunks) -> bool:
    """True when every given window is the chunk's own Window and ij its index."""
    rows, cols = offsets(row_chunks), offsets(col_chunks)
    for (i, j), (window, ij) in lookup.items():
        own = chunk_window(rows, cols, i, j)
        if not isinstance(window, Window) or window != own or tuple(ij) != (i, j):
            return False
    return True


def _given_windows_array(lookup: dict, row_chunks, col_chunks) -> da.Array:
    """A (1, R, C)-block object array holding each chunk's (window, ij) as given."""
    name = "given-windows-" + tokenize(sorted(lookup.items(), key=lambda kv: kv[0]))
    graph = {}
    for (i, j), item in lookup.items():
        cell = np.empty((1, 1, 1), dtype=object)
        cell[0, 0, 0] = item
        graph[(name, 0, i, j)] = cell
    chunks = ((1,), (1,) * len(row_chunks), (1,) * len(col_chunks))
    return da.Array(graph, name, chunks, dtype=object, meta=np.empty((0, 0, 0), dtype=object))


def map_windows(
    run_function: RunFunction,
    inputs: Any,
    *,
    mode: Mode = "simple_read",
    global_args: Any = None,
    count: int | None = None,
    dtype: Any = None,
    windows: Sequence[Any] | None = None,
    overlap: int | tuple[int, int] = 0,
    boundary: Boundary = "nodata",
) -> da.Array:
    """Apply a rio-mucho run function to every window, lazily.

    Parameters
    ----------
    run_function : callable
        ``run_function(data, window, ij, global_args)`` returning an array of
        shape ``(count, window.height, window.width)``.  ``data`` depends on
        ``mode``: ``simple_read``, a list with one ``(bands, rows, cols)`` array
        per input; ``array_read``, one array stacking every band of every
        input in order; ``manual_read``, a list of open rasterio datasets to
        read from yourself (do not close them).
    inputs : sequence of path, dask.array.Array or xarray.DataArray
        Input rasters: paths, or (for the two reading modes) dask arrays (from
        :func:`open_raster` or any other) and rioxarray DataArrays (``(band, y,
        x)`` or ``(y, x)``).  Except in ``manual_read``, they must line up: same
        height and width, and, where known (files, ``open_raster`` arrays and
        what is derived from them, DataArrays' ``.rio``), same transform and CRS.
    mode : {"simple_read", "array_read", "manual_read"}, optional
    global_args : object, optional
        Passed to every call as the fourth argument (default ``{}``).
    count : int, optional
        Bands the run function returns.  Default: the first input's count.
    dtype : numpy dtype, optional
        Output dtype; results are cast to it as rasterio's ``write`` would.
        Default: the first input's dtype, and then a result that cannot be
        cast to it within its kind (a float result for an integer input)
        raises :class:`~riomucho_dask.errors.OutputDtypeError` rather than
        being truncated silently.
    windows : sequence, optional
        Windows (``Window``, legacy tuples or ``(window, ij)`` pairs) that tile
        the raster as a grid.  Default: the block windows of the first input
        (or the chunks of the first input, when it is a dask array).  For
        window sets with gaps or overlaps use :class:`RioMucho`.
    overlap : int or (int, int), optional
        Pixels of neighbourhood (rows, cols; an int for both): the run
        function's data covers each window grown by this many pixels on each
        side, read from the inputs' files in one read per input (so inputs
        are paths or :func:`open_raster` arrays).  ``window`` and ``ij`` stay
        the core window's.  The run function returns the core shape or the
        padded one, which is trimmed.  Not with ``manual_read``.
    boundary : {"nodata", "reflect", "edge"} or number, optional
        What the data holds outside the raster, as ``np.pad`` would pad the
        whole raster: the input's nodata (0 when it has none; the default),
        ``np.pad``'s ``"reflect"`` or ``"edge"`` modes, or a constant.
        Pixels inside the raster always come from the file.

    Returns
    -------
    dask.array.Array
        ``(count, rows, cols)``, one chunk per window.  Nothing has been read.

    Raises
    ------
    ModeError, OverlapError, InputNotFoundError, InputMismatchError, WindowGridError
        At once, before anything is computed.
    RunFunctionError, OutputShapeError, OutputDtypeError
        At compute time, naming the window and ``ij``.

    Examples
    --------
    >>> def ndvi(data, window, ij, g):
    ...     red, nir = data[0][2].astype("f4"), data[1][0].astype("f4")
    ...     return ((nir - red) / (nir + red + 1e-9))[None]
    >>> out = map_windows(ndvi, ["scene_a.tif", "scene_b.tif"], count=1, dtype="float32")
    >>> out.shape, out.dtype, out.chunksize
    ((1, 97, 131), dtype('float32'), (1, 32, 32))
    >>> out[:, :32, :32].compute().shape      # reads and runs one window only
    (1, 32, 32)

    A 3 x 3 mean needs one pixel around each window:

    >>> def mean3(data, window, ij, g):
    ...     z = data[0][:1].astype("f4")      # (1, height + 2, width + 2)
    ...     rows, cols = z.shape[1] - 2, z.shape[2] - 2
    ...     return sum(z[:, r:r + rows, c:c + cols] for r in range(3) for c in range(3)) / 9
    >>> smooth = map_windows(mean3, ["scene_a.tif"], overlap=1, boundary="edge",
    ...                      count=1, dtype="float32")
    >>> smooth.chunksize
    (1, 32, 32)
    """
    check_mode(mode)
    if not callable(run_function):
        raise InputError(f"run_function must be callable, not {type(run_function).__name__}")
    overlap, boundary = check_overlap_args(overlap, boundary, mode)
    inputs = resolve_inputs(inputs, mode)
    if mode != "manual_read":
        check_alignment(inputs)

    first = inputs[0]
    height, width = first.shape[-2:]
    lookup = None
    if windows is not None:
        try:
            row_chunks, col_chunks, lookup = grid_from_windows(list(windows), height, width)
        except WindowGridError as err:
            raise WindowGridError(
                f"{err}; map_windows needs windows that tile the raster as a grid: for "
                "subsets, gaps or overlaps use riomucho_dask.RioMucho"
            ) from err
    elif isinstance(first.item, da.Array):
        row_chunks, col_chunks = first.item.chunks[-2:]
    else:
        row_chunks, col_chunks = block_chunks(height, width, first.info.block_shape)

    arrays = []
    if overlap != (0, 0):  # each window reads its neighbourhood from the files itself
        paths = [file_path(current, position) for position, current in enumerate(inputs)]
        check_inputs_fit(boundary, inputs)
    elif mode != "manual_read":
        for current in inputs:
            item = current.item
            if isinstance(item, str):
                arrays.append(raster_array(current.info, row_chunks, col_chunks))
                continue
            if item.chunks[1:] != (row_chunks, col_chunks) or len(item.chunks[0]) != 1:
                item = item.rechunk({0: -1, 1: row_chunks, 2: col_chunks})
            arrays.append(item)

    strict_dtype = dtype is None
    if count is None:
        count = first.shape[0]
    if dtype is None:
        dtype = first.item.dtype if isinstance(first.item, da.Array) else first.info.dtype
    dtype = np.dtype(dtype)
    count = int(count)
    if count < 1:
        raise InputError(f"count must be at least 1, not {count}")

    if overlap == (0, 0):
        paths = [current.item for current in inputs if isinstance(current.item, str)]
    given = lookup is not None and not _plain(lookup, row_chunks, col_chunks)
    if given:
        arrays.append(_given_windows_array(lookup, row_chunks, col_chunks))
    spec = RunSpec(run_function, mode, paths, {} if global_args is None else global_args,
                   count, dtype, strict_dtype, overlap=overlap, boundary=boundary)
    runner = WindowRunner(spec, row_chunks, col_chunks, given)
    return da.map_blocks(
        runner,
        *arrays,
        chunks=((count,), row_chunks, col_chunks),
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype=dtype),
        name="map_windows-" + tokenize(runner, *[a.name for a in arrays], row_chunks, col_chunks),
    )
