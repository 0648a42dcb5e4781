"""map_windows: a run function over the windows of one or more rasters."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any, Literal

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

from . import _handles
from .errors import (
    InputError,
    InputMismatchError,
    ModeError,
    OutputDtypeError,
    OutputShapeError,
    RunFunctionError,
    WindowGridError,
)
from .io import _RASTERS, RasterInfo, _as_dask, raster_info
from .windows import block_chunks, grid_from_windows

__all__ = ["map_windows", "MODES", "Mode"]

Mode = Literal["simple_read", "array_read", "manual_read"]
MODES: tuple[str, ...] = ("simple_read", "array_read", "manual_read")

RunFunction = Callable[[Any, Window, Any, Any], Any]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ModeError(f"mode must be one of {list(MODES)}, not {mode!r}")
    return mode


def array_stack(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Stack every band of every array, in order, into one array.

    Raises
    ------
    ValueError
        When the arrays' heights and widths differ.

    Examples
    --------
    >>> array_stack([np.zeros((2, 3, 4)), np.ones((1, 3, 4))]).shape
    (3, 3, 4)
    """
    shapes = {tuple(a.shape[-2:]) for a in arrays}
    if len(shapes) > 1:
        raise ValueError("All input arrays must have the same height and width for this mode")
    return np.concatenate([np.asarray(a).reshape((-1,) + a.shape[-2:]) for a in arrays], axis=0)


def _function_name(func: Any) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def call_run_function(
    run_function: RunFunction,
    data: Any,
    window: Any,
    ij: Any,
    global_args: Any,
    *,
    expected: tuple[int, int, int],
    dtype: np.dtype,
    strict_dtype: bool,
) -> np.ndarray:
    """Call the run function on one window and check what it returns.

    ``expected`` is ``(count, height, width)``.  A 2-D result is taken as
    one band when ``count`` is 1, as rasterio's ``write`` does.
    """
    try:
        result = run_function(data, window, ij, global_args)
    except Exception as err:
        raise RunFunctionError(
            f"run function {_function_name(run_function)!r} raised "
            f"{type(err).__name__}: {err} in window {window!r} (ij={ij!r})",
            window=window,
            ij=ij,
            original=err,
            formatted_traceback="".join(traceback.format_exception(err)),
        ) from err
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and hasattr(result[0], "shape")
        and isinstance(result[1], (str, type, np.dtype))
    ):
        # rio-mucho's contract says "returns the array and the dtype"; some
        # functions do return (array, dtype): take the array.
        result = result[0]
    result = np.asanyarray(result)
    if result.ndim == 2 and expected[0] == 1:
        result = result[np.newaxis]
    if result.shape != expected:
        raise OutputShapeError(
            f"run function {_function_name(run_function)!r} returned shape {result.shape} "
            f"for window {window!r} (ij={ij!r}); expected {expected} = "
            "(count, window.height, window.width)",
            window=window,
            ij=ij,
        )
    if isinstance(result, np.ma.MaskedArray):
        # A full mask and a fill value that fits the dtype: numpy's default
        # (999999) does not fit small integers, which breaks dask.distributed's
        # transport of masked arrays.
        result = np.ma.MaskedArray(result.data, mask=np.ma.getmaskarray(result),
                                   fill_value=np.zeros((), dtype=result.dtype))
    if result.dtype != dtype:
        if strict_dtype and not np.can_cast(result.dtype, dtype, casting="same_kind"):
            raise OutputDtypeError(
                f"run function {_function_name(run_function)!r} returned {result.dtype} for "
                f"window {window!r} (ij={ij!r}), which cannot be written as the default "
                f"{dtype} (the first input's dtype) without losing values: pass dtype=",
                window=window,
                ij=ij,
            )
        result = result.astype(dtype)
    return result


