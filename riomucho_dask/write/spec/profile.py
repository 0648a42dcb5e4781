"""The output's creation profile, and chunks that line up with its tiles."""

from __future__ import annotations

import math
import os
from typing import Any

import dask.array as da
import numpy as np
from rasterio.drivers import driver_from_extension

from ...errors import ProfileError
from ...nodata import nodata_fits
from ...read import array_grids, inputs_nodata, raster_info
from .. import drivers
from . import routes

__all__ = ["build_profile", "output_driver", "grid_profile", "align_chunks", "nodata_fits"]


#: Drivers an output's extension chooses by itself, each tested to write what
#: rasterio writes (side-cars named after the output, CreateCopy-only drivers
#: through a GeoTIFF intermediate).  Others must be asked for (``driver=``).
FROM_EXTENSION = frozenset({"GTIFF", "HFA", "PNG", "JPEG", "WEBP", "JP2OPENJPEG", "GPKG"})

#: What ``like=`` gives any output: georeferencing and nodata (the nodata only
#: while the array keeps like's dtype).
_GEOREFERENCING = ("crs", "transform", "nodata")


def output_driver(path: Any, explicit: dict) -> str:
    """The output's driver: ``driver=`` (or the profile's), else the one GDAL
    associates with the path's extension, else GTiff; never an input's.

    Examples
    --------
    >>> output_driver("x.tif", {}), output_driver("x.img", {}), output_driver("x", {})
    ('GTiff', 'HFA', 'GTiff')
    >>> output_driver("x.png", {}), output_driver("x.jp2", {}), output_driver("x.gpkg", {})
    ('PNG', 'JP2OpenJPEG', 'GPKG')
    >>> output_driver("x.nc", {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    riomucho_dask.errors.ProfileError: 'x.nc': GDAL's driver for this extension is 'netCDF', ...
    >>> output_driver("x.tif", {"driver": "COG"})
    'COG'
    >>> output_driver("x.zarr", {})
    'Zarr'
    """
    if explicit.get("driver"):
        return str(explicit["driver"])
    if isinstance(path, (str, os.PathLike)):
        name = os.fspath(path).split("?")[0]
        extension = os.path.splitext(name.rstrip("/"))[1]
        if extension.lower() in drivers.DIRECTORY_STORES:
            driver = drivers.DIRECTORY_STORES[extension.lower()]
            if drivers.creation_options(driver) is None or not drivers.can_write(driver):
                raise ProfileError(f"{os.fspath(path)!r}: this GDAL cannot write {driver} "
                                   f"(the driver of '{extension}'): write a GeoTIFF ('.tif')")
            return driver
        if extension:
            try:
                driver = driver_from_extension(name)
            except ValueError as err:  # an extension GDAL does not know
                raise ProfileError(
                    f"{os.fspath(path)!r}: no GDAL driver writes the extension "
                    f"{extension!r}: write a GeoTIFF ('.tif'), or pass driver= (driver="
                    "'GTiff' to keep this name)") from err
            if driver.upper() not in FROM_EXTENSION:
                raise ProfileError(
                    f"{os.fspath(path)!r}: GDAL's driver for this extension is {driver!r}, "
                    "which is not written from its extension alone (GTiff, HFA, PNG, JPEG, "
                    "WEBP, JP2OpenJPEG and GPKG are): write a GeoTIFF ('.tif'), or pass "
                    "driver= to ask for it anyway")
            return driver
    return "GTiff"


def nodata_value(value: Any) -> Any:
    """A nodata given as a number or a numeric string (as rasterio's ``--nodata``
    takes it), or None.

    Examples
    --------
    >>> nodata_value("255"), nodata_value("-9999.5"), nodata_value(None)
    (255, -9999.5, None)
    >>> nodata_value("nan")
    nan
    >>> nodata_value("none")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    riomucho_dask.errors.ProfileError: nodata 'none' is not a number...
    """
    if value is None or isinstance(value, (int, float, np.number)):
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            return int(number) if number.is_integer() and "." not in value else number
    raise ProfileError(f"nodata {value!r} is not a number (give a number such as 0, -9999 "
                       "or nan, or leave nodata out)")


