"""Set up a worker process once: a bounded GDAL block cache, sane malloc.

Tasks that read or run a function call :func:`setup_once`; it acts only in
processes started by a process pool or a dask.distributed nanny, never in
the user's own process (where the threaded scheduler runs).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os

__all__ = ["WORKER_GDAL_CACHEMAX_MB", "setup_once", "configure_worker", "tune_malloc", "warm"]

#: Modules a write's tasks need, imported once by each worker process (the process
#: pool's fork server, :func:`warm` on a cluster).
PRELOAD = ["numpy", "rasterio", "dask.array", "riomucho_dask"]

#: GDAL block cache per worker process, in MB, unless GDAL_CACHEMAX is set.
#: GDAL's own default is 5% of RAM in every process.
WORKER_GDAL_CACHEMAX_MB = 64

_set_up = False


def setup_once() -> None:
    """:func:`configure_worker`, once per process, in worker processes only."""
    global _set_up
    if _set_up:
        return
    _set_up = True
    if multiprocessing.parent_process() is not None:
        configure_worker()


def configure_worker() -> None:
    """Give a worker process a bounded GDAL block cache (unless set), and
    undo the nanny's malloc setting (see :func:`tune_malloc`)."""
    if "GDAL_CACHEMAX" not in os.environ:
        os.environ["GDAL_CACHEMAX"] = str(WORKER_GDAL_CACHEMAX_MB)
    tune_malloc()


_malloc_tuned = False


def tune_malloc() -> bool:
    """Keep numpy's block-sized temporaries off mmap in nanny-started workers.

    dask.distributed's nanny exports ``MALLOC_TRIM_THRESHOLD_=65536`` into its
    workers (``distributed.nanny.pre-spawn-environ``).  Setting it switches
    off glibc's adaptive mmap threshold, so every temporary over 128 kB (a
    512 x 512 float64 band is 2 MB) is mapped and unmapped again: page
    faults on every numpy operation.  Once per process, where that variable
    is set, raise the mmap threshold to 32 MB and the trim threshold to
    128 MB (``mallopt``).  Opt out with the environment variable
    ``RIOMUCHO_DASK_TUNE_MALLOC=0``.  Returns whether it changed anything.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return False
    _malloc_tuned = True
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    if os.environ.get("RIOMUCHO_DASK_TUNE_MALLOC", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 * 2**20)) and bool(
        libc.mallopt(m_trim_threshold, 128 * 2**20)
    )


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)


def warm(client) -> None:
    """Import, in every worker of the dask.distributed ``client``, the modules
    a write's tasks need (:data:`PRELOAD`, which
    the process pool's fork server imports once).

    A new cluster's workers have imported only distributed: without this,
    the first write imports dask.array (and with it xarray and pandas, when
    installed), rasterio and riomucho_dask in its first tasks, about 0.5 s
    on each worker (2 cores).  Call it once, after starting the cluster.
    """
    client.run(_preload)
