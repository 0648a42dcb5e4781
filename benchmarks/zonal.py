"""Zonal statistics (count and mean per field): riomucho_dask beside rasterstats and
exactextract.

    .venv/bin/python benchmarks/zonal.py                         # 8192² x 10,000 fields
    .venv/bin/python benchmarks/zonal.py --size 4096 --features 2500 --results /tmp/z.md

The data (generated once into ``benchmarks/out/zonal-SIZE``, reused): a float32 GeoTIFF
of SIZE x SIZE 10 m pixels (EPSG:32631, tiled 512, DEFLATE, nodata -9999, smooth fields
plus noise) and FEATURES fields as a GeoPackage: rotated rectangles of 0.5 to 20 ha
(50 to 2,000 pixels), aspect 1:3 to 3:1, anywhere on the raster (some overlap, some
cross its edge).

Each tool runs in a fresh process (``zonal.py --child TOOL``): the wall time includes
imports, reading the fields, and the statistics; peak RSS is the child's
(``ru_maxrss``).  riomucho_dask runs on the threaded scheduler (all cores), then on a
LocalCluster of one single-threaded worker process per core (cluster start-up not
counted).  rasterstats and exactextract run as they come (one process, one thread).
Counts are compared with rasterstats' (same rule: pixel centres); exactextract weighs
pixels by the fraction each field covers, so its count and mean differ by design
(reported as its median relative difference in mean).  Writes
``benchmarks/RESULTS-zonal.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's riomucho_dask, not an installed one


def make_data(size: int, features: int) -> tuple[Path, Path]:
    import pyogrio.raw
    import rasterio
    import shapely
    from rasterio.transform import from_origin
    from shapely import affinity
    from shapely.geometry import box

    folder = HERE / "out" / f"zonal-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    raster, fields = folder / "values.tif", folder / f"fields-{features}.gpkg"
    transform = from_origin(500000.0, 5000000.0, 10.0, 10.0)
    if not raster.exists():
        profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32",
                       crs="EPSG:32631", transform=transform, tiled=True, blockxsize=512,
                       blockysize=512, compress="deflate", nodata=-9999.0)
        rng = np.random.default_rng(0)
        with rasterio.open(raster, "w", **profile) as dst:
            for row in range(0, size, 512):
                rows, cols = np.mgrid[row:row + 512, 0:size]
                data = (np.sin(rows / 300) + np.cos(cols / 170) + rng.normal(0, 0.1, rows.shape)
                        ).astype("float32")
                data[rng.random(data.shape) < 0.001] = -9999.0
                dst.write(data[None], window=((row, row + 512), (0, size)))
    if not fields.exists():
        rng = np.random.default_rng(1)
        extent = size * 10.0
        geometries = []
        for _ in range(features):
            area = rng.uniform(5000, 200000)
            aspect = rng.uniform(1 / 3, 3)
            width, height = np.sqrt(area * aspect), np.sqrt(area / aspect)
            x, y = 500000 + rng.uniform(-100, extent), 5000000 - rng.uniform(-100, extent)
            geometries.append(affinity.rotate(box(x, y, x + width, y + height),
                                              rng.uniform(0, 90)))
        pyogrio.raw.write(fields, shapely.to_wkb(np.array(geometries)), [], fields=[],
                          geometry_type="Polygon", crs="EPSG:32631", driver="GPKG")
    return raster, fields


def child(tool: str, raster: str, fields: str) -> dict:
    start = time.perf_counter()
    if tool == "rasterstats":
        import pyogrio.raw
        import shapely
        from rasterstats import zonal_stats

        wkb = pyogrio.raw.read(fields)[2]
        out = zonal_stats(list(shapely.from_wkb(wkb)), raster, stats="count mean")
        counts = [r["count"] for r in out]
        means = [r["mean"] for r in out]
    elif tool == "exactextract":
        import pyogrio.raw
        import shapely
        from exactextract import exact_extract

        # (without GDAL's Python bindings, fiona or geopandas: GeoJSON features)
        wkb = pyogrio.raw.read(fields)[2]
        features = [{"type": "Feature", "properties": {}, "geometry": g.__geo_interface__}
                    for g in shapely.from_wkb(wkb)]
        out = exact_extract(raster, features, ["count", "mean"])
        counts = [f["properties"]["count"] for f in out]
        means = [f["properties"]["mean"] for f in out]
    else:
        import riomucho_dask as rmd

        scheduler, cluster, warm = "threads", None, None
        if tool == "rmd-cluster":
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=os.cpu_count(), threads_per_worker=1,
                                   dashboard_address=":0")
            scheduler = Client(cluster)
            warm = time.perf_counter()
        out = rmd.zonal_stats(raster, fields, stats=["count", "mean"], scheduler=scheduler)
        counts, means = [r["count"] for r in out], [r["mean"] for r in out]
        if cluster is not None:
            seconds = time.perf_counter()
            warm = seconds - warm
            workers_rss = max(scheduler.run(
                lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024).values())
            scheduler.close()
            cluster.close()
            start += time.perf_counter() - seconds  # (closing the cluster not counted)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if tool == "rmd-cluster":  # the largest worker's peak (the client holds little)
        rss = workers_rss
    return {"tool": tool, "seconds": seconds, "rss_mb": rss, "counts": counts,
            "warm": warm if tool == "rmd-cluster" else None,
            "means": [None if m is None else float(m) for m in means]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--features", type=int, default=10000)
    parser.add_argument("--only", default="rmd,rmd-cluster,rasterstats,exactextract")
    parser.add_argument("--results", default=str(HERE / "RESULTS-zonal.md"))
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the runs with GDAL's cache held to 64 MB")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "RASTER", "FIELDS"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    raster, fields = make_data(args.size, args.features)
    _, quarter = make_data(args.size, args.features // 4)

    def run(tool: str, path: Path, env: dict | None = None) -> dict:
        done = subprocess.run([sys.executable, __file__, "--child", tool, str(raster),
                               str(path)], capture_output=True, text=True, check=True,
                              env={**os.environ, **(env or {})})
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{tool} {env or ''}: {result['seconds']:.1f} s, {result['rss_mb']:.0f} MB",
              flush=True)
        return result

    runs = {tool: run(tool, fields) for tool in args.only.split(",")}
    small = {"GDAL_CACHEMAX": "64"}
    memory = {} if args.no_memory else {
        f"rmd, {args.features} fields": run("rmd", fields, small),
        f"rmd, {args.features // 4} fields": run("rmd", quarter, small),
        f"exactextract, {args.features} fields": run("exactextract", fields, small)}
    lines = [
        "# Zonal statistics: riomucho_dask, rasterstats, exactextract", "",
        f"{args.size} x {args.size} float32 (10 m, tiled 512, DEFLATE), {args.features} "
        f"fields of 0.5-20 ha (GeoPackage), count and mean; {os.cpu_count()} cores, "
        f"{platform.python_version()}; one run each (`benchmarks/zonal.py`), each tool in a "
        "fresh process, imports and reading the fields included.", "",
        "| tool | seconds | vs riomucho_dask (threads) | peak RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    base = runs.get("rmd", {}).get("seconds")
    for tool, result in runs.items():
        ratio = f"{result['seconds'] / base:.2f}x" if base else ""
        label = tool
        if result.get("warm") is not None:
            label += " (cluster start-up included)"
        lines.append(f"| {label} | {result['seconds']:.1f} | {ratio} | "
                     f"{result['rss_mb']:.0f} |")
        if result.get("warm") is not None:
            lines.append(f"| {tool}, warm (started cluster) | {result['warm']:.1f} | "
                         f"{result['warm'] / base:.2f}x | |" if base else "")
    if "rmd-cluster" in runs:
        lines += ["", "The cluster's peak RSS is its largest worker's (one single-threaded "
                  "worker process per core)."]
    if memory:
        lines += ["", "Memory with GDAL's block cache held to 64 MB (`GDAL_CACHEMAX=64`; by "
                  "default GDAL keeps up to 5% of RAM of decoded blocks, here the whole "
                  "raster, in every tool):", "",
                  "| run | seconds | peak RSS (MB) |", "|---|---:|---:|"]
        lines += [f"| {label} | {r['seconds']:.1f} | {r['rss_mb']:.0f} |"
                  for label, r in memory.items()]
    if "rmd" in runs and "rasterstats" in runs:
        same = sum(a == b for a, b in zip(runs["rmd"]["counts"], runs["rasterstats"]["counts"]))
        lines += ["", f"Counts equal to rasterstats' for {same} of {args.features} fields."]
    if "rmd" in runs and "exactextract" in runs:
        diffs = [abs(a - b) / abs(b) for a, b in zip(runs["rmd"]["means"],
                                                     runs["exactextract"]["means"])
                 if a is not None and b not in (None, 0) and np.isfinite(b)]
        lines += [f"Mean vs exactextract's (coverage-weighted): median relative difference "
                  f"{np.median(diffs):.2e}."]
    Path(args.results).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
