"""What outputs ready for analysis cost: ``stats=True`` and ``overviews="auto"``.

    .venv/bin/python benchmarks/analysis.py [--size 4096] [--repeat 3]

Writes the light job (two 3-band uint16 inputs, band 1 / band 2, float32, DEFLATE,
512-px tiles) as a tiled GeoTIFF on threads (2 workers), alternately without and
with ``stats=True``, ``overviews="auto"`` (average) and both, and beside them
GDAL's own second passes: the same write, then ``ComputeStatistics`` on the
finished file (rasterio's ``dataset.stats(approx=False)``) and/or
``BuildOverviews`` (``dataset.build_overviews``), which read and decode it
again.  Prints the medians and ratios and writes
``benchmarks/RESULTS-analysis.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import run as bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS-analysis.md"))
    args = parser.parse_args()

    import dask
    import numpy as np
    import rasterio
    from jobs import light
    from rasterio.enums import Resampling

    import riomucho_dask as rmd
    from riomucho_dask.write.kernels import resample

    inputs = [bench.make_input(0, args.size), bench.make_input(1, args.size)]
    profile = bench._profile_for_rasterio(
        bench.output_profile(args.size, "float32", 512, "deflate"))
    work = tempfile.mkdtemp(prefix="rmd-stats-bench-")
    factors = resample.auto_factors(args.size, args.size, 512)
    ours = {  # to_raster's keywords
        "without": {},
        "stats=True": {"stats": True},
        'overviews="auto"': {"overviews": "auto", "overview_resampling": "average"},
        "both": {"stats": True, "overviews": "auto", "overview_resampling": "average"},
    }
    gdal = {  # after the write: (statistics, overviews)
        "GDAL ComputeStatistics after": (True, False),
        "GDAL BuildOverviews after": (False, True),
        "GDAL both after": (True, True),
    }
    times: dict[str, list[float]] = {name: [] for name in [*ours, *gdal]}
    values, levels = {}, {}
    with dask.config.set(num_workers=2), rasterio.Env(GDAL_CACHEMAX=64):
        out = rmd.map_windows(light, inputs, count=1, dtype="float32")
        rmd.to_raster(out, os.path.join(work, "warm.tif"), profile, scheduler="threads")
        for n in range(args.repeat):
            for k, name in enumerate(times):
                path = os.path.join(work, f"{n}-{k}.tif")
                started = time.perf_counter()
                rmd.to_raster(out, path, profile, scheduler="threads", **ours.get(name, {}))
                stats, overviews = gdal.get(name, (False, False))
                if stats or overviews:
                    with rasterio.open(path, "r+") as dst:
                        if overviews:
                            dst.build_overviews(factors, Resampling.average)
                        if stats:
                            values[name] = dst.stats(approx=False)[0]
                times[name].append(time.perf_counter() - started)
                if name in ("stats=True", "both"):
                    with rasterio.open(path) as src:
                        values[name] = src.stats()[0]
                if name in ("both", "GDAL both after") and n == 0:
                    levels[name] = []
                    for level in range(len(factors)):
                        with rasterio.open(path, overview_level=level) as src:
                            levels[name].append(src.read())
                os.remove(path)
    base = statistics.median(times["without"])
    lines = [
        "# What stats=True and overviews=\"auto\" cost", "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"`.venv/bin/python benchmarks/analysis.py --size {args.size} --repeat {args.repeat}`",
        f"- The light job on two {args.size} x {args.size} inputs, float32 tiled GeoTIFF "
        "(DEFLATE, 512 px), threads, 2 workers, GDAL_CACHEMAX=64; each write alternately "
        f"(medians of {args.repeat}); overviews {factors}, average.",
        "",
        "| write | median wall (s) | vs without |",
        "|---|--:|--:|",
    ]
    for name, runs in times.items():
        median = statistics.median(runs)
        lines.append(f"| {name} | {median:.2f} | {median / base:.2f}x |")
    a, b = values["both"], values["GDAL both after"]
    same = np.allclose([a.min, a.max, a.mean, a.std], [b.min, b.max, b.mean, b.std],
                       rtol=1e-9)
    equal = all(np.array_equal(x, y) for x, y in zip(levels["both"], levels["GDAL both after"]))
    lines += ["", f"Statistics equal GDAL's ComputeStatistics (rtol 1e-9): "
              f"{'yes' if same else 'no'} (min {a.min:.6g}, max {a.max:.6g}, "
              f"mean {a.mean:.9g}, std {a.std:.9g}).",
              f"Overview levels equal GDAL's BuildOverviews, pixel for pixel: "
              f"{'yes' if equal else 'no'}."]
    text = "\n".join(lines) + "\n"
    with open(args.results, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
