"""Outputs GDAL writes only by copying a finished raster (CreateCopy).

PNG, JPEG, WEBP, JP2OpenJPEG (and GIF, AAIGrid, XYZ...) cannot be written
window by window.  As for a COG (:mod:`riomucho_dask.write.writers.cog`), the blocks
go into a tiled GeoTIFF intermediate beside the target; once every window is
in, ``rasterio.shutil.copy`` makes the output from it in one pass, as
``rasterio.open(path, "w", driver=...)`` does from its in-memory dataset,
with the creation options the driver lists.  The copy is made in the
output's private directory, under the output's own name, so that GDAL names
the side-cars it writes (``.aux.xml``, world files) after the output.
"""

from __future__ import annotations

import rasterio.shutil
from affine import Affine

from ..spec import drivers

__all__ = ["is_copied", "split_profile", "finish"]

#: Tile size of the intermediate GeoTIFF.
BLOCK = 512


def is_copied(profile: dict) -> bool:
    """Whether ``profile``'s driver is written by CreateCopy only (not COG, which
    has its own route)."""
    driver = str(profile.get("driver", "GTiff"))
    return driver.upper() not in drivers.UNFILTERED and drivers.copy_only(driver)


def split_profile(profile: dict) -> tuple[dict, dict]:
    """(intermediate GTiff profile, the driver's creation options) for ``profile``.

    Examples
    --------
    >>> inter, options = split_profile({"driver": "PNG", "dtype": "uint8", "count": 1,
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


def finish(intermediate: str, target: str, driver: str, options: dict) -> None:
    """Make ``target`` (a ``driver`` raster) from the finished ``intermediate``."""
    rasterio.shutil.copy(intermediate, target, driver=driver, **options)
