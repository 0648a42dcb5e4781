"""Cloud Optimized GeoTIFF output: a tiled intermediate, then one CreateCopy.

GDAL's COG driver cannot be written window by window (it works through
CreateCopy), so :class:`~riomucho_dask.store.RasterStore` writes a tiled
GeoTIFF intermediate beside the target and, once every window is in, makes
the COG from it in one pass, overviews included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import rasterio.shutil

__all__ = ["is_cog", "split_profile", "finish"]

#: GTiff layout keys that the COG driver names differently or decides itself.
_LAYOUT_KEYS = {"tiled", "blockxsize", "blockysize", "interleave", "photometric"}
_DATASET_KEYS = {"driver", "count", "width", "height", "dtype", "crs", "transform", "nodata"}


def is_cog(profile: dict) -> bool:
    return str(profile.get("driver", "")).upper() == "COG"


def default_resampling(dtype: Any) -> str:
    """Overview resampling: nearest for integers (classes stay classes), average for floats."""
    return "average" if np.dtype(dtype).kind in "fc" else "nearest"


def split_profile(profile: dict) -> tuple[dict, dict]:
    """(intermediate GTiff profile, COG creation options) for a COG profile.

    Examples
    --------
    >>> inter, options = split_profile({"driver": "COG", "dtype": "uint8", "count": 1,
    ...     "width": 10, "height": 10, "compress": "deflate"})
    >>> inter["driver"], inter["tiled"], inter["blockxsize"]
    ('GTiff', True, 512)
    >>> sorted(options.items())
    [('blocksize', 512), ('compress', 'deflate'), ('overview_resampling', 'nearest')]
    """
    lower = {key.lower(): value for key, value in profile.items()}
    block = int(lower.get("blocksize", lower.get("blockxsize", 512)))
    intermediate = {key: value for key, value in lower.items() if key in _DATASET_KEYS}
    intermediate.update(
        driver="GTiff", tiled=True, blockxsize=block, blockysize=block,
        compress="deflate", zlevel=1, num_threads="all_cpus", bigtiff="if_safer",
    )
    options = {
        key: value for key, value in lower.items()
        if key not in _DATASET_KEYS and key not in _LAYOUT_KEYS and key != "blocksize"
    }
    options["blocksize"] = block
    if "resampling" in options:  # the COG driver's other name for it
        options["overview_resampling"] = options.pop("resampling")
    options.setdefault("overview_resampling", default_resampling(profile["dtype"]))
    return intermediate, options


def finish(intermediate: str, target: str, options: dict) -> None:
    """Create the COG ``target`` from the finished ``intermediate``."""
    rasterio.shutil.copy(intermediate, target, driver="COG", **options)
