"""What this GDAL's drivers can do, read from their own metadata.

Which drivers create datasets window by window (``DCAP_CREATE``) and which
only copy a finished one (``DCAP_CREATECOPY``: PNG, JPEG, WEBP,
JP2OpenJPEG...), which creation options (``DMD_CREATIONOPTIONLIST``) and data
types (``DMD_CREATIONDATATYPES``) each takes, and which files a dataset is
made of (``GDALGetFileList``: its side-cars).  Read through GDAL's C library
(the copy rasterio loaded); where it cannot be found, nothing is filtered.
"""

from __future__ import annotations

import ctypes
import difflib
import os
import re
from typing import Any

import numpy as np
import rasterio
from rasterio.dtypes import dtype_rev, typename_fwd

from ..errors import ProfileError
from ..gdal_c import driver_item, library

__all__ = ["DATASET_KEYS", "OWN_KEYS", "BAND_COUNTS", "creation_options", "creation_dtypes",
           "check_options", "compressions", "copy_only", "supported", "dataset_files"]

#: Profile keys rasterio takes as the dataset's own (not creation options).
DATASET_KEYS = frozenset({"driver", "count", "width", "height", "dtype", "crs", "transform",
                          "nodata"})

#: Profile keys riomucho_dask reads itself, whatever the driver: the dataset's,
#: a GeoTIFF layout (a COG's intermediate takes it; other drivers leave out what
#: they do not list), a COG's block size and resampling, and the overviews.
OWN_KEYS = DATASET_KEYS | frozenset({
    "tiled", "blockxsize", "blockysize", "blocksize", "compress", "interleave", "photometric",
    "num_threads", "bigtiff", "resampling", "overviews", "overview_resampling"})

#: Drivers whose dataset is a directory (a store of many files), by extension.
DIRECTORY_STORES = {".zarr": "Zarr"}

#: The band counts drivers that take only some can write (GDAL 3.10, each tried
#: by copying 1 to 6 uint8 bands): their own metadata does not say.
BAND_COUNTS = {"JPEG": (1, 3, 4), "WEBP": (3, 4), "PNG": (1, 2, 3, 4), "GIF": (1,),
               "BMP": (1, 3), "XPM": (1,)}

#: Drivers whose every creation option is passed on as given (the GeoTIFF routes
#: check their own, and GDAL says what it does not know).
UNFILTERED = frozenset({"GTIFF", "COG"})


#: Drivers GDAL writes only by copying (DCAP_CREATECOPY, not DCAP_CREATE), where
#: GDAL's C library is not found to say (GDAL 3.10's).
_COPY_ONLY = frozenset({"PNG", "JPEG", "WEBP", "JP2OPENJPEG", "GIF", "XPM", "AAIGRID", "XYZ",
                        "BMP", "COG"})


def _metadata_item(driver: str, item: str) -> str | None:
    return driver_item(driver, item)


def creation_options(driver: str) -> frozenset[str] | None:
    """The creation option names ``driver`` lists, upper case (None where unknown).

    Examples
    --------
    >>> "ZLEVEL" in creation_options("PNG"), "TILED" in creation_options("PNG")
    (True, False)
    """
    text = _metadata_item(driver, "DMD_CREATIONOPTIONLIST")
    if text is None:
        return None
    return frozenset(name.upper() for name in re.findall(r"<Option\s+name='([^']+)'", text))


