"""Outputs on object storage: written in local scratch space, uploaded when complete.

GDAL writes a GeoTIFF to ``/vsis3/`` only sequentially, and a COG only by
CreateCopy, so an output on object storage is written as usual into a
scratch directory (``dask.config.set({"riomucho_dask.scratch": DIR})``,
default the system temporary directory), then copied up in one go by GDAL
(a multipart upload that creates the object only when it completes: on any
failure no object is left, and an object already at the key is untouched).
"""

from __future__ import annotations

import ctypes
import os
import tempfile

import rasterio
import rasterio.shutil

from ... import config
from ...errors import OutputPathError
from ...gdal_c import last_error, library
from ...paths import is_remote, vsi_path

__all__ = ["scratch_dir", "exists", "check_writable", "upload"]

#: GDAL file systems of object stores (a bucket or container, then the key).
OBJECT_STORES = {"vsis3", "vsigs", "vsiaz", "vsiadls", "vsioss", "vsiswift"}
#: GDAL file systems that only read.
READ_ONLY = {"vsicurl", "vsizip", "vsitar", "vsigzip", "vsi7z", "vsirar"}


def scratch_dir() -> str:
    """Where outputs on object storage are written before the upload."""
    return config.get("scratch") or tempfile.gettempdir()


def _stat(path: str) -> bool | None:
    """Whether GDAL finds ``path`` (a /vsi path), None where GDAL's C library is not found.

    Runs in the caller's ``rasterio.Env`` (credentials, endpoint), or with
    the credentials of the process's environment variables.
    """
    lib = library()
    if lib is None:
        return None
    stat = ctypes.create_string_buffer(512)  # room for a struct stat
    with rasterio.Env():
        return lib.VSIStatExL(path.encode(), stat, 0) == 0


def exists(path: str) -> bool:
    """Whether a file or an object exists at ``path`` (local, URL or /vsi path)."""
    if not is_remote(path):
        return os.path.exists(path)
    found = _stat(vsi_path(path))
    return rasterio.shutil.exists(path) if found is None else found


def check_writable(path: str) -> None:
    """Raise OutputPathError, before anything is computed, when the bucket (or
    container) of an object-storage ``path`` does not exist or cannot be listed.

    Object stores have no folders: only the bucket is checked.

    Runs in the caller's ``rasterio.Env`` (credentials, endpoint).  Where
    GDAL's C library cannot be found, the check is left to the upload.
    """
    target = vsi_path(path)
    parts = target.split("/")  # ['', 'vsis3', 'bucket', ..., 'name']
    system = parts[1]
    if system in READ_ONLY:
        raise OutputPathError(f"output {path!r}: {system} paths (HTTP) cannot be written")
    if system not in OBJECT_STORES:
        return  # /vsimem/ and other GDAL file systems: GDAL says so when writing
    if len(parts) < 4 or not parts[-1]:
        raise OutputPathError(f"output {path!r} names no object (expected .../bucket/key)")
    bucket = "/".join(parts[:3])
    if _stat(bucket) is False:
        raise OutputPathError(
            f"output {path!r}: {bucket!r} does not exist or cannot be reached with the "
            "credentials of the active rasterio.Env (no such bucket, or no permission)"
        )


def upload(local: str, path: str) -> None:
    """Copy the finished file ``local`` to ``path`` on object storage."""
    try:
        rasterio.shutil.copyfiles(local, vsi_path(path))
    except Exception as err:  # GDAL's errors say which request failed
        raise OutputPathError(f"uploading the output to {path!r} failed: {err}") from err


class GDALFailures:
    """Counts the errors (``CE_Failure`` and worse) GDAL reports in this thread
    while the block runs, which rasterio does not always raise (a tile that
    failed to compress when a dataset is flushed or copied): ``failed()``
    gives GDAL's last message when there was one.  Does nothing where GDAL's
    C library is not found.

    Examples
    --------
    >>> with GDALFailures() as failures:
    ...     pass
    >>> failures.failed() is None
    True
    """

    def __enter__(self) -> GDALFailures:
        lib = library()
        self._lib = lib
        self._start = None
        if lib is not None and hasattr(lib, "CPLGetErrorCounter"):
            lib.CPLGetErrorCounter.restype = ctypes.c_uint32
            self._start = lib.CPLGetErrorCounter()
        return self

    def __exit__(self, *exc) -> None:
        self._end = self._lib.CPLGetErrorCounter() if self._start is not None else None

    def failed(self) -> str | None:
        """GDAL's message when an error of class CE_Failure or worse was the last
        reported in the block (None otherwise)."""
        if self._start is None or self._end == self._start:
            return None
        if self._lib.CPLGetLastErrorType() < 3:  # (CE_Failure)
            return None
        return last_error(self._lib)
