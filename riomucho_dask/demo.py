"""``python -m riomucho_dask.demo [OUTDIR]``: the main job, end to end.

Generates a deterministic synthetic scene (an RGB raster and a NIR raster,
5000 x 5000, tiled, DEFLATE), runs the command line on it to compute NDVI
from both into a Cloud Optimized GeoTIFF, with a progress bar, and prints
where the output is, its size and statistics, and a PNG quick-look.
"""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

SIZE = 5000
BLOCK = 256


def make_scene(directory: str, size: int = SIZE, *, block: int = BLOCK) -> tuple[str, str]:
    """Write ``rgb.tif`` (3 bands) and ``nir.tif`` (1 band), uint16, in ``directory``.

    Content is deterministic: smooth "fields" and a river, plus noise, so
    the NDVI has structure to look at.  Existing files are reused.
    """
    os.makedirs(directory, exist_ok=True)
    rgb_path = os.path.join(directory, "rgb.tif")
    nir_path = os.path.join(directory, "nir.tif")
    if _has_size(rgb_path, size) and _has_size(nir_path, size):
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


def _has_size(path: str, size: int) -> bool:
    if not os.path.exists(path):
        return False
    with rasterio.open(path) as src:
        return src.width == size and src.height == size


def ndvi(data, window, ij, global_args):
    """Normalized difference vegetation index from (rgb, nir) inputs."""
    red = data[0][0].astype("float32")
    nir = data[1][0].astype("float32")
    return ((nir - red) / (nir + red + 1e-9))[None]


def quicklook(path: str, png: str, *, size: int = 512) -> None:
    """A colour PNG of an NDVI raster, from its overviews: brown (bare) to green."""
    with rasterio.open(path) as src:
        scale = max(src.width, src.height) / size
        shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        ndvi_values = src.read(1, out_shape=shape, masked=True).filled(np.nan)
    t = np.clip((np.nan_to_num(ndvi_values, nan=-1.0) + 0.2) / 1.1, 0, 1)
    bare, lush, water = np.array([166, 124, 82]), np.array([26, 120, 40]), np.array([40, 70, 160])
    rgb = bare[:, None, None] * (1 - t) + lush[:, None, None] * t
    rgb = np.where(ndvi_values < -0.2, water[:, None, None], rgb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a picture, not a map
        with rasterio.open(png, "w", driver="PNG", width=shape[1], height=shape[0], count=3,
                           dtype="uint8") as dst:
            dst.write(rgb.astype("uint8"))


def main(argv: list[str] | None = None) -> int:
    """Make the scene, run the CLI on it (COG output, progress bar), summarize."""
    import shlex
    import subprocess

    argv = sys.argv[1:] if argv is None else argv
    directory = os.path.abspath(argv[0] if argv else "demo-output")
    size = int(argv[1]) if len(argv) > 1 else SIZE
    started = time.perf_counter()
    rgb, nir = make_scene(directory, size)
    made = time.perf_counter()
    print(f"inputs:   {rgb} (3 bands), {nir} (1 band), {size} x {size} uint16")
    target = os.path.join(directory, "ndvi.tif")
    command = [
        os.path.join(os.path.dirname(sys.executable), "riomucho-dask"), "run",
        "riomucho_dask.demo:ndvi", rgb, nir, target, "--count", "1", "--dtype", "float32",
        "--driver", "COG", "--co", "compress=deflate", "--co", "predictor=3",
        "--progress", "--overwrite",
    ]
    print("command: ", shlex.join(["riomucho-dask", *command[1:]]))
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    done = time.perf_counter()
    png = os.path.join(directory, "ndvi-quicklook.png")
    quicklook(target, png)
    with rasterio.open(target) as src:
        values = src.read(1, masked=True)
        print(f"output:   {target}")
        print(
            f"summary:  Cloud Optimized GeoTIFF, {src.width} x {src.height} {src.dtypes[0]} "
            f"{src.crs}, overviews {src.overviews(1)}, {os.path.getsize(target) / 1e6:.1f} MB; "
            f"NDVI min {values.min():.3f} mean {values.mean():.3f} max {values.max():.3f}"
        )
    print(f"quicklook: {png}")
    print(f"time:     scene {made - started:.1f} s, pipeline {done - made:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