def check_options(driver: str, names: Any) -> None:
    """Raise :class:`ProfileError` for a creation option ``driver`` does not list
    (GDAL's ``DMD_CREATIONOPTIONLIST``) and riomucho_dask does not read itself
    (:data:`OWN_KEYS`), naming it and the closest option; case-insensitive.
    Nothing is checked where the list cannot be read.

    Examples
    --------
    >>> check_options("GTiff", ["compress", "ZSTD_LEVEL", "tiled"])
    >>> check_options("GTiff", ["compresss"])
    Traceback (most recent call last):
    ...
    riomucho_dask.errors.ProfileError: unknown creation option 'compresss' for GTiff: ...
    """
    listed = creation_options(driver)
    if listed is None:
        return
    for name in names:
        if str(name).lower() in OWN_KEYS or str(name).upper() in listed:
            continue
        known = sorted(OWN_KEYS | {option.lower() for option in listed})
        close = difflib.get_close_matches(str(name).lower(), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ProfileError(
            f"unknown creation option {name!r} for {driver}: {hint}(GDAL's {driver} driver "
            f"lists {', '.join(sorted(option.lower() for option in listed))})")


def creation_dtypes(driver: str) -> frozenset[str] | None:
    """GDAL's names of the data types ``driver`` creates (None where unknown).

    Examples
    --------
    >>> sorted(creation_dtypes("PNG"))
    ['Byte', 'UInt16']
    """
    text = _metadata_item(driver, "DMD_CREATIONDATATYPES")
    return frozenset(text.split()) if text else None


def gdal_dtype(dtype: Any) -> str:
    """GDAL's name of a numpy dtype (``uint8`` -> ``Byte``)."""
    return typename_fwd[dtype_rev[np.dtype(dtype).name]]


def compressions(driver: str) -> tuple[str, ...] | None:
    """The COMPRESS values this GDAL's ``driver`` has, lower case (None where unknown)."""
    text = _metadata_item(driver, "DMD_CREATIONOPTIONLIST")
    found = re.search(r"<Option name='COMPRESS'.*?</Option>", text or "", re.S)
    if not found:
        return None
    return tuple(v.lower() for v in re.findall(r"<Value>([^<]+)</Value>", found.group(0)))


def can_write(driver: str) -> bool:
    """Whether this GDAL's ``driver`` writes a raster rasterio may write (it
    creates or copies datasets, and rasterio does not refuse it in 'w' mode,
    as it refuses netCDF); True where GDAL's metadata cannot be read.

    Examples
    --------
    >>> can_write("GTiff"), can_write("PNG"), can_write("netCDF")
    (True, True, False)
    """
    from rasterio.drivers import is_blacklisted

    if is_blacklisted(driver, "w"):
        return False
    if library() is None:
        return True
    return "YES" in (_metadata_item(driver, "DCAP_CREATE"),
                     _metadata_item(driver, "DCAP_CREATECOPY"))


def copy_only(driver: str) -> bool:
    """Whether GDAL writes ``driver`` only by copying a finished dataset
    (CreateCopy: PNG, JPEG, WEBP, JP2OpenJPEG, GIF...).  COG is one too; it has
    its own route (:mod:`riomucho_dask.write.spec.routes`).

    Examples
    --------
    >>> copy_only("PNG"), copy_only("ENVI"), copy_only("GTiff")
    (True, False, False)
    """
    if library() is None:
        return driver.upper() in _COPY_ONLY
    return driver_item(driver, "DCAP_CREATE") != "YES" and \
        driver_item(driver, "DCAP_CREATECOPY") == "YES"


def supported(profile: dict) -> dict:
    """``profile`` without the creation options its driver does not list (GDAL
    would only warn that it ignores them: ``tiled``, ``compress`` for a PNG).

    GeoTIFF and COG profiles are returned whole.

    Examples
    --------
    >>> sorted(supported({"driver": "PNG", "count": 1, "tiled": True, "blockxsize": 256,
    ...                   "compress": "deflate", "zlevel": 9}))
    ['count', 'driver', 'zlevel']
    """
    driver = str(profile.get("driver", "GTiff"))
    names = creation_options(driver)
    if driver.upper() in UNFILTERED or names is None:
        return dict(profile)
    return {key: value for key, value in profile.items()
            if key.lower() in DATASET_KEYS or key.upper() in names}


def dataset_files(path: str) -> list[str]:
    """The files of the raster dataset at ``path`` (its side-cars too: ``.aux.xml``,
    ``.hdr``, ``.ovr``, world files), as GDAL lists them; ``[path]`` where it is no
    raster GDAL opens, ``[]`` where there is no file."""
    if not os.path.exists(path):
        return []
    lib = library()
    if lib is None:
        return [path]
    lib.GDALOpenEx.restype = ctypes.c_void_p
    lib.GDALOpenEx.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p,
                               ctypes.c_void_p, ctypes.c_void_p]
    lib.GDALGetFileList.restype = ctypes.POINTER(ctypes.c_char_p)
    lib.GDALGetFileList.argtypes = [ctypes.c_void_p]
    lib.CSLDestroy.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.GDALClose.argtypes = [ctypes.c_void_p]
    gdal_of_raster = 0x02  # read-only, no error message when it is not a raster
    with rasterio.Env():
        handle = lib.GDALOpenEx(os.fsencode(path), gdal_of_raster, None, None, None)
        if not handle:
            return [path]
        try:
            listed = lib.GDALGetFileList(handle)
            files = []
            if listed:
                index = 0
                while listed[index] is not None:
                    files.append(os.fsdecode(listed[index]))
                    index += 1
                lib.CSLDestroy(listed)
        finally:
            lib.GDALClose(handle)
    return files or [path]
