"""The profile an output is made through, where GDAL cannot write it window by window.

A COG (GDAL's COG driver works through CreateCopy) and the drivers that only copy
a finished raster (PNG, JPEG, WEBP, JP2OpenJPEG...) are written as a tiled GeoTIFF
intermediate, then copied once (:mod:`riomucho_dask.write.writers.cog`,
:mod:`riomucho_dask.write.writers.copied`).  Which route a profile takes and how it
splits into the intermediate's profile and the final driver's options is a
decision of the spec, made here, before anything is computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from affine import Affine

from .. import drivers

__all__ = ["BLOCK", "is_cog", "cog_split", "default_resampling", "is_copied",
           "copied_split"]

#: GTiff layout keys that the COG driver names differently or decides itself.
_LAYOUT_KEYS = {"tiled", "blockxsize", "blockysize", "interleave", "photometric"}
_DATASET_KEYS = {"driver", "count", "width", "height", "dtype", "crs", "transform", "nodata"}


def is_cog(profile: dict) -> bool:
    return str(profile.get("driver", "")).upper() == "COG"


def default_resampling(dtype: Any) -> str:
    """Overview resampling: nearest for integers (classes stay classes), average for floats."""
    return "average" if np.dtype(dtype).kind in "fc" else "nearest"


def cog_split(profile: dict) -> tuple[dict, dict]:
    """(intermediate GTiff profile, COG creation options) for a COG profile.

    Examples
    --------
    >>> inter, options = cog_split({"driver": "COG", "dtype": "uint8", "count": 1,
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


#: Tile size of the intermediate GeoTIFF.
BLOCK = 512


def is_copied(profile: dict) -> bool:
    """Whether ``profile``'s driver is written by CreateCopy only (not COG, which
    has its own route)."""
    driver = str(profile.get("driver", "GTiff"))
    return driver.upper() not in drivers.UNFILTERED and drivers.copy_only(driver)


def copied_split(profile: dict) -> tuple[dict, dict]:
    """(intermediate GTiff profile, the driver's creation options) for ``profile``.

    Examples
    --------
    >>> inter, options = copied_split({"driver": "PNG", "dtype": "uint8", "count": 1,
    ...     "width": 10, "height": 10, "zlevel": 9, "tiled": True})
    >>> inter["driver"], inter["tiled"], inter["blockxsize"]
    ('GTiff', True, 512)
    >>> options
    {'zlevel': 9}
    """
    lower = {key.lower(): value for key, value in profile.items()}
    intermediate = {key: value for key, value in lower.items() if key in drivers.DATASET_KEYS}
    if intermediate.get("transform") == Affine.identity() and not intermediate.get("crs"):
        del intermediate["transform"]  # (no georeferencing: no .aux.xml saying so, as rasterio)
    intermediate.update(
        driver="GTiff", tiled=True, blockxsize=BLOCK, blockysize=BLOCK,
        compress="deflate", zlevel=1, num_threads="all_cpus", bigtiff="if_safer",
    )
    options = {key: value for key, value in drivers.supported(lower).items()
               if key not in drivers.DATASET_KEYS}
    return intermediate, options
