"""map_windows: a run function over the windows of one or more rasters."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

from .. import config, gdal_options
from ..errors import InputError, OverlapError, WindowGridError
from ..read import (
    NAME,
    SERIES_WINDOW,
    Grid,
    SeriesSource,
    Source,
    grid_tag,
    raster_array,
    raster_info,
    raster_sources,
    series_array,
)
from ..read.sources import resampling_of
from ..windows import (
    chunk_window,
    grid_from_windows,
    group_sizes,
    offsets,
    window_chunks,
    window_groups,
)
from .contract import MODES, Mode, RunFunction, RunSpec, array_stack, check_mode
from .inputs import GRID_NAMES, Input, check_alignment, resolve_grid, resolve_inputs
from .overlap import Boundary, check_inputs_fit
from .overlap import check as check_overlap_args

__all__ = ["map_windows", "prepare", "Job", "MODES", "Mode", "array_stack"]


class WindowRunner:
    """The per-task function: the windows of one group, each run in turn.

    A task (one chunk of the arrays) holds a group of neighbouring windows
    (:func:`~riomucho_dask.windows.window_groups`).  Each window's data is
    sliced from the chunk's blocks (one read of the group's extent per
    input), or read by the window itself (``manual_read``, overlap); the run
    function is called once per window with its ``window`` and ``ij``, and the
    results are laid side by side.  Windows come from the chunk index
    (``block_id``) and the window grid's offsets.  Windows given by the user
    (kept as given, with their ``ij``) arrive as one extra, object-typed
    block per chunk, so a task's graph never holds the whole window list.
    """

    def __init__(self, spec: RunSpec, row_chunks, col_chunks, given_windows: bool,
                 row_groups=None, col_groups=None, layouts=None):
        self.spec = spec
        # per input: None, or (time, bands) of a series, carried flat (time * bands)
        self.layouts = tuple(layouts or ())
        self.row_offsets = offsets(row_chunks)
        self.col_offsets = offsets(col_chunks)
        # window index where each group starts (and the end)
        self.row_groups = offsets(row_groups or (1,) * len(row_chunks))
        self.col_groups = offsets(col_groups or (1,) * len(col_chunks))
        self.given_windows = given_windows

    def __dask_tokenize__(self):
        return (tokenize(self.spec), self.row_offsets, self.col_offsets, self.row_groups,
                self.col_groups, self.given_windows, self.layouts)

    def __call__(self, *blocks, block_id=None):
        gi, gj = block_id[1:]
        given = None
        if self.given_windows:
            given = blocks[-1].item()
            blocks = blocks[:-1]
        rows = range(self.row_groups[gi], self.row_groups[gi + 1])
        cols = range(self.col_groups[gj], self.col_groups[gj + 1])
        top, left = self.row_offsets[rows[0]], self.col_offsets[cols[0]]
        reads = self.spec.reads_files
        results = []
        with gdal_options.env(self.spec.gdal_env):  # (once a task: its windows find it)
            for i in rows:
                for j in cols:
                    own = chunk_window(self.row_offsets, self.col_offsets, i, j)
                    height, width = int(own.height), int(own.width)
                    window, ij = given[i, j] if given is not None else (own, (i, j))
                    data = None
                    if not reads:
                        r0, c0 = self.row_offsets[i] - top, self.col_offsets[j] - left
                        data = [block[:, r0:r0 + height, c0:c0 + width] for block in blocks]
                        for n, layout in enumerate(self.layouts):
                            if layout is not None:  # a series: (time, band, rows, cols)
                                data[n] = data[n].reshape((*layout, height, width))
                    results.append(self.spec.run(window, ij, height, width, blocks=data))
        if len(results) == 1:
            return results[0]
        return _side_by_side(results, len(rows), len(cols))


def _side_by_side(results: list, rows: int, cols: int) -> np.ndarray:
    """One array of ``rows`` x ``cols`` window results, row by row (masked when
    any is)."""
    grid = [results[r * cols:(r + 1) * cols] for r in range(rows)]
    if any(isinstance(result, np.ma.MaskedArray) for result in results):
        data = np.block([[np.ma.getdata(x) for x in row] for row in grid])
        mask = np.block([[np.ma.getmaskarray(x) for x in row] for row in grid])
        return np.ma.MaskedArray(data, mask=mask, fill_value=np.zeros((), data.dtype))
    return np.block(grid)


@dataclass
class Job:
    """What :func:`prepare` makes of the arguments: the inputs, the grid they are
    read onto, the source reading each file input, and the run spec."""

    inputs: list[Input]
    grid: Grid | None  # None: a first input without georeferencing (a plain array)
    sources: list[Source | None]  # per input; None for arrays, read as they are
    spec: RunSpec
    block_shape: tuple[int, int]  # what the default windows follow


def _overlap_source(current: Input, position: int, grid, resampling, masked) -> Source:
    """The source an overlap reads an input's neighbourhoods from: its files."""
    if current.is_files:
        return Source(current.infos, grid if grid is not None else current.grid,
                      resampling, masked, current.label)
    sources = raster_sources(current.array)
    if current.array.name.startswith(NAME) and len(sources) == 1:  # open_raster's, as it is
        return Source(sources[0].infos, grid if grid is not None else current.grid,
                      resampling, masked or sources[0].masked, current.label)
    raise OverlapError(
        f"input {position} is an array that is not read straight from a file: overlap "
        "reads each window's neighbourhood from the inputs' files, so give paths or "
        "open_raster arrays (for other arrays, use dask's map_overlap)"
    )


