"""The run-function contract: reading modes, the call, and what it must return."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from dask.base import tokenize
from rasterio.windows import Window

from .. import gdal_options, timings
from ..errors import ModeError, OutputDtypeError, OutputShapeError, RunFunctionError
from ..read import Source, handles
from ..windows import as_window
from ..workers import setup_once
from .overlap import Boundary, read_padded, trim

__all__ = [
    "MODES", "Mode", "RunFunction", "RunSpec", "array_stack", "call_run_function", "check_mode",
]

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
    if any(isinstance(a, np.ma.MaskedArray) for a in arrays):  # (masked reads)
        return np.ma.concatenate([np.ma.asarray(a).reshape((-1,) + a.shape[-2:])
                                  for a in arrays], axis=0)
    return np.concatenate([np.asarray(a).reshape((-1,) + a.shape[-2:]) for a in arrays], axis=0)


def function_name(func: Any) -> str:
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
    overlap: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Call the run function on one window and check what it returns.

    ``expected`` is ``(count, height, width)``.  A 2-D result is taken as
    one band when ``count`` is 1, as rasterio's ``write`` does.  With an
    ``overlap`` of ``(rows, cols)``, a result of the padded shape
    ``(count, height + 2 * rows, width + 2 * cols)`` is trimmed to its core.
    """
    try:
        with timings.timed("run", windows=1):
            result = run_function(data, window, ij, global_args)
    except Exception as err:
        raise RunFunctionError(
            f"run function {function_name(run_function)!r} raised "
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
    count, height, width = expected
    padded = (count, height + 2 * overlap[0], width + 2 * overlap[1])
    if result.shape == padded and padded != expected:
        result = trim(result, overlap, height, width)
    if result.shape != expected:
        also = f" or the padded {padded}" if padded != expected else ""
        raise OutputShapeError(
            f"run function {function_name(run_function)!r} returned shape {result.shape} "
            f"for window {window!r} (ij={ij!r}); expected {expected} = "
            f"(count, window.height, window.width){also}",
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
                f"run function {function_name(run_function)!r} returned {result.dtype} for "
                f"window {window!r} (ij={ij!r}), which cannot be written as the default "
                f"{dtype} (the first input's dtype) without losing values: pass dtype=",
                window=window,
                ij=ij,
            )
        result = result.astype(dtype)
    return result


@dataclass
class RunSpec:
    """The run function and how to call it: what travels with every task.

    ``sources`` are the inputs a task reads itself (``manual_read``, or an
    overlap), each on the job's grid.  ``gdal_env`` holds the ``rasterio.Env``
    options active when the graph was built, re-entered wherever the task
    runs.  Its token (``__dask_tokenize__``) is the job's identity: the run
    function, its arguments, and what is read (paths, file versions, grid,
    resampling, masks, GDAL options).
    """

    run_function: RunFunction
    mode: str
    sources: list[Source]
    global_args: Any
    count: int
    dtype: np.dtype
    strict_dtype: bool
    overlap: tuple[int, int] = (0, 0)
    boundary: Boundary = "nodata"
    gdal_env: gdal_options.GDALOptions = field(default_factory=gdal_options.captured_env)

    def __post_init__(self):
        self.dtype = np.dtype(self.dtype)

    def __dask_tokenize__(self):
        return (
            "RunSpec", tokenize(self.run_function), self.mode, tokenize(*self.sources),
            tokenize(self.global_args), self.count, str(self.dtype), self.strict_dtype,
            self.overlap, self.boundary,
            tokenize(self.gdal_env.options),  # GDAL options may change what is read
        )

    @property
    def reads_files(self) -> bool:
        """Whether each window's data is read from the input paths in the task
        (manual_read, or an overlap), rather than given as blocks."""
        return self.mode == "manual_read" or self.overlap != (0, 0)

    def data(self, window: Window, blocks: Sequence[np.ndarray] | None) -> Any:
        """The run function's ``data``: from ``blocks`` already read (the two
        reading modes), else read from the sources at ``window``."""
        if self.mode == "manual_read":
            return [source.dataset() for source in self.sources]
        if blocks is None:  # one read per input, grown by the overlap
            blocks = [read_padded(source, window, self.overlap, self.boundary)
                      for source in self.sources]
        return array_stack(blocks) if self.mode == "array_read" else list(blocks)

    def run(self, window, ij, height: int, width: int,
            blocks: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """Build the data, call the run function in the captured GDAL options,
        and check its result; ``window`` and ``ij`` are passed as given."""
        setup_once()
        with gdal_options.env(self.gdal_env), handles.pinned():  # (datasets handed out)
            data = self.data(as_window(window), blocks)
            return call_run_function(
                self.run_function, data, window, ij, self.global_args,
                expected=(self.count, height, width), dtype=self.dtype,
                strict_dtype=self.strict_dtype, overlap=self.overlap,
            )
