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

__all__ = ["finish"]


def finish(intermediate: str, target: str, driver: str, options: dict) -> None:
    """Make ``target`` (a ``driver`` raster) from the finished ``intermediate``."""
    rasterio.shutil.copy(intermediate, target, driver=driver, **options)
