"""GDAL's C functions that rasterio does not wrap, in the GDAL rasterio loaded.

A few of GDAL's functions have no rasterio API: a driver's metadata
(``DMD_CREATIONOPTIONLIST``, ``DCAP_CREATE``), a dataset's file list, the
multipart upload API, ``VSIStatExL``, the error counter.  They are called
through :mod:`ctypes` in the very copy of GDAL rasterio uses: another copy
(osgeo's, a system one) would not see rasterio's per-thread options
(credentials, endpoints) and may be another version.

The library is found without private rasterio modules or ``/proc``, in this
order (:func:`candidates`):

1. the handle of one of rasterio's public compiled modules
   (``rasterio.crs``): on Linux and macOS, a symbol looked up through a
   loaded module's handle is found in the libraries it links, GDAL among them;
2. the GDAL library a wheel ships beside rasterio (``rasterio.libs/``,
   ``rasterio/.dylibs/``, or rasterio's own folder on Windows, where a
   module's handle finds only its own symbols): already loaded by rasterio,
   so loading it again gives the same library.

Where neither has GDAL's symbols, :func:`library` is None and the callers
fall back (nothing filtered, the check left to GDAL, the scratch-space upload).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
from collections.abc import Iterator

import rasterio
import rasterio.crs

__all__ = ["library", "candidates", "driver_item"]

#: A function every GDAL has, to tell GDAL's library from another.
_PROBE = "GDALVersionInfo"


def candidates() -> Iterator[tuple[str, str]]:
    """``(how, path)`` of each place GDAL's library may be loaded from, in order."""
    yield "module", rasterio.crs.__file__
    here = os.path.dirname(os.path.abspath(rasterio.__file__))
    for folder in (os.path.join(os.path.dirname(here), "rasterio.libs"),
                   os.path.join(here, ".dylibs"), here):
        for pattern in ("libgdal*.so*", "libgdal*.dylib", "gdal*.dll"):
            for path in sorted(glob.glob(os.path.join(folder, pattern))):
                yield "shipped", path


def _load(path: str):
    try:
        lib = ctypes.CDLL(path)
        getattr(lib, _PROBE)
    except (OSError, AttributeError):
        return None
    return lib


@functools.lru_cache(maxsize=1)
def library():
    """GDAL's C library, as rasterio loaded it, or None where it cannot be found.

    Examples
    --------
    >>> lib = library()
    >>> lib.GDALVersionInfo.restype = ctypes.c_char_p
    >>> lib.GDALVersionInfo(b"RELEASE_NAME").decode() == rasterio.__gdal_version__
    True
    """
    for _, path in candidates():
        lib = _load(path)
        if lib is not None:
            lib.VSIStatExL.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
            lib.CPLGetLastErrorMsg.restype = ctypes.c_char_p
            lib.CPLGetLastErrorType.restype = ctypes.c_int
            lib.CPLErrorReset.restype = None
            lib.GDALGetDriverByName.restype = ctypes.c_void_p
            lib.GDALGetDriverByName.argtypes = [ctypes.c_char_p]
            lib.GDALGetMetadataItem.restype = ctypes.c_char_p
            lib.GDALGetMetadataItem.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                                ctypes.c_char_p]
            return lib
    return None


@functools.cache
def driver_item(driver: str, item: str) -> str | None:
    """The metadata ``item`` of GDAL's ``driver`` (``DCAP_CREATE``,
    ``DMD_CREATIONOPTIONLIST``...), or None (no such driver or item, or no library).

    Examples
    --------
    >>> driver_item("GTiff", "DCAP_CREATE"), driver_item("PNG", "DCAP_CREATE")
    ('YES', None)
    """
    lib = library()
    if lib is None:
        return None
    with rasterio.Env():  # (GDAL's drivers registered)
        handle = lib.GDALGetDriverByName(driver.encode())
        text = lib.GDALGetMetadataItem(handle, item.encode(), None) if handle else None
    return text.decode() if text is not None else None


def last_error(lib) -> str:
    """GDAL's last error message in this thread."""
    message = lib.CPLGetLastErrorMsg()
    return message.decode(errors="replace") if message else "no message from GDAL"
