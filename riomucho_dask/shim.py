"""``RioMucho``: rio-mucho 1.0.0's API, as a thin adapter over the lazy pipeline.

``import riomucho_dask as riomucho`` makes rio-mucho programs run unchanged.
``RioMucho.run`` builds the same pipeline as :func:`map_windows` +
:func:`to_raster`; windows that do not form a grid (subsets, gaps,
overlaps) become one task per window, written through the same store.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback
from contextlib import nullcontext
from functools import wraps

import dask
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from rasterio.io import DatasetWriter
from rasterio.transform import guard_transform

from . import config, gdal_options, utils
from .errors import (
    ProfileError,
    RioMuchoDaskError,
    RunFunctionError,
    WindowError,
    WindowGridError,
)
from .execute import engine, schedulers
from .map import map_windows, prepare
from .map.contract import RunSpec, check_mode
from .map.overlap import check as check_overlap_args
from .windows import as_window, grid_from_windows
from .write import RasterStore, to_raster
from .write.spec.metadata import METADATA_KEYS, output_metadata
from .write.spec.profile import output_driver

__all__ = ["RioMucho", "MuchoChildError", "tb_capture"]


class MuchoChildError(RioMuchoDaskError):
    """An exception raised by the run function, wherever it ran.

    ``str()`` holds the run function's formatted traceback and
    ``.exception`` the original exception, as in rio-mucho.  Created inside
    an ``except`` block with no arguments, it wraps the exception being
    handled (rio-mucho's behaviour).
    """

    def __init__(self, exception: BaseException | None = None, formatted: str | None = None):
        if exception is None:
            exc_type, exc_value, exc_tb = sys.exc_info()
            exception = exc_value
            formatted = "".join(traceback.format_exception(exc_type, exc_value, exc_tb))
        super().__init__()
        self.exception = exception
        self.formatted = formatted or ""

    def __str__(self) -> str:
        return f"{Exception.__str__(self)}\nChild process's traceback:\n{self.formatted}"

    def __reduce__(self):
        return (MuchoChildError, (self.exception, self.formatted))


def tb_capture(func):
    """Decorator: re-raise any exception from ``func`` as :class:`MuchoChildError`."""

    @wraps(func)
    def wrapper(*args, **kwds):
        try:
            return func(*args, **kwds)
        except Exception:
            raise MuchoChildError() from None

    return wrapper


class _WindowTask:
    """Consecutive windows of a window list that is not a grid: for each, read,
    run, check; the results in order."""

    def __init__(self, spec: RunSpec):
        self.spec = spec

    def __call__(self, windows) -> list:
        results = []
        with gdal_options.env(self.spec.gdal_env):  # (once a task, as WindowRunner's)
            for window, ij in windows:
                w = as_window(window)
                results.append(self.spec.run(window, ij, int(w.height), int(w.width)))
        return results


def _window_runs(windows, count: int, dtype) -> list[list]:
    """``windows`` cut into runs of consecutive windows of about
    ``riomucho_dask.task-bytes`` of output each (and at least 8 runs when
    there are as many windows)."""
    per_pixel = count * np.dtype(dtype).itemsize
    sizes = [per_pixel * int(as_window(w).height) * int(as_window(w).width) for w, _ in windows]
    target = min(int(config.get("task-bytes")), sum(sizes) // 8)
    runs, current, held = [], [], 0
    for item, size in zip(windows, sizes):
        if current and held + size > target:
            runs.append(current)
            current, held = [], 0
        current.append(item)
        held += size
    return runs + ([current] if current else [])


def _windows_write(store, task: _WindowTask, windows, count: int, dtype) -> engine.Write:
    """The write of ``task`` over each run of consecutive windows, as given: one
    task a run, its results placed window by window."""
    name = "riomucho-window-" + tokenize(task.spec, windows)
    run = dask.delayed(task, pure=True)
    graph, keys, places = {}, [], []
    for n, group in enumerate(_window_runs(windows, count, dtype)):
        block = run(list(group), dask_key_name=(name, n))
        graph.update(block.__dask_graph__())
        keys.append(block.key)
        places.append([as_window(w) for w, _ in group])
    return engine.Write(store, HighLevelGraph.from_collections(name, graph, dependencies=()),
                        tuple(keys), tuple(places))


#: What the default options keep of a first input that is not a GeoTIFF.
_DATASET_KEYS = ("count", "dtype", "width", "height", "crs", "transform", "nodata")


def _default_options(first: str, target) -> dict:
    """rio-mucho's default output options, the first input's profile, with the
    output's own driver (from its extension, else GTiff): a VRT or an ``.img``
    first input does not make the output a VRT (which cannot be written) or an
    HFA file, and only a GeoTIFF brings its layout."""
    profile = dict(utils.getOptions(first))
    if str(profile.get("driver", "")).upper() != "GTIFF":
        profile = {key: profile[key] for key in _DATASET_KEYS if key in profile}
    if not isinstance(target, DatasetWriter):
        try:
            profile["driver"] = output_driver(target, {})
        except ProfileError:  # an extension not written by itself (.png): as rio-mucho did
            profile["driver"] = "GTiff"
    return profile


class RioMucho:
    """Maps a raster processing function over windows, rio-mucho style.

    Parameters
    ----------
    inpaths : list of str
        Input raster paths.
    outpath_or_dataset : str or rasterio dataset opened in "w" mode
        Output path, or an open dataset to write into (closed at the end of
        ``run``, as rio-mucho does).
    run_function : callable
        ``run_function(data, window, ij, global_args)`` returning
        ``(count, window.height, window.width)``.
    mode : {"simple_read", "array_read", "manual_read"}, optional
        Checked here: anything else raises ``ValueError``.
    windows : list of (window, ij), optional
        Default: the block windows of the first input.  Windows may be
        ``Window`` objects or ``((row_start, row_stop), (col_start, col_stop))``
        and are passed to the run function exactly as given; they need not
        form a grid.
    options : dict, optional
        The output's creation profile; default: the first input's profile,
        with the output's driver (from its extension, else GTiff) and, when
        the first input is not a GeoTIFF, only its georeferencing, size,
        count and dtype.  The caller's dict is not modified.  Not in
        rio-mucho: it may also hold the output's metadata, as
        :func:`~riomucho_dask.to_raster` takes it (``descriptions``,
        ``tags``, ``band_tags``, ``units``, ``scales``, ``offsets``,
        ``colormap``), and ``stats=True`` for the band statistics (windows
        that form a grid).
    global_args : object, optional
        Passed to every call (default ``{}``).
    kwargs : dict, optional
        Another name for ``options`` (the one rio-mucho's README uses).
    overlap : int or (int, int), optional
        Not in rio-mucho: each window's data grown by this many pixels, as in
        :func:`~riomucho_dask.map_windows` (``simple_read`` and ``array_read``).
    boundary : {"nodata", "reflect", "edge"} or number, optional
        Not in rio-mucho: what the data holds outside the raster (see
        :func:`~riomucho_dask.map_windows`).

    Examples
    --------
    >>> import riomucho_dask as riomucho
    >>> def halve(data, window, ij, global_args):
    ...     return data[0] // 2
    >>> with riomucho.RioMucho(["scene_a.tif"], "half.tif", halve) as rm:
    ...     rm.run(1)
    """

    def __init__(self, inpaths, outpath_or_dataset, run_function, mode="simple_read",
                 windows=None, options=None, global_args=None, kwargs=None, *,
                 overlap=0, boundary="nodata"):
        check_mode(mode)
        self.overlap, self.boundary = check_overlap_args(overlap, boundary, mode)
        self.inpaths = [os.fspath(p) for p in inpaths]
        self.outpath_or_dataset = outpath_or_dataset
        self.run_function = run_function
        self.mode = mode
        self.windows = windows or utils.getWindows(self.inpaths[0])
        if options is None:
            options = kwargs
        self.options = dict(options or _default_options(self.inpaths[0], outpath_or_dataset))
        self.global_args = global_args or {}

    def __enter__(self):
        return self

    def __exit__(self, ext_t, ext_v, trace):
        pass

    def run(self, processes: int = 4, *, progress: bool = False, resume: bool = False) -> None:
        """Run the function over every window and write the output.

        ``processes=1`` runs in this process, synchronously; ``processes=N``
        on N worker threads (numpy and GDAL release the GIL), or on N worker
        processes under ``dask.config.set(scheduler="processes")`` (for run
        functions that hold the GIL); when a ``dask.distributed.Client`` is
        active it is used whatever ``processes`` says.  Errors from the run
        function are raised as :class:`MuchoChildError`.  ``progress=True``
        (not in rio-mucho) draws blocks done / total, rate and ETA.
        ``resume=True`` (not in rio-mucho) makes the write resumable, as
        ``to_raster(..., resume=True)``: run again after an interruption, it
        computes only the windows not yet written (windows forming a grid, an
        output path, a tiled GeoTIFF or COG).
        """
        self._progress = progress
        self._resume = resume
        scheduler, num_workers = self._scheduler(processes)
        options = dict(self.options)
        # the output's metadata travels apart from the creation options
        self._metadata = {key: options.pop(key) for key in METADATA_KEYS if key in options}
        if options.pop("stats", False):  # (band statistics, as to_raster's stats=True)
            self._metadata["stats"] = True
        options["transform"] = guard_transform(options["transform"])
        count = int(options.get("count", 1))
        dtype = np.dtype(options.get("dtype", "uint8"))
        try:
            try:
                grid = grid_from_windows(list(self.windows), options["height"], options["width"])
            except WindowGridError:
                grid = None
            with dask.config.set(num_workers=num_workers) if num_workers else nullcontext():
                if grid is not None:
                    self._run_grid(scheduler, options, count, dtype)
                else:
                    self._run_windows(scheduler, options, count, dtype)
        except RunFunctionError as err:
            raise MuchoChildError(err.original, err.formatted_traceback) from err
        except WindowError as err:
            raise MuchoChildError(err, "".join(traceback.format_exception(err))) from err

    def _scheduler(self, processes: int):
        client = schedulers.active_client()
        if client is not None:
            return client, None
        configured = schedulers.configured()
        if configured is not None:  # the user chose, e.g. dask.config.set(scheduler="processes")
            return configured, int(processes)
        if processes == 1:
            return "sync", None
        # numpy, GDAL reads and compression release the GIL: threads run a
        # typical run function in parallel without pickling or start-up costs
        return "threads", int(processes)

    def _run_grid(self, scheduler, options, count, dtype) -> None:
        out = map_windows(
            self.run_function, self.inpaths, mode=self.mode, global_args=self.global_args,
            count=count, dtype=dtype, windows=self.windows, overlap=self.overlap,
            boundary=self.boundary,
        )
        self._write(out, options, scheduler)

    def _write(self, out, options, scheduler) -> None:
        target = self.outpath_or_dataset
        if isinstance(target, DatasetWriter):
            try:
                to_raster(out, target, scheduler=scheduler, progress=self._progress,
                          resume=self._resume, **self._metadata)
            finally:
                target.close()
        else:
            to_raster(out, target, options, scheduler=scheduler, progress=self._progress,
                      resume=self._resume, **self._metadata)

    def _run_windows(self, scheduler, options, count, dtype) -> None:
        if self._resume:
            raise ProfileError("resume=True needs windows that form a grid (these do not): "
                               "the tiles of a window must be written whole")
        if self._metadata.pop("stats", False):
            raise ProfileError("options['stats'] needs windows that form a grid (these do "
                               "not): the statistics of the output are those of its blocks")
        taken = [key for key in ("overviews", "overview_resampling")
                 if options.get(key) is not None
                 and str(options.get("driver", "GTiff")).upper() == "GTIFF"]
        if taken:
            raise ProfileError(f"options[{taken[0]!r}] needs windows that form a grid (these "
                               "do not): a GeoTIFF's overviews are made from its blocks")
        # One task a window, each reading its files itself: the spec of the same
        # job as map_windows, read as manual_read or an overlap reads.
        job = prepare(self.run_function, self.inpaths, mode=self.mode,
                      global_args=self.global_args, count=count, dtype=dtype,
                      overlap=self.overlap, boundary=self.boundary, strict_dtype=False)
        spec = dataclasses.replace(job.spec, sources=list(job.sources))
        target = self.outpath_or_dataset
        owns = not isinstance(target, DatasetWriter)
        profile = options if owns else dict(target.profile)
        metadata = None
        if self._metadata:
            driver = profile.get("driver") or output_driver(target, {})
            metadata = output_metadata(count, profile.get("dtype", dtype), str(driver),
                                       **self._metadata)
        store = RasterStore(target, profile, progress=self._progress, total=len(self.windows),
                            metadata=metadata)
        try:
            engine.run([_windows_write(store, _WindowTask(spec), list(self.windows), count,
                                       dtype)], scheduler)
        finally:
            if not owns:
                target.close()