def prepare(run_function: RunFunction, inputs: Any, *, mode: str = "simple_read",
            global_args: Any = None, count: int | None = None, dtype: Any = None,
            grid: Any = None, resampling: Any = None, masked: bool = False,
            overlap: Any = 0, boundary: Any = "nodata", strict_dtype: bool | None = None) -> Job:
    """Check the arguments of a job and make its inputs, grid, sources and spec:
    the one builder :func:`map_windows` and the ``RioMucho`` shim share.

    Raises what :func:`map_windows` raises before computing anything.
    """
    check_mode(mode)
    if not callable(run_function):
        raise InputError(f"run_function must be callable, not {type(run_function).__name__}")
    overlap, boundary = check_overlap_args(overlap, boundary, mode)
    inputs = resolve_inputs(inputs, mode)
    series = [current for current in inputs if current.series is not None]
    if series and grid is None:
        raise InputError(
            f"{series[0].label} needs grid=: the grid a series is read onto (a "
            "riomucho_dask.Grid such as Grid.from_bounds(bounds, crs, resolution), a raster "
            "path, 'union' or 'intersection')")
    if series and overlap != (0, 0):
        raise OverlapError(
            f"{series[0].label}: overlap reads each window's neighbourhood from one file or "
            "mosaic per input; it does not take a series")
    if isinstance(resampling, (list, tuple)):
        if len(resampling) != len(inputs):
            raise InputError(f"resampling has {len(resampling)} items for {len(inputs)} "
                             "inputs: give one, or one per input")
        resamplings = [resampling_of(r, f"resampling[{n}]") for n, r in enumerate(resampling)]
    else:
        resamplings = [resampling_of(resampling)] * len(inputs)
    given_grid = resolve_grid(grid, inputs)
    if mode != "manual_read" or given_grid is not None:
        check_alignment(inputs, given_grid)
    out_grid = given_grid if given_grid is not None else inputs[0].grid
    block_shape, own_width = inputs[0].block_shape, inputs[0].shape[-1]
    if isinstance(grid, (str, os.PathLike)) and grid not in GRID_NAMES:
        info = raster_info(grid)  # the grid raster's windows
        block_shape, own_width = info.block_shape, info.width
    elif inputs[0].series is not None or isinstance(grid, Grid):
        block_shape, own_width = SERIES_WINDOW, None  # a grid that comes from no file
    if inputs[0].is_files and own_width is not None and block_shape[1] >= own_width \
            and out_grid is not None:
        block_shape = (block_shape[0], out_grid.width)  # strips: whole rows of the grid

    sources: list[Source | None] = []
    for position, current in enumerate(inputs):
        if overlap != (0, 0):
            sources.append(_overlap_source(current, position, out_grid, resamplings[position],
                                           masked))
        elif current.series is not None:
            sources.append(current.series.source(out_grid, resampling=resamplings[position],
                                                 masked=masked, label=current.label))
        elif current.is_files:
            # manual_read without a grid opens each file as it is
            on = current.grid if given_grid is None else out_grid
            sources.append(Source(current.infos, on, resamplings[position], masked,
                                  current.label))
        else:
            sources.append(None)
    if overlap != (0, 0):
        check_inputs_fit(boundary, inputs)

    first = inputs[0]
    if strict_dtype is None:
        strict_dtype = dtype is None
    if count is None:
        count = first.shape[0]
    dtype = np.dtype(first.dtype if dtype is None else dtype)
    count = int(count)
    if count < 1:
        raise InputError(f"count must be at least 1, not {count}")
    reads_files = mode == "manual_read" or overlap != (0, 0)
    spec = RunSpec(run_function, mode, sources if reads_files else [],
                   {} if global_args is None else global_args, count, dtype, strict_dtype,
                   overlap=overlap, boundary=boundary)
    return Job(inputs, out_grid, sources, spec, block_shape)