def check_driver(driver: str, compress: Any = None) -> str:
    """``driver`` with GDAL's spelling, raising :class:`ProfileError` for a driver
    this GDAL does not have, or (GTiff and COG) a compression it does not know."""
    import rasterio

    with rasterio.Env() as env:
        known = {name.upper(): name for name in env.drivers()}
    if driver.upper() not in known:
        raise ProfileError(f"unknown driver {driver!r}: this GDAL has no driver of that name "
                           "(GTiff, COG, HFA, ...: see `rio env --formats`)")
    name = known[driver.upper()]
    if not drivers.can_write(name):
        raise ProfileError(f"the {name} driver cannot write rasters here (this GDAL reads "
                           f"them only, or rasterio refuses {name} in 'w' mode): write a "
                           "GeoTIFF (.tif, or driver='GTiff')")
    if compress is not None and name.upper() in ("GTIFF", "COG"):
        names = drivers.compressions(name)
        if names is not None and str(compress).lower() not in names:
            raise ProfileError(f"unknown compression {compress!r} for {name}: this GDAL has "
                               f"{', '.join(names)}")
    return name


def grid_profile(array: da.Array) -> dict:
    """``{"crs", "transform"}`` of the one grid an array's graph reads (from
    ``map_windows`` or ``open_raster``, through any dask work).

    Raises
    ------
    ProfileError
        When the graph reads no raster, rasters of several grids, or the array
        is no longer the grid's size.
    """
    grids = array_grids(array)
    if len(grids) != 1:
        what = "reads no raster" if not grids else (
            f"reads rasters on {len(grids)} different grids")
        raise ProfileError(
            f"to_raster needs georeferencing: the array {what}; pass like= (a raster to "
            "copy CRS, transform and nodata from) or profile=")
    (grid,) = grids
    if tuple(array.shape[1:]) != grid.shape:
        raise ProfileError(
            f"the array is {array.shape[1]} x {array.shape[2]} but the grid it was read on "
            f"is {grid.height} x {grid.width}: pass like= or profile= for its georeferencing")
    out = {"crs": grid.crs, "transform": grid.transform}
    nodata = inputs_nodata(array)
    if nodata is not None:
        out["nodata"] = nodata
    return out