class RunSpec:
    """The run function and how to call it; shared by every window's task.

    Captures the active ``rasterio.Env`` options (see ``_handles``) so tasks
    re-enter them wherever they run.
    """

    def __init__(self, run_function, mode, paths, global_args, count, dtype, strict_dtype):
        self.run_function = run_function
        self.mode = mode
        self.paths = paths
        self.global_args = global_args
        self.count = count
        self.dtype = np.dtype(dtype)
        self.strict_dtype = strict_dtype
        self.gdal_env = _handles.captured_env()

    def datasets(self) -> list:
        return [_handles.get_dataset(path) for path in self.paths]

    def run(self, data, window, ij, height: int, width: int) -> np.ndarray:
        return call_run_function(
            self.run_function, data, window, ij, self.global_args,
            expected=(self.count, height, width), dtype=self.dtype,
            strict_dtype=self.strict_dtype,
        )


class _WindowRunner(RunSpec):
    """The per-chunk task: builds the run function's data, window and ij.

    The window comes from the chunk index (``block_id``) and the grid's
    offsets.  Windows given by the user (kept as given, with their ``ij``)
    arrive as one extra, object-typed block per chunk, so a task's graph
    never holds the whole window list.
    """

    def __init__(self, run_function, mode, paths, global_args, count, dtype, strict_dtype,
                 row_chunks, col_chunks, given_windows):
        super().__init__(run_function, mode, paths, global_args, count, dtype, strict_dtype)
        self.row_offsets = _offsets(row_chunks)
        self.col_offsets = _offsets(col_chunks)
        self.given_windows = given_windows

    def __dask_tokenize__(self):
        return (
            tokenize(self.run_function),
            self.mode,
            self.paths,
            tokenize(self.global_args),
            self.count,
            str(self.dtype),
            self.strict_dtype,
            self.row_offsets,
            self.col_offsets,
            self.given_windows,
        )

    def __call__(self, *blocks, block_id=None):
        with _handles.env(self.gdal_env):
            return self._call(blocks, block_id)

    def _call(self, blocks, block_id):
        i, j = block_id[1:]
        row_start, row_stop = self.row_offsets[i], self.row_offsets[i + 1]
        col_start, col_stop = self.col_offsets[j], self.col_offsets[j + 1]
        if self.given_windows:
            window, ij = blocks[-1].item()
            blocks = blocks[:-1]
        else:
            window = Window(col_start, row_start, col_stop - col_start, row_stop - row_start)
            ij = (i, j)
        if self.mode == "manual_read":
            data = self.datasets()
        elif self.mode == "array_read":
            data = array_stack(blocks)
        else:
            data = list(blocks)
        return self.run(data, window, ij, row_stop - row_start, col_stop - col_start)


def _offsets(sizes) -> tuple[int, ...]:
    return (0, *accumulate(sizes))


def _plain(lookup: dict, row_chunks, col_chunks) -> bool:
    """True when every given window is the chunk's own Window and ij its index."""
    rows, cols = _offsets(row_chunks), _offsets(col_chunks)
    for (i, j), (window, ij) in lookup.items():
        own = Window(cols[j], rows[i], cols[j + 1] - cols[j], rows[i + 1] - rows[i])
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


def resolve_inputs(inputs: Any, mode: str) -> tuple[list[Any], list[RasterInfo | None]]:
    """Inputs as a list of paths (str) and dask arrays, with what is known of each."""
    if isinstance(inputs, (str, os.PathLike, da.Array)):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise InputError("no inputs given")
    resolved, infos = [], []
    for position, item in enumerate(inputs):
        if isinstance(item, (str, os.PathLike)):
            info = raster_info(item)
            resolved.append(info.path)
            infos.append(info)
        elif isinstance(item, da.Array):
            if mode == "manual_read":
                raise InputError(
                    f"input {position} is a dask array: manual_read needs paths to open"
                )
            if item.ndim not in (2, 3):
                raise InputError(
                    f"input {position} has shape {item.shape}: expected (bands, rows, cols)"
                )
            resolved.append(item if item.ndim == 3 else item[np.newaxis])
            infos.append(_RASTERS.get(item.name))
        else:
            raise InputError(
                f"input {position} is a {type(item).__name__}: expected a path or a dask array"
            )
    return resolved, infos


def _label(item: Any, position: int) -> str:
    return repr(item) if isinstance(item, str) else f"input {position} (dask array)"


