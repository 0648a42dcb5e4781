"""Writing: the store target and ``to_raster``.

Every write goes through one :class:`RasterStore`, which owns one open
rasterio dataset and a lock around it: one writer at a time whatever the
scheduler.  A new output is written to a hidden temporary file beside the
target path and moved into place only when every window is in.
"""

from __future__ import annotations

import os
import tempfile
import threading
import weakref
from typing import Any

import dask
import dask.array as da
import numpy as np
import rasterio
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from . import _handles, _schedulers, cog
from .errors import OutputPathError, ProfileError, StoreClosedError
from .io import raster_info
from .progress import BlockProgress
from .windows import slices_to_window

__all__ = ["RasterStore", "to_raster", "build_profile"]

def _remove_all(paths: list[str]) -> None:
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


class RasterStore:
    """A dask store target writing each chunk as a window of one raster.

    ``store[bands, rows, cols] = block`` writes ``block`` at the window the
    row and column slices select, under the store's lock.  The dataset is
    opened at the first write.  :meth:`commit` closes it and moves the
    temporary file to ``path``; :meth:`abort` closes it and removes the
    temporary file.  Once either ran, writes raise
    :class:`~riomucho_dask.errors.StoreClosedError` (a write racing a failure
    on another thread must never reach a closed GDAL handle).

    Parameters
    ----------
    path : str or rasterio.io.DatasetWriter
        Output path, or an open dataset to write into (it is neither moved
        nor closed).
    profile : dict
        Creation profile (driver, size, count, dtype, CRS, transform...).
    lock : lock, optional
        Any object with ``acquire``/``release``; default ``threading.Lock()``.
    progress : bool, optional
        Draw a progress bar of blocks written, out of ``total``.
    total : int, optional
        Number of blocks expected, for the progress bar.
    """

    def __init__(self, path: str | DatasetWriter, profile: dict, *, lock: Any = None,
                 progress: bool = False, total: int = 0):
        if isinstance(path, DatasetWriter):
            self.path = path.name
            self._dataset: DatasetWriter | None = path
            self._owns = False
        else:
            self.path = os.fspath(path)
            self._dataset = None
            self._owns = True
        self.profile = profile
        if cog.is_cog(profile):
            self._write_profile, self._cog_options = cog.split_profile(profile)
        else:
            self._write_profile, self._cog_options = profile, None
        self._nodata = profile.get("nodata")
        self._mask_made = False
        self._unmasked: list[Window] = []
        self._lock = lock if lock is not None else threading.Lock()
        self._tmp: str | None = None
        self._temporaries: list[str] = []
        self._closed = False
        self.written = 0
        self._progress = (
            BlockProgress(total, label=os.path.basename(self.path)) if progress else None
        )
        self._cleanup = None
        self._gdal_env = _handles.captured_env()

    def __dask_tokenize__(self):
        # one token per store object: never pickled, never shared
        return ("RasterStore", self.path, id(self))

    # -- pickling: a store lives in the process that writes -----------------
    def __reduce__(self):
        from .errors import SchedulerError

        raise SchedulerError(
            "a RasterStore cannot be sent to another process: compute the result of "
            "to_raster(..., compute=False) on the threaded or synchronous scheduler, or use "
            "to_raster(..., compute=True), which streams blocks back from process and "
            "distributed workers and writes them here"
        )

    def _temporary(self) -> str:
        directory, name = os.path.split(os.path.abspath(self.path))
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        os.close(fd)
        self._temporaries.append(path)
        if self._cleanup is None:
            # Remove temporary files if the store is dropped without commit
            # (a compute=False graph that failed, an interrupted kernel).
            self._cleanup = weakref.finalize(self, _remove_all, self._temporaries)
        return path

    def _open(self) -> None:
        self._tmp = self._temporary()
        self._dataset = rasterio.open(self._tmp, "w", **self._write_profile)

    def _write(self, block: np.ndarray, window: Window) -> None:
        dataset = self._dataset
        if not isinstance(block, np.ma.MaskedArray):
            dataset.write(block, window=window)
            if self._mask_made:
                dataset.write_mask(np.full(block.shape[1:], 255, "uint8"), window=window)
            elif self._nodata is None:
                self._unmasked.append(window)
            return
        mask = np.ma.getmaskarray(block)
        if self._nodata is not None:
            # masked pixels become nodata
            dataset.write(block.filled(self._nodata), window=window)
            return
        # no nodata: masked pixels go to an internal per-dataset mask
        dataset.write(block.filled(0), window=window)
        if not self._mask_made:
            self._mask_made = True
            with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
                for earlier in self._unmasked:
                    shape = (int(earlier.height), int(earlier.width))
                    dataset.write_mask(np.full(shape, 255, "uint8"), window=earlier)
            self._unmasked = []
        valid = np.where(mask.any(axis=0), 0, 255).astype("uint8")
        dataset.write_mask(valid, window=window)

    def __setitem__(self, key: tuple[slice, ...], block: np.ndarray) -> None:
        rows, cols = key[-2:]
        self.write(block, slices_to_window(rows, cols))

    def write(self, block: np.ndarray, window: Window) -> None:
        """Write ``block`` (``(count, h, w)``) at ``window``, under the lock."""
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"{self.path!r} is closed; window {window!r} not written")
            with _handles.env(self._gdal_env):
                if self._dataset is None:
                    self._open()
                self._write(block, window)
            self.written += 1
        if self._progress is not None:
            self._progress.update()

    def commit(self) -> str:
        """Close the dataset and move the finished raster into place."""
        with self._lock:
            if self._closed:
                raise StoreClosedError(f"{self.path!r} was already closed")
            self._closed = True
            try:
                if self._owns:
                    self._finish()
            except BaseException:
                _remove_all(self._temporaries)
                raise
            finally:
                if self._cleanup is not None:
                    self._cleanup.detach()
                self._close_progress()
        return self.path

    def _finish(self) -> None:
        with _handles.env(self._gdal_env):
            if self._dataset is None:
                self._open()  # an empty array still makes a (blank) raster
            self._dataset.close()
            finished = self._tmp
            if self._cog_options is not None:
                if self._progress is not None:
                    self._progress.close(then="making the Cloud Optimized GeoTIFF (overviews)")
                finished = self._temporary()
                cog.finish(self._tmp, finished, self._cog_options)
        os.chmod(finished, 0o666 & ~_umask())
        os.replace(finished, self.path)
        _remove_all(self._temporaries)

    def abort(self) -> None:
        """Close the dataset and remove the temporary file; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owns:
                try:
                    if self._dataset is not None:
                        self._dataset.close()
                finally:
                    _remove_all(self._temporaries)
                    if self._cleanup is not None:
                        self._cleanup.detach()
            self._close_progress()

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _nodata_fits(nodata: Any, dtype: np.dtype) -> bool:
    if nodata is None:
        return True
    if np.isnan(nodata):
        return dtype.kind in "fc"
    if dtype.kind in "fc":
        return True
    info = np.iinfo(dtype)
    return float(nodata).is_integer() and info.min <= nodata <= info.max


def build_profile(array: da.Array, profile: dict | None, like: Any,
                  creation_options: dict) -> dict:
    """The output's creation profile.

    Start from ``like``'s profile, update with ``profile`` then the creation
    options.  Height, width and count come from the array; the dtype from the
    array unless ``profile``/creation options name one.
    """
    if profile is None and like is None:
        raise ProfileError(
            "to_raster needs georeferencing: pass like= (a raster to copy CRS, transform, "
            "nodata and layout from) or profile="
        )
    # GDAL option names are case-insensitive; rasterio's profiles are lowercase.
    explicit = {key.lower(): value for key, value in (profile or {}).items()}
    explicit.update((key.lower(), value) for key, value in creation_options.items())
    out: dict[str, Any] = {}
    if like is not None:
        out.update(raster_info(like).profile)
        if not any(key in explicit for key in ("dtype", "nodata")):
            out["nodata"] = out.get("nodata")
    out.update(explicit)
    count, height, width = array.shape
    for key, value in (("height", height), ("width", width), ("count", count)):
        if key in explicit and int(explicit[key]) != value:
            raise ProfileError(f"profile {key}={explicit[key]} but the array has {key} {value}")
        if like is not None and key in ("height", "width") and out.get(key) != value:
            raise ProfileError(
                f"the array is {height} x {width} but like={like!r} is "
                f"{out['height']} x {out['width']}: georeferencing would not match"
            )
        out[key] = value
    dtype = np.dtype(explicit.get("dtype", array.dtype))
    out["dtype"] = dtype.name
    out.setdefault("driver", "GTiff")
    nodata = out.get("nodata")
    if not _nodata_fits(nodata, dtype):
        if "nodata" in explicit:
            raise ProfileError(f"nodata {nodata!r} does not fit dtype {dtype}")
        out["nodata"] = None  # like's nodata cannot be stored in the new dtype
    if out.get("nodata") is None:
        out.pop("nodata", None)
    compress = str(out.get("compress", "none")).lower()
    if str(out["driver"]).upper() in ("GTIFF", "COG") and compress not in ("none", ""):
        # Let GDAL compress on every core, so the one writer is not the
        # bottleneck; and go BigTIFF when a compressed file might pass 4 GB.
        if "num_threads" not in out:
            out["num_threads"] = "all_cpus"
        if "bigtiff" not in out:
            out["bigtiff"] = "if_safer"
    return out


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().upper() in ("YES", "TRUE", "ON", "1")
    return bool(value)


def _aligned(chunks: tuple[int, ...], block: int) -> bool:
    offset = 0
    for size in chunks[:-1]:
        offset += size
        if offset % block:
            return False
    return True


def align_chunks(array: da.Array, profile: dict) -> da.Array:
    """Rechunk so that chunk edges fall on the output's block edges.

    Without this, a compressed tile written by two chunks is written twice
    and appended again to the file.
    """
    if cog.is_cog(profile):
        profile, _ = cog.split_profile(profile)
    if _truthy(profile.get("tiled", False)):
        block_rows = int(profile.get("blockysize", 256))
        block_cols = int(profile.get("blockxsize", 256))
    elif "blockysize" in profile:
        block_rows, block_cols = int(profile["blockysize"]), array.shape[2]
    else:
        return array
    rows, cols = array.chunks[1:]
    new = {}
    if not _aligned(rows, block_rows):
        new[1] = max(1, round(max(rows) / block_rows)) * block_rows
    if not _aligned(cols, block_cols):
        new[2] = max(1, round(max(cols) / block_cols)) * block_cols
    return array.rechunk(new) if new else array


def _commit(store: RasterStore, _stored: Any) -> str:
    return store.commit()


def to_raster(
    array: Any,
    path: str | os.PathLike | DatasetWriter,
    profile: dict | None = None,
    *,
    like: str | os.PathLike | None = None,
    scheduler: Any = None,
    lock: Any = None,
    compute: bool = True,
    progress: bool = False,
    **creation_options: Any,
):
    """Write a ``(count, rows, cols)`` dask array to a raster, window by window.

    Parameters
    ----------
    array : dask.array.Array or numpy.ndarray
        ``(count, rows, cols)`` or ``(rows, cols)``; usually from
        :func:`map_windows`.
    path : str, os.PathLike or rasterio.io.DatasetWriter
        Output path.  It is written to a temporary file beside it and moved
        into place only when every window is written; on any failure the
        temporary file is removed and an existing file at ``path`` is
        untouched.  An open dataset is written into as it is.
    profile : dict, optional
        Creation profile; updates ``like``'s.
    like : str or os.PathLike, optional
        A raster whose CRS, transform, nodata, driver and layout the output
        copies.  ``profile`` or ``like`` is required.
    scheduler : str or distributed.Client, optional
        As dask's ``compute(scheduler=...)``: ``"threads"``, ``"sync"``,
        ``"processes"`` or a client; default the active one.  On threads,
        processes and distributed clusters, workers read and compute and
        the finished blocks stream back to the calling thread, which writes
        them (at most two tasks per worker in flight); ``"sync"`` runs
        ``da.store`` into the store target in this thread.
    lock : lock, optional
        Lock around every write (default: a new ``threading.Lock``).
    compute : bool, optional
        If False, return a ``dask.delayed`` object that writes when computed
        (on the threaded or synchronous scheduler) and returns the path.
    progress : bool, optional
        Draw blocks done / total, rate and ETA on stderr.
    **creation_options
        GDAL creation options (``compress="deflate"``, ``tiled=True``...).
        Compressed GeoTIFFs get ``NUM_THREADS=ALL_CPUS`` and
        ``BIGTIFF=IF_SAFER`` unless given.

    Returns
    -------
    str or dask.delayed.Delayed
        The output path, or the delayed write when ``compute=False``.

    Raises
    ------
    ProfileError
        No georeferencing, or a profile contradicting the array.
    OutputPathError
        The output directory does not exist (before anything is computed).

    Examples
    --------
    >>> from riomucho_dask import map_windows
    >>> def halve(data, window, ij, g):
    ...     return data[0] // 2
    >>> out = map_windows(halve, ["scene_a.tif"])
    >>> to_raster(out, "half.tif", like="scene_a.tif", compress="deflate")
    'half.tif'
    """
    if not isinstance(array, da.Array):
        array = da.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise ProfileError(f"to_raster needs a (count, rows, cols) array, not shape {array.shape}")
    if lock is False:
        raise ProfileError("lock=False is refused: concurrent writes corrupt a GDAL dataset")
    if isinstance(path, DatasetWriter):
        out_profile = dict(path.profile)
        if (path.count, path.height, path.width) != array.shape:
            raise ProfileError(
                f"the array's shape {array.shape} does not match the open dataset "
                f"{path.name!r} {(path.count, path.height, path.width)}"
            )
    else:
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise OutputPathError(f"output directory {directory!r} does not exist")
        out_profile = build_profile(array, profile, like, creation_options)
    if np.dtype(out_profile["dtype"]) != array.dtype:
        array = array.astype(out_profile["dtype"])
    array = align_chunks(array, out_profile)

    store = RasterStore(path, out_profile, lock=lock if lock not in (None, True) else None,
                        progress=progress, total=array.npartitions)
    kind = _schedulers.kind(scheduler)
    if kind in ("sync", "local") or not compute:
        stored = da.store(array, store, lock=False, compute=False)
        written = dask.delayed(_commit, pure=False)(store, stored)
        if not compute:
            return written
        try:
            (result,) = dask.compute(written, scheduler=scheduler)
        except BaseException:
            store.abort()
            raise
        return result
    try:
        _schedulers.stream_write(array, store, scheduler)
        return store.commit()
    except BaseException:
        store.abort()
        raise
