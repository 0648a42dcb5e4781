"""A per-process, per-thread cache of read-only rasterio datasets.

Task graphs hold paths, never open datasets.  A task that needs pixels asks
this cache for a handle; each thread of each process keeps its own (GDAL
handles are not thread-safe), reopened when the file on disk changes or
when user code closed it.
"""

from __future__ import annotations

import os
import threading

import rasterio
from rasterio.errors import RasterioIOError

from ..errors import InputNotFoundError

__all__ = ["signature", "open_dataset", "get_dataset"]

_local = threading.local()


def signature(path: str):
    """What identifies this version of a local file (None for /vsi paths and URLs)."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # not a local file (a /vsi path, a URL): trust the name
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def open_dataset(path: str, *, what: str | None = None):
    """Open ``path`` for reading, raising :class:`InputNotFoundError` on failure."""
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise InputNotFoundError(f"cannot open input {what or path!r}: {err}") from err


def get_dataset(path: str):
    """This thread's open read handle to ``path``."""
    cache = getattr(_local, "cache", None)
    if cache is None or getattr(_local, "pid", None) != os.getpid():
        cache = _local.cache = {}
        _local.pid = os.getpid()
    current = signature(path)
    entry = cache.get(path)
    if entry is not None:
        dataset, seen = entry
        if not dataset.closed and seen == current:
            return dataset
        if not dataset.closed:
            dataset.close()
    dataset = open_dataset(path)
    cache[path] = (dataset, current)
    return dataset
