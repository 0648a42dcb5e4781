"""The dask configuration keys riomucho_dask reads, declared once, with defaults.

Every key lives under ``riomucho_dask.`` in ``dask.config`` and is read
through :func:`get`, which falls back to the default declared here::

    import dask
    with dask.config.set({"riomucho_dask.task-bytes": 64 * 2**20}):
        rmd.to_raster(out, "out.tif")

=====================  ==========================  ===============================================
key                    default                     what it sets
=====================  ==========================  ===============================================
``task-bytes``         16 MiB                      output bytes one task computes: neighbouring
                                                   windows are grouped into tasks of about this
                                                   size (at least one window a task; 0 for one
                                                   window a task)
``queue-bytes``        8 MiB                       finished blocks that may wait for the writer
``open-datasets``      64                          datasets (and WarpedVRTs) each thread keeps
                                                   open
``encode-tiles``       True                        tiled GeoTIFFs and COGs encoded in the tasks
                                                   (False: written through a GDAL dataset)
``scratch``            the system temporary dir    where object-storage outputs are written
                                                   before their upload
``keep-pool``          True                        the ``processes`` scheduler's worker pool is
                                                   kept for the next write of the session
``upload-parts``       True                        on a cluster, outputs on S3 uploaded from the
                                                   workers as parts of one multipart upload
                                                   (False: written in scratch space, then
                                                   uploaded from the client)
``part-bytes``         16 MiB                      the least size of those parts (never below
                                                   the store's minimum, 5 MiB on S3)
``http-retries``       5                           times GDAL retries an HTTP(S)/S3 read
                                                   answered 429, 500, 502, 503 or 504
``http-retry-delay``   0.5                         seconds before the first retry (then doubled)
=====================  ==========================  ===============================================
"""

from __future__ import annotations

from typing import Any

import dask

__all__ = ["DEFAULTS", "get"]

#: Every key (without the ``riomucho_dask.`` prefix) and its default.
DEFAULTS: dict[str, Any] = {
    "task-bytes": 16 * 2**20,
    "queue-bytes": 8 * 2**20,
    "open-datasets": 64,
    "encode-tiles": True,
    "scratch": None,
    "keep-pool": True,
    "upload-parts": True,
    "part-bytes": 16 * 2**20,
    "http-retries": 5,
    "http-retry-delay": 0.5,
}


def get(key: str) -> Any:
    """The value of ``riomucho_dask.<key>``, or its default.

    Examples
    --------
    >>> get("open-datasets")
    64
    >>> with dask.config.set({"riomucho_dask.open-datasets": 3}):
    ...     get("open-datasets")
    3
    """
    if key not in DEFAULTS:
        raise KeyError(f"riomucho_dask has no configuration key {key!r}: {sorted(DEFAULTS)}")
    return dask.config.get(f"riomucho_dask.{key}", DEFAULTS[key])
