"""Cloud Optimized GeoTIFF output: a tiled intermediate, then one CreateCopy.

GDAL's COG driver cannot be written window by window (it works through
CreateCopy), so :class:`~riomucho_dask.store.RasterStore` writes a tiled
GeoTIFF intermediate beside the target and, once every window is in, makes
the COG from it in one pass, overviews included.
"""

from __future__ import annotations

import rasterio.shutil

__all__ = ["finish"]


def finish(intermediate: str, target: str, options: dict) -> None:
    """Create the COG ``target`` from the finished ``intermediate``."""
    rasterio.shutil.copy(intermediate, target, driver="COG", **options)