def _plain(lookup: dict, row_chunks, col_chunks) -> bool:
    """True when every given window is the chunk's own Window and ij its index."""
    rows, cols = offsets(row_chunks), offsets(col_chunks)
    for (i, j), (window, ij) in lookup.items():
        own = chunk_window(rows, cols, i, j)
        if not isinstance(window, Window) or window != own or tuple(ij) != (i, j):
            return False
    return True


def _given_windows_array(lookup: dict, row_groups, col_groups) -> da.Array:
    """A (1, R, C)-block object array holding, for each group of windows, the
    ``{(i, j): (window, ij)}`` of its windows as given."""
    name = "given-windows-" + tokenize(sorted(lookup.items(), key=lambda kv: kv[0]),
                                       row_groups, col_groups)
    rows, cols = offsets(row_groups), offsets(col_groups)
    graph = {}
    for gi in range(len(row_groups)):
        for gj in range(len(col_groups)):
            cell = np.empty((1, 1, 1), dtype=object)
            cell[0, 0, 0] = {(i, j): lookup[i, j] for i in range(rows[gi], rows[gi + 1])
                             for j in range(cols[gj], cols[gj + 1])}
            graph[(name, 0, gi, gj)] = cell
    chunks = ((1,), (1,) * len(row_groups), (1,) * len(col_groups))
    return da.Array(graph, name, chunks, dtype=object, meta=np.empty((0, 0, 0), dtype=object))


