"""xarray in and out: rioxarray DataArrays as inputs, :func:`to_xarray`, and
``to_raster`` of a DataArray.

An optional extra: ``pip install "riomucho_dask[xarray]"`` (xarray and
rioxarray).  Without them everything else imports and works; using this
says which extra to install.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import dask.array as da
import numpy as np

from .errors import InputError, MissingExtraError, ProfileError
from .nodata import nodata_fits
from .read import RasterInfo, array_grids, array_series, inputs_nodata, raster_info

__all__ = ["is_dataarray", "as_input", "georeferencing", "to_xarray"]

#: Chunk size, in pixels, for DataArrays that hold numpy arrays.
NUMPY_CHUNK = 512


def is_dataarray(obj: Any) -> bool:
    """Whether ``obj`` is an ``xarray.DataArray`` (without importing xarray)."""
    xr = sys.modules.get("xarray")
    return xr is not None and isinstance(obj, xr.DataArray)


def _require():
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray
    except ImportError as err:
        raise MissingExtraError(
            "DataArrays need xarray and rioxarray: pip install \"riomucho_dask[xarray]\""
        ) from err
    return xarray


def _as_3d(array: Any, label: str) -> da.Array:
    """The DataArray's data as a ``(band, y, x)`` dask array."""
    if array.dims not in (("band", "y", "x"), ("y", "x")):
        raise InputError(
            f"{label} has dims {array.dims}: expected ('band', 'y', 'x') or ('y', 'x'), "
            "rioxarray's layout"
        )
    if array.chunks is None:  # not dask-backed: chunk it lazily (no read here)
        array = array.chunk({"y": NUMPY_CHUNK, "x": NUMPY_CHUNK})
    data = array.data
    return data if data.ndim == 3 else data[np.newaxis]


def georeferencing(array: Any, label: str = "the DataArray") -> dict:
    """``{"crs", "transform", "nodata"}`` from a DataArray's ``.rio`` metadata."""
    _require()
    crs = array.rio.crs
    if crs is None:
        raise ProfileError(
            f"{label} has no CRS (.rio.crs is None): set it with .rio.write_crs(...), "
            "or pass like= or profile="
        )
    y = array["y"].values if "y" in array.coords else None
    if y is not None and y.ndim == 1 and y.size > 1 and y[1] > y[0]:
        raise ProfileError(
            f"{label} has its y coordinate running upward (south up): "
            ".sortby('y', ascending=False) puts north up, as rasters are written"
        )
    scale, offset = array.attrs.get("scale_factor", 1), array.attrs.get("add_offset", 0)
    if scale != 1 or offset != 0:
        raise ProfileError(
            f"{label} has scale_factor={scale} and add_offset={offset}: its raw values "
            "would be written without them; decode it first (open_rasterio(..., "
            "mask_and_scale=True)) or drop the attributes"
        )
    return {"crs": crs, "transform": array.rio.transform(), "nodata": array.rio.nodata}


def as_input(array: Any, position: int) -> tuple[da.Array, str, RasterInfo]:
    """A DataArray input of ``map_windows``: its ``(band, y, x)`` dask array, its
    label, and its georeferencing as a :class:`RasterInfo` (no file behind it)."""
    label = f"input {position} (DataArray{' ' + repr(array.name) if array.name else ''})"
    data = _as_3d(array, label)
    georef = georeferencing(array, label)
    count, height, width = data.shape
    info = RasterInfo(path=label, count=count, height=height, width=width,
                      dtype=str(data.dtype), block_shape=tuple(data.chunksize[1:]),
                      crs=georef["crs"], transform=georef["transform"],
                      nodata=georef["nodata"], profile={}, signature=None)
    return data, label, info


def for_writing(array: Any) -> tuple[da.Array, dict]:
    """``to_raster`` of a DataArray: its ``(band, y, x)`` data and georeferencing."""
    return _as_3d(array, "the DataArray"), georeferencing(array)