def check_alignment(inputs: list[Any], infos: list[RasterInfo | None]) -> None:
    """Raise InputMismatchError when inputs differ in size, transform or CRS."""
    first_shape = inputs[0].shape[-2:] if infos[0] is None else (infos[0].height, infos[0].width)
    first_label = _label(inputs[0], 0)
    for position in range(1, len(inputs)):
        item, info = inputs[position], infos[position]
        label = _label(item, position)
        shape = item.shape[-2:] if info is None else (info.height, info.width)
        if tuple(shape) != tuple(first_shape):
            raise InputMismatchError(
                f"input {label} is {shape[0]} x {shape[1]} (height x width) but "
                f"{first_label} is {first_shape[0]} x {first_shape[1]}"
            )
        if info is None or infos[0] is None:
            continue
        if info.crs != infos[0].crs:
            raise InputMismatchError(
                f"input {label} has CRS {info.crs} but {first_label} has {infos[0].crs}"
            )
        if not info.transform.almost_equals(infos[0].transform):
            raise InputMismatchError(
                f"input {label} has transform {tuple(info.transform)[:6]} but "
                f"{first_label} has {tuple(infos[0].transform)[:6]}"
            )


def map_windows(
    run_function: RunFunction,
    inputs: Any,
    *,
    mode: Mode = "simple_read",
    global_args: Any = None,
    count: int | None = None,
    dtype: Any = None,
    windows: Sequence[Any] | None = None,
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
    inputs : sequence of path or dask.array.Array
        Input rasters: paths, or (for the two reading modes) arrays from
        :func:`open_raster`.  Except in ``manual_read``, they must line up:
        same height and width, and, where known, same transform and CRS.
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

    Returns
    -------
    dask.array.Array
        ``(count, rows, cols)``, one chunk per window.  Nothing has been read.

    Raises
    ------
    ModeError, InputNotFoundError, InputMismatchError, WindowGridError
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
    """
    check_mode(mode)
    if not callable(run_function):
        raise InputError(f"run_function must be callable, not {type(run_function).__name__}")
    inputs, infos = resolve_inputs(inputs, mode)
    if mode != "manual_read":
        check_alignment(inputs, infos)

    first, first_info = inputs[0], infos[0]
    if first_info is None:
        height, width = first.shape[-2:]
    else:
        height, width = first_info.height, first_info.width
    lookup = None
    if windows is not None:
        try:
            row_chunks, col_chunks, lookup = grid_from_windows(list(windows), height, width)
        except WindowGridError as err:
            raise WindowGridError(
                f"{err}; map_windows needs windows that tile the raster as a grid: for "
                "subsets, gaps or overlaps use riomucho_dask.RioMucho"
            ) from err
    elif isinstance(first, da.Array):
        row_chunks, col_chunks = first.chunks[-2:]
    else:
        row_chunks, col_chunks = block_chunks(height, width, first_info.block_shape)

    arrays = []
    if mode != "manual_read":
        for item, info in zip(inputs, infos):
            if isinstance(item, da.Array):
                if item.chunks[1:] != (row_chunks, col_chunks) or len(item.chunks[0]) != 1:
                    item = item.rechunk({0: -1, 1: row_chunks, 2: col_chunks})
                arrays.append(item)
            else:
                arrays.append(_as_dask(info, row_chunks, col_chunks))

    strict_dtype = dtype is None
    if count is None:
        count = first.shape[0] if first_info is None else first_info.count
    if dtype is None:
        dtype = first.dtype if first_info is None else first_info.dtype
    dtype = np.dtype(dtype)
    count = int(count)
    if count < 1:
        raise InputError(f"count must be at least 1, not {count}")

    paths = [item for item in inputs if isinstance(item, str)]
    given = lookup is not None and not _plain(lookup, row_chunks, col_chunks)
    if given:
        arrays.append(_given_windows_array(lookup, row_chunks, col_chunks))
    runner = _WindowRunner(
        run_function, mode, paths, {} if global_args is None else global_args,
        count, dtype, strict_dtype, row_chunks, col_chunks, given,
    )
    return da.map_blocks(
        runner,
        *arrays,
        chunks=((count,), row_chunks, col_chunks),
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype=dtype),
        name="map_windows-" + tokenize(runner, *[a.name for a in arrays], row_chunks, col_chunks),
    )
