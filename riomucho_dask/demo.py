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

from .read.grid import apply

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


def make_examples(directory: str = ".") -> list[str]:
    """Write the small rasters the README's examples use into ``directory`` and
    return their names: ``scene_a.tif`` (3 bands) and ``scene_b.tif`` (NIR),
    ``B04_10m.tif`` and ``B11_20m.tif`` (a 10 m and a 20 m band of one UTM
    tile), ``dem_4326.tif`` (a DEM in EPSG:4326 over it), four mosaic tiles
    ``n45e006.tif`` ... ``n46e007.tif`` covering it, ``dem.tif`` (a DEM on the
    scene's grid) and ``input1.tif``/``input2.tif`` (rio-mucho's example).

    Examples
    --------
    >>> import tempfile
    >>> names = make_examples(tempfile.mkdtemp())
    >>> names[:2]
    ['scene_a.tif', 'scene_b.tif']
    """
    from affine import Affine
    from rasterio.warp import transform_bounds


    rng = np.random.default_rng(7)
    utm = "EPSG:32633"
    written = []

    def field(height: int, width: int, scale: float = 1.0) -> np.ndarray:
        rows, cols = np.mgrid[0:height, 0:width].astype("float32") * scale / 256
        return 0.5 + 0.5 * np.sin(3 * rows + 2 * np.cos(2 * cols)) * np.cos(2.5 * cols)

    def write(name: str, data: np.ndarray, crs: str, transform, **extra) -> None:
        profile = dict(driver="GTiff", count=data.shape[0], height=data.shape[1],
                       width=data.shape[2], dtype=data.dtype.name, crs=crs,
                       transform=transform, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate", **extra)
        with rasterio.open(os.path.join(directory, name), "w", **profile) as dst:
            dst.write(data)
        written.append(name)

    def uint16(values: np.ndarray) -> np.ndarray:
        return np.clip(values + rng.normal(0, 40, values.shape), 1, 65535).astype("uint16")

    os.makedirs(directory, exist_ok=True)
    green = field(512, 512)
    scene = Affine(10, 0, 300000, 0, -10, 5000040)
    write("scene_a.tif", np.stack([uint16(3000 - 2000 * green), uint16(2500 - 800 * green),
                                   uint16(2000 - 500 * green)]), utm, scene, nodata=0)
    write("scene_b.tif", uint16(2000 + 4000 * green)[None], utm, scene, nodata=0)
    write("B04_10m.tif", uint16(3000 - 2000 * field(1098, 1098))[None], utm, scene)
    write("B11_20m.tif", uint16(2500 - 1000 * field(549, 549, 2.0))[None], utm,
          Affine(20, 0, 300000, 0, -20, 5000040))
    left, bottom, right, top = transform_bounds(utm, "EPSG:4326", 300000, 5000040 - 10980,
                                                310980, 5000040)
    height = width = 300
    step_x, step_y = (right - left + 0.02) / width, (top - bottom + 0.02) / height
    write("dem_4326.tif", (800 + 400 * field(height, width, 3.0)).astype("float32")[None],
          "EPSG:4326", Affine(step_x, 0, left - 0.01, 0, -step_y, top + 0.01))
    for name, (row, col) in zip(["n45e006.tif", "n45e007.tif", "n46e006.tif", "n46e007.tif"],
                                [(549, 0), (549, 549), (0, 0), (0, 549)]):
        write(name, uint16(1500 + 500 * field(549, 549))[None], utm,
              apply(scene, Affine.translation(col, row)), nodata=0)
    write("dem.tif", (500 + 300 * field(512, 512, 2.0)).astype("float32")[None], utm, scene)
    for n in (1, 2):
        write(f"input{n}.tif", uint16(1000 * n + 500 * field(256, 256))[None], utm, scene)
    return written


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
