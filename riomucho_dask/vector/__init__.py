"""Vectors on the grid: shapes rasterized window by window, and zonal statistics.

An optional extra: ``pip install "riomucho_dask[vector]"`` (shapely, pyogrio).
Nothing here imports shapely until shapes are given: ``import riomucho_dask``
works without it, and using these says which extra to install.

- :mod:`.shapes`: what users give, made into geometries on a grid, with an index;
- :mod:`.rasterize`: the shapes as a source (an array that knows its grid);
- :mod:`.zonal`: per-feature statistics of a raster, merged by a tree of tasks.
"""

from __future__ import annotations

from .rasterize import rasterize
from .zonal import zonal_stats

__all__ = ["rasterize", "zonal_stats"]