def build_profile(array: da.Array, profile: dict | None, like: Any,
                  creation_options: dict, path: Any = None) -> dict:
    """The output's creation profile.

    The driver from ``driver=`` or the profile, else from ``path``'s extension,
    else GTiff.  Georeferencing and nodata from ``like`` (and its layout: tiles,
    compression, interleave, only when it is a GeoTIFF written to a GeoTIFF),
    else from the grid the array was read on; updated by ``profile`` then the
    creation options.  An explicit nodata wins; ``like``'s (and the grid's) is
    taken only while the array keeps that raster's dtype, else there is none.
    Height, width and count come from the array; the dtype from the array
    unless ``profile``/creation options name one.
    """
    # GDAL option names are case-insensitive; rasterio's profiles are lowercase.
    explicit = {key.lower(): value for key, value in (profile or {}).items()}
    explicit.update((key.lower(), value) for key, value in creation_options.items())
    driver = output_driver(path, explicit)
    if "nodata" in explicit:
        explicit["nodata"] = nodata_value(explicit["nodata"])
    check_driver(driver, explicit.get("compress"))
    drivers.check_options(driver, explicit)
    if driver.upper() == "VRT":
        raise ProfileError(
            f"a VRT holds no pixels of its own, so {path!r} cannot be written as one: write "
            "a GeoTIFF (.tif, or driver='GTiff') and build a VRT over it if needed")
    out: dict[str, Any] = {}
    if like is not None:
        like_profile = raster_info(like).profile
        if str(like_profile.get("driver", "")).upper() == "GTIFF" and driver.upper() == "GTIFF":
            out.update(like_profile)
            if truthy(explicit.get("tiled", False)) and not truthy(like_profile.get("tiled")):
                # tiles asked of a striped like: its strips (999 x 1) are no tile size
                for key in ("blockxsize", "blockysize"):
                    if key not in explicit:
                        out.pop(key, None)
        else:
            out.update((key, like_profile[key]) for key in _GEOREFERENCING if key in like_profile)
        if np.dtype(like_profile.get("dtype", array.dtype)) != array.dtype:
            # like's nodata is a value of like's quantity: an array of another
            # dtype (a class map of a uint16 scene) may hold it as a real value
            out.pop("nodata", None)
    elif profile is None:
        out.update(grid_profile(array))
    elif "transform" not in explicit and len(array_grids(array)) == 1:
        out.update(grid_profile(array))  # a profile of options: the grid's georeferencing
    out.update(explicit)
    out["driver"] = driver
    count, height, width = array.shape
    for key, value in (("height", height), ("width", width), ("count", count)):
        if key in explicit and int(explicit[key]) != value:
            raise ProfileError(f"profile {key}={explicit[key]} but the array has {key} {value}")
        if like is not None and key in ("height", "width") and key in like_profile and \
                like_profile[key] != value:
            raise ProfileError(
                f"the array is {height} x {width} but like={like!r} is "
                f"{like_profile['height']} x {like_profile['width']}: georeferencing would "
                "not match"
            )
        out[key] = value
    dtype = np.dtype(explicit.get("dtype", array.dtype))
    out["dtype"] = dtype.name
    nodata = out.get("nodata")
    if not nodata_fits(nodata, dtype):
        if "nodata" in explicit:
            raise ProfileError(f"nodata {nodata!r} does not fit dtype {dtype}")
        out["nodata"] = None  # like's nodata cannot be stored in the new dtype
    if out.get("nodata") is not None and dtype.kind in "iu" and dtype.itemsize == 8 \
            and not math.isnan(float(out["nodata"])) and abs(int(out["nodata"])) > 2**53:
        # rasterio 1.4 hands GDAL a nodata as a double, which GDAL writes with
        # about 16 digits: -2**63 reads back as -9, 10**17 as 1
        raise ProfileError(
            f"nodata {out['nodata']!r} cannot be written for {dtype}: rasterio writes a "
            f"nodata beyond +/-2**53 as another value (-2**63 reads back as -9); choose "
            "one within +/-2**53")
    if out.get("nodata") is None:
        out.pop("nodata", None)
    types = drivers.creation_dtypes(driver)
    if (driver.upper() not in drivers.UNFILTERED and types is not None
            and drivers.gdal_dtype(dtype) not in types):
        raise ProfileError(
            f"{driver} cannot hold {dtype} pixels (GDAL's {driver} driver writes "
            f"{', '.join(sorted(types))}): pass dtype= (the array is cast), or write a "
            "GeoTIFF ('.tif')")
    counts = drivers.BAND_COUNTS.get(driver.upper())
    if counts is not None and count not in counts:
        raise ProfileError(
            f"{driver} cannot hold {count} band{'s' if count > 1 else ''} (GDAL's {driver} "
            f"driver writes {', '.join(map(str, counts))}): select or stack bands, or write a "
            "GeoTIFF ('.tif')")
    out = drivers.supported(out)  # (no option the driver would only warn it ignores)
    compress = str(out.get("compress", "none")).lower()
    if str(out["driver"]).upper() in ("GTIFF", "COG") and compress not in ("none", ""):
        # Let GDAL compress on every core, so the one writer is not the
        # bottleneck; and go BigTIFF when a compressed file might pass 4 GB.
        if "num_threads" not in out:
            out["num_threads"] = "all_cpus"
        if "bigtiff" not in out:
            out["bigtiff"] = "if_safer"
    return out


def truthy(value: Any) -> bool:
    """A GDAL yes/no option as a bool (YES, TRUE, ON, 1 or a true Python value)."""
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
    """Rechunk so that every chunk holds all bands, and chunk edges fall on
    the output's block edges.

    Without this, a compressed tile written by two chunks (two groups of
    rows, or two groups of bands of a pixel-interleaved tile) is written
    twice and appended again to the file.
    """
    new: dict[int, Any] = {0: -1} if len(array.chunks[0]) > 1 else {}
    if routes.is_cog(profile):
        profile, _ = routes.cog_split(profile)
    elif routes.is_copied(profile):
        profile, _ = routes.copied_split(profile)
    if truthy(profile.get("tiled", False)):
        block_rows = int(profile.get("blockysize", 256))
        block_cols = int(profile.get("blockxsize", 256))
    elif "blockysize" in profile:
        block_rows, block_cols = int(profile["blockysize"]), array.shape[2]
    else:
        return array.rechunk(new) if new else array
    rows, cols = array.chunks[1:]
    if not _aligned(rows, block_rows):
        new[1] = max(1, round(max(rows) / block_rows)) * block_rows
    if not _aligned(cols, block_cols):
        new[2] = max(1, round(max(cols) / block_cols)) * block_cols
    return array.rechunk(new) if new else array