def task_groups(row_chunks, col_chunks, count: int, dtype,
                read_per_pixel: int = 0) -> tuple[tuple, tuple]:
    """Windows per task along rows and columns, for an output of ``count``
    bands of ``dtype`` from inputs of ``read_per_pixel`` bytes a pixel (every
    band of every input, every date of a series): tasks of about
    ``riomucho_dask.task-bytes`` of output or of input, whichever is more, and
    at least 8 tasks when there are as many windows."""
    per_pixel = max(1, count * np.dtype(dtype).itemsize, read_per_pixel)
    total = sum(row_chunks) * sum(col_chunks) * per_pixel
    target = min(int(config.get("task-bytes")), total // 8)
    if target <= 0:
        return (1,) * len(row_chunks), (1,) * len(col_chunks)
    return window_groups(row_chunks, col_chunks, target // per_pixel)


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
    grid: Any = None,
    resampling: Any = None,
    masked: bool = False,
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
    inputs : sequence of path, list of paths, Series, dask.array.Array or xarray.DataArray
        Input rasters: paths; a list or tuple of paths, which is one input,
        the mosaic of those files (the first valid pixel wins, as
        ``rasterio.merge``); a :class:`~riomucho_dask.Series` (dated sources,
        e.g. :func:`~riomucho_dask.stac_series`; needs ``grid``), whose ``data``
        is ``(time, band, rows, cols)`` per window (``array_read`` stacks its
        layers time-major; not with ``manual_read`` or ``overlap``); or (for
        the two reading modes) dask arrays (from
        :func:`open_raster` or any other) and rioxarray DataArrays (``(band,
        y, x)`` or ``(y, x)``).  Without ``grid``, they must line up: same
        height and width, and, where known, same CRS and transform.
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
        the grid.  Default: the block windows of the first input (its chunks,
        when it is a dask array; the grid raster's blocks with ``grid=`` a
        path; 512 x 512 on a grid that comes from no file: a ``Grid``, or a
        series first); the strips of a striped input are grouped, whole, into
        windows of at least 256 rows.  For window sets with gaps or overlaps use
        :class:`RioMucho`.
    overlap : int or (int, int), optional
        Pixels of neighbourhood (rows, cols; an int for both): the run
        function's data covers each window grown by this many pixels on each
        side, read from the inputs' files in one read per input (so inputs
        are paths, mosaics or :func:`open_raster` arrays).  ``window`` and
        ``ij`` stay the core window's.  The run function returns the core
        shape or the padded one, which is trimmed.  Not with ``manual_read``.
    boundary : {"nodata", "reflect", "edge"} or number, optional
        What the data holds outside the raster, as ``np.pad`` would pad the
        whole raster: the input's nodata (0 when it has none; the default),
        ``np.pad``'s ``"reflect"`` or ``"edge"`` modes, or a constant.
        Pixels inside the raster always come from the file.
    grid : None, "first", "union", "intersection", path, DataArray or Grid, optional
        The grid (CRS, transform, size) every input is read onto.  ``None``
        (default): the inputs must already line up.  ``"first"``: the first
        input's; a raster path or a georeferenced DataArray: theirs;
        ``"union"`` / ``"intersection"``: covering the union / intersection of
        the inputs' footprints, in the first input's CRS and pixels; a
        :class:`~riomucho_dask.Grid` (``Grid.from_bounds(bounds, crs,
        resolution)`` makes one from a CRS: a CRS alone is not a grid).  Files
        already on the grid's pixels are read as they are (a plain windowed
        read); others through GDAL's warper (a ``WarpedVRT`` onto the grid).
        Grid pixels outside an input hold its nodata (0 without one; masked
        with ``masked=True``).  Arrays are not resampled: they must be on the
        grid.
    resampling : str, rasterio.enums.Resampling, or a list of them, optional
        How files not on the grid's pixels are resampled (one for all, or one
        per input); default ``"nearest"``.
    masked : bool, optional
        ``simple_read`` and ``array_read`` data are numpy masked arrays, masked
        as ``dataset.read(masked=True)`` masks (nodata, internal masks, alpha)
        and outside the inputs' footprints.  Default False (rio-mucho's
        plain arrays).  A masked result is written with nodata where the
        output has one, else an internal mask.

    Returns
    -------
    dask.array.Array
        ``(count, rows, cols)``, one chunk per window.  Nothing has been read.
        It knows its grid: ``to_raster`` needs no ``like=``.

    Raises
    ------
    ModeError, OverlapError, InputError, InputNotFoundError, InputMismatchError, WindowGridError
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

    Inputs on other grids are read onto one:

    >>> from affine import Affine
    >>> from riomucho_dask import Grid
    >>> fine = Grid("EPSG:32631", Affine(5, 0, 500000, 0, -5, 4200000), width=262, height=194)
    >>> map_windows(ndvi, ["scene_a.tif", "scene_b.tif"], grid=fine, resampling="bilinear",
    ...             count=1, dtype="float32").shape
    (1, 194, 262)
    """
    job = prepare(run_function, inputs, mode=mode, global_args=global_args, count=count,
                  dtype=dtype, grid=grid, resampling=resampling, masked=masked,
                  overlap=overlap, boundary=boundary)
    first = job.inputs[0]
    height, width = first.shape[-2:] if job.grid is None else job.grid.shape
    lookup = None
    if windows is not None:
        try:
            row_chunks, col_chunks, lookup = grid_from_windows(list(windows), height, width)
        except WindowGridError as err:
            raise WindowGridError(
                f"{err}; map_windows needs windows that tile the raster as a grid: for "
                "subsets, gaps or overlaps use riomucho_dask.RioMucho"
            ) from err
    elif not first.is_files:
        row_chunks, col_chunks = first.array.chunks[-2:]
    else:
        row_chunks, col_chunks = window_chunks(height, width, job.block_shape)

    spec = job.spec
    count, dtype = spec.count, spec.dtype
    # Several windows a task, when every input is read from files (the chunks
    # of array inputs are their windows, as they are).
    if spec.reads_files or all(source is not None for source in job.sources):
        read = sum(int(np.prod(source.shape[:-2])) * source.dtype.itemsize
                   if isinstance(source, SeriesSource) else source.count * source.dtype.itemsize
                   for source in job.sources if source is not None)
        row_groups, col_groups = task_groups(row_chunks, col_chunks, count, dtype, read)
    else:
        row_groups, col_groups = (1,) * len(row_chunks), (1,) * len(col_chunks)
    task_rows, task_cols = group_sizes(row_chunks, row_groups), group_sizes(col_chunks,
                                                                           col_groups)
    arrays, layouts = [], []
    if spec.reads_files:  # each window reads (or opens) the files itself
        if job.grid is not None:
            arrays.append(grid_tag(job.grid, task_rows, task_cols))
    else:
        for current, source in zip(job.inputs, job.sources):
            layouts.append(source.shape[:2] if isinstance(source, SeriesSource) else None)
            if isinstance(source, SeriesSource):  # carried flat: (time * band, rows, cols)
                arrays.append(series_array(source, task_rows, task_cols, flat=True))
                continue
            if source is not None:  # one read of each task's extent
                arrays.append(raster_array(source, task_rows, task_cols))
                continue
            item = current.array
            if item.chunks[1:] != (row_chunks, col_chunks) or len(item.chunks[0]) != 1:
                item = item.rechunk({0: -1, 1: row_chunks, 2: col_chunks})
            arrays.append(item)

    given = lookup is not None and not _plain(lookup, row_chunks, col_chunks)
    if given:
        arrays.append(_given_windows_array(lookup, row_groups, col_groups))
    runner = WindowRunner(spec, row_chunks, col_chunks, given, row_groups, col_groups,
                          layouts)
    return da.map_blocks(
        runner,
        *arrays,
        chunks=((count,), task_rows, task_cols),
        dtype=dtype,
        # (masked reads give masked results, as a rule: the array says so, and a COG
        # uploaded from a cluster's workers knows it may need an internal mask)
        meta=(np.ma.empty if masked else np.empty)((0, 0, 0), dtype=dtype),
        name="map_windows-" + tokenize(runner, *[a.name for a in arrays], row_chunks, col_chunks),
    )
