"""riomucho_dask: run a function over big rasters in parallel, lazily, on Dask.

The lazy API::

    import riomucho_dask as rmd

    def ndvi(data, window, ij, global_args):
        red, nir = data[0][0].astype("float32"), data[1][0].astype("float32")
        return ((nir - red) / (nir + red + 1e-9))[None]

    out = rmd.map_windows(ndvi, ["a.tif", "b.tif"], count=1, dtype="float32")
    rmd.to_raster(out, "out.tif", like="a.tif", compress="deflate")

``rmd.compute`` writes several outputs of one computation together;
``rmd.to_xarray`` gives a result coordinates (the ``xarray`` extra).

Reading (``read``), mapping (``map``), writing (``write``) and running
(``execute``) live in one subpackage each.

rio-mucho code runs unchanged with ``import riomucho_dask as riomucho``.
"""

from __future__ import annotations

from . import errors
from .dataarrays import to_xarray
from .map import map_windows
from .read import open_raster
from .read.grid import Grid
from .read.series import Series
from .read.stac import stac_series
from .shim import MuchoChildError, RioMucho, tb_capture
from .timings import Report
from .vector import rasterize, zonal_stats
from .write import RasterStore, RasterWrite, compute, to_raster

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "errors",
    "open_raster",
    "Grid",
    "Series",
    "stac_series",
    "map_windows",
    "to_raster",
    "to_xarray",
    "compute",
    "rasterize",
    "zonal_stats",
    "RasterWrite",
    "RasterStore",
    "Report",
    "RioMucho",
    "MuchoChildError",
    "tb_capture",
]
