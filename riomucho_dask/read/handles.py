"""A per-process, per-thread, bounded cache of read-only rasterio datasets.

Task graphs hold paths, never open datasets.  A task that needs pixels asks
this cache for a handle; each thread of each process keeps its own (GDAL
handles are not thread-safe), reopened when the file on disk changes or
when user code closed it.  Inputs read onto another grid get a
``WarpedVRT`` over that handle, cached beside it.

The cache is a least-recently-used one of at most ``riomucho_dask.open-datasets``
datasets a thread (default 64), and as many VRTs: a mosaic of 1,000 files on
16 threads keeps at most 1,024 open handles, not 16,000.  An evicted dataset
is closed, its VRTs first (as xarray's ``CachingFileManager`` closes on
eviction).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict

import rasterio
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT

from .. import config
from ..errors import InputNotFoundError

__all__ = ["signature", "open_dataset", "get_dataset", "get_warped", "pinned", "all_valid",
           "EXACT_TOLERANCE"]

#: The warper's transformer error, in source pixels.  GDAL's default (0.125)
#: linearises the transform over each request, so a window read through a
#: WarpedVRT differs from a whole-grid read; this makes the transformer exact
#: (rasterio 1.4's ``tolerance=0`` sets no transformer at all and fails), and
#: reads no longer depend on how the work is cut.
EXACT_TOLERANCE = 1e-9

_local = threading.local()


def signature(path: str):
    """What identifies this version of a local file (None for /vsi paths and URLs)."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # not a local file (a /vsi path, a URL): trust the name
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def all_valid(dataset, indexes) -> bool:
    """Whether the bands ``indexes`` of ``dataset`` have no mask (no nodata, no
    internal mask, no alpha): every pixel holds data, no mask to read."""
    flags = dataset.mask_flag_enums
    return all(flags[i - 1] == [MaskFlags.all_valid] for i in indexes)


def open_dataset(path: str, *, what: str | None = None):
    """Open ``path`` for reading, raising :class:`InputNotFoundError` on failure."""
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise InputNotFoundError(f"cannot open input {what or path!r}: {err}") from err


class _Cache:
    """This thread's datasets and the VRTs made over them (both LRU)."""

    def __init__(self):
        self.datasets: OrderedDict = OrderedDict()  # path -> (dataset, signature)
        self.warped: OrderedDict = OrderedDict()  # (path, grid, resampling, alpha) -> (vrt, base)
        self.pins = 0  # while above 0, a task uses what it opened: nothing is closed
        self.grown = False  # something was opened since the last trim

    def close_path(self, path: str) -> None:
        for key in [key for key in self.warped if key[0] == path]:
            vrt, _ = self.warped.pop(key)
            vrt.close()
        entry = self.datasets.pop(path, None)
        if entry is not None and not entry[0].closed:
            entry[0].close()

    def trim(self) -> None:
        if self.pins or not self.grown:
            return
        self.grown = False
        most = max(1, int(config.get("open-datasets")))
        while len(self.datasets) > most:
            self.close_path(next(iter(self.datasets)))
        while len(self.warped) > most:
            vrt, _ = self.warped.pop(next(iter(self.warped)))
            vrt.close()


@contextlib.contextmanager
def pinned():
    """Within it, this thread's cache closes nothing: the datasets a task opened
    (``manual_read`` hands them to the run function) stay open until it ends;
    the cache is trimmed to its bound after, when the task opened anything (a
    window that opened nothing costs no look-up of the bound)."""
    cache = _cache()
    cache.pins += 1
    try:
        yield
    finally:
        cache.pins -= 1
        cache.trim()


def _cache() -> _Cache:
    cache = getattr(_local, "cache", None)
    if cache is None or getattr(_local, "pid", None) != os.getpid():
        cache = _local.cache = _Cache()
        _local.pid = os.getpid()
    return cache


def get_dataset(path: str):
    """This thread's open read handle to ``path``."""
    cache = _cache()
    current = signature(path)
    entry = cache.datasets.get(path)
    if entry is not None:
        dataset, seen = entry
        if not dataset.closed and seen == current:
            cache.datasets.move_to_end(path)
            return dataset
        cache.close_path(path)
    dataset = open_dataset(path)
    cache.datasets[path] = (dataset, current)
    cache.grown = True
    cache.trim()
    return dataset


def get_warped(path: str, grid, resampling, *, alpha: bool = False) -> WarpedVRT:
    """This thread's ``WarpedVRT`` of ``path`` onto ``grid`` (a
    :class:`~riomucho_dask.read.grid.Grid`), as a user would make it by hand:
    ``WarpedVRT(src, crs=, transform=, width=, height=, resampling=)``, with an
    exact transformer (:data:`EXACT_TOLERANCE`); with
    ``alpha``, an alpha band says which grid pixels the input covers."""
    dataset = get_dataset(path)
    cache = _cache()
    key = (path, grid, resampling, alpha)
    entry = cache.warped.get(key)
    if entry is not None:
        vrt, base = entry
        if base is dataset and not vrt.closed:
            cache.warped.move_to_end(key)
            return vrt
        del cache.warped[key]
        vrt.close()
    options = dict(crs=grid.crs, transform=grid.transform, width=grid.width,
                   height=grid.height, resampling=resampling, tolerance=EXACT_TOLERANCE)
    if alpha:
        options["add_alpha"] = True
    vrt = WarpedVRT(dataset, **options)
    cache.warped[key] = (vrt, dataset)
    cache.grown = True
    cache.trim()
    return vrt