def to_xarray(array: da.Array, like: Any = None) -> Any:
    """A lazy DataArray with georeferencing: ``(band, y, x)``, or ``(time, band,
    y, x)`` for a series.

    Its ``x``/``y`` coordinates, CRS, transform and nodata are those
    ``rioxarray.open_rasterio`` gives for the raster ``to_raster`` writes
    (``like``'s nodata only while the array keeps its dtype).

    Parameters
    ----------
    array : dask.array.Array
        ``(count, rows, cols)`` or ``(rows, cols)``, as from :func:`map_windows`
        or :func:`open_raster`; or ``(time, band, rows, cols)``, as from
        ``open_raster`` of a :class:`~riomucho_dask.Series`.
    like : str, os.PathLike or xarray.DataArray, optional
        A raster, or a georeferenced DataArray, of the same height and width.
        Default: the grid the array was read on (its graph says which), with
        the inputs' nodata when the array keeps their dtype.

    Returns
    -------
    xarray.DataArray
        Nothing computed: slice it, plot it, or write it with ``to_raster``.
        A series' ``time`` coordinate holds its steps' times (UTC) and
        ``band`` its band names (a STAC series' asset keys) or numbers.

    Raises
    ------
    MissingExtraError
        xarray or rioxarray is not installed.
    ProfileError
        ``like`` has another height or width, or no CRS; without ``like``, an
        array whose graph reads no raster or rasters on several grids.

    Examples
    --------
    >>> import riomucho_dask as rmd
    >>> out = rmd.map_windows(lambda d, w, ij, g: d[0][:1], ["scene_a.tif"])
    >>> x = rmd.to_xarray(out, like="scene_a.tif")
    >>> x.dims, x.sizes["x"], str(x.rio.crs)
    (('band', 'y', 'x'), 131, 'EPSG:32631')
    >>> rmd.to_xarray(out).rio.transform() == x.rio.transform()
    True
    >>> s = rmd.Series([("2024-05-01", "scene_a.tif"), ("2024-05-09", "scene_a.tif")])
    >>> cube = rmd.to_xarray(rmd.open_raster(s, grid="scene_a.tif"))
    >>> cube.dims, str(cube.time.values[1])[:10]
    (('time', 'band', 'y', 'x'), '2024-05-09')
    """
    xr = _require()
    from rioxarray.rioxarray import affine_to_coords

    if not isinstance(array, da.Array):
        array = da.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim not in (3, 4):
        raise ProfileError(f"to_xarray takes (band, rows, cols) or (time, band, rows, cols) "
                           f"arrays, not shape {array.shape}")
    if like is None:  # (the nodata only when the array keeps the inputs' dtype)
        georef, height, width = _own_georeferencing(array)
        like_dtype = array.dtype
    elif is_dataarray(like):
        georef = georeferencing(like, "like")
        height, width = like.sizes["y"], like.sizes["x"]
        like_dtype = like.dtype
    else:
        info = raster_info(like)
        georef = {"crs": info.crs, "transform": info.transform, "nodata": info.nodata}
        height, width = info.height, info.width
        like_dtype = info.dtype
    if array.shape[-2:] != (height, width):
        raise ProfileError(
            f"the array is {array.shape[-2]} x {array.shape[-1]} but "
            f"{'the grid it was read on' if like is None else f'like={like!r}'} is "
            f"{height} x {width}: georeferencing would not match"
        )
    bands = np.arange(1, array.shape[-3] + 1)
    dims: tuple = ("band", "y", "x")
    coords: dict = {}
    if array.ndim == 4:
        series = array_series(array)
        if len(series) != 1 or series[0].shape[:2] != array.shape[:2]:
            raise ProfileError(
                f"to_xarray of a (time, band, rows, cols) array {array.shape} needs the "
                "array of one series as open_raster made it (its times and bands)")
        (source,) = series
        times = [t.astimezone(dt.timezone.utc).replace(tzinfo=None) for t in source.times]
        coords["time"] = np.array(times, dtype="datetime64[ns]")
        if source.bands is not None:
            bands = list(source.bands)
        dims = ("time", *dims)
    coords["band"] = bands
    spatial = affine_to_coords(georef["transform"], width, height)
    if spatial["x"].ndim == 2:  # a rotated transform: 2-D coordinates, as open_rasterio
        coords.update(xc=(("y", "x"), spatial["x"]), yc=(("y", "x"), spatial["y"]))
    else:
        coords.update(spatial)
    result = xr.DataArray(array, dims=dims, coords=coords)
    result = result.rio.write_crs(georef["crs"]).rio.write_transform(georef["transform"])
    nodata = georef["nodata"]
    # as to_raster takes it: only while the array keeps like's dtype
    if nodata is not None and np.dtype(like_dtype) == array.dtype and \
            nodata_fits(nodata, array.dtype):
        result = result.rio.write_nodata(nodata, encoded=False)
    return result


def _own_georeferencing(array: da.Array) -> tuple[dict, int, int]:
    """``({"crs", "transform", "nodata"}, height, width)`` of the one grid an
    array's graph reads."""
    grids = array_grids(array)
    if len(grids) != 1:
        what = "reads no raster" if not grids else f"reads rasters on {len(grids)} grids"
        raise ProfileError(f"to_xarray needs georeferencing: the array {what}; pass like= "
                           "(a raster or a georeferenced DataArray)")
    (grid,) = grids
    return ({"crs": grid.crs, "transform": grid.transform, "nodata": inputs_nodata(array)},
            *grid.shape)
