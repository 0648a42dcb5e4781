"""``python -m riomucho_dask.demo [OUTDIR]``: the main job, end to end.

Generates a deterministic synthetic scene (an RGB raster and a NIR raster,
3000 x 3000, tiled, DEFLATE), computes NDVI from both through the lazy
pipeline, writes a tiled float32 GeoTIFF and prints where it is.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import rasterio
from rasterio.transform import from_origin

SIZE = 3000
BLOCK = 256


def make_scene(directory: str, size: int = SIZE, *, block: int = BLOCK) -> tuple[str, str]:
    """Write ``rgb.tif`` (3 bands) and ``nir.tif`` (1 band), uint16, in ``directory``.

    Content is deterministic: smooth "fields" and a river, plus noise, so
    the NDVI has structure to look at.  Existing files are reused.
    """
    os.makedirs(directory, exist_ok=True)
    rgb_path = os.path.join(directory, "rgb.tif")
    nir_path = os.path.join(directory, "nir.tif")
    if os.path.exists(rgb_path) and os.path.exists(nir_path):
        return rgb_path, nir_path
    rng = np.random.default_rng(42)
    rows, cols = np.mgrid[0:size, 0:size].astype("float32") / size
    vegetation = 0.5 + 0.5 * np.sin(8 * rows + 3 * np.cos(5 * cols)) * np.cos(6 * cols)
    river = np.exp(-(((rows - 0.5 - 0.15 * np.sin(9 * cols)) / 0.02) ** 2))
    vegetation = np.clip(vegetation * (1 - river), 0, 1)
    noise = lambda: rng.normal(0, 150, size=(size, size)).astype("float32")  # noqa: E731
    red = 3000 - 2000 * vegetation + 500 * river + noise()
    green = 2500 - 800 * vegetation + 600 * river + noise()
    blue = 2000 - 500 * vegetation + 900 * river + noise()
    nir = 2000 + 4000 * vegetation - 1500 * river + noise()
    profile = dict(
        driver="GTiff", height=size, width=size, dtype="uint16", nodata=0,
        crs="EPSG:32633", transform=from_origin(400000.0, 5800000.0, 10.0, 10.0),
        tiled=True, blockxsize=block, blockysize=block, compress="deflate",
    )

    def as_uint16(band):
        return np.clip(band, 1, 65535).astype("uint16")

    with rasterio.open(rgb_path + ".part", "w", count=3, **profile) as dst:
        dst.write(np.stack([as_uint16(red), as_uint16(green), as_uint16(blue)]))
    with rasterio.open(nir_path + ".part", "w", count=1, **profile) as dst:
        dst.write(as_uint16(nir)[None])
    os.replace(rgb_path + ".part", rgb_path)
    os.replace(nir_path + ".part", nir_path)
    return rgb_path, nir_path


def ndvi(data, window, ij, global_args):
    """Normalized difference vegetation index from (rgb, nir) inputs."""
    red = data[0][0].astype("float32")
    nir = data[1][0].astype("float32")
    return ((nir - red) / (nir + red + 1e-9))[None]


def main(argv: list[str] | None = None) -> int:
    import riomucho_dask as rmd

    argv = sys.argv[1:] if argv is None else argv
    directory = os.path.abspath(argv[0] if argv else "demo-output")
    started = time.perf_counter()
    rgb, nir = make_scene(directory)
    made = time.perf_counter()
    out = rmd.map_windows(ndvi, [rgb, nir], count=1, dtype="float32")
    print(f"inputs:  {rgb} (3 bands), {nir} (1 band), {SIZE} x {SIZE}")
    print(f"lazy:    {out!r}")
    target = os.path.join(directory, "ndvi.tif")
    rmd.to_raster(out, target, like=rgb, compress="deflate", progress=sys.stderr.isatty())
    done = time.perf_counter()
    with rasterio.open(target) as src:
        values = src.read(1, masked=True)
        print(f"output:  {target}")
        print(
            f"summary: {src.width} x {src.height} {src.dtypes[0]} {src.crs}, "
            f"{os.path.getsize(target) / 1e6:.1f} MB, NDVI min {values.min():.3f} "
            f"mean {values.mean():.3f} max {values.max():.3f}; scene {made - started:.1f} s, "
            f"pipeline {done - made:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
