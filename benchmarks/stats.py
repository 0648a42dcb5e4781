"""What ``stats=True`` costs: the light job of ``run.py`` written with and without it.

    .venv/bin/python benchmarks/stats.py [--size 4096] [--repeat 3]

Writes the light job (two 3-band uint16 inputs, band 1 / band 2, float32, DEFLATE,
512-px tiles) as a tiled GeoTIFF on threads (2 workers), alternately without and
with ``stats=True``, and beside them GDAL's own second pass: the same write,
then ``ComputeStatistics`` on the finished file (rasterio's
``dataset.stats(approx=False)``), which reads and decodes it again.  Prints
the medians and ratios and writes ``benchmarks/RESULTS-stats.md``.
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
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS-stats.md"))
    args = parser.parse_args()

    import dask
    import numpy as np
    import rasterio
    from jobs import light

    import riomucho_dask as rmd

    inputs = [bench.make_input(0, args.size), bench.make_input(1, args.size)]
    profile = bench._profile_for_rasterio(
        bench.output_profile(args.size, "float32", 512, "deflate"))
    work = tempfile.mkdtemp(prefix="rmd-stats-bench-")
    times: dict[str, list[float]] = {"without": [], "stats=True": [], "GDAL second pass": []}
    values = {}
    with dask.config.set(num_workers=2), rasterio.Env(GDAL_CACHEMAX=64):
        out = rmd.map_windows(light, inputs, count=1, dtype="float32")
        rmd.to_raster(out, os.path.join(work, "warm.tif"), profile, scheduler="threads")
        for n in range(args.repeat):
            for name in times:
                path = os.path.join(work, f"{n}-{len(name)}.tif")
                started = time.perf_counter()
                rmd.to_raster(out, path, profile, scheduler="threads",
                              stats=name == "stats=True")
                if name == "GDAL second pass":
                    with rasterio.open(path) as src:
                        values[name] = src.stats(approx=False)[0]
                times[name].append(time.perf_counter() - started)
                if name == "stats=True":
                    with rasterio.open(path) as src:
                        values[name] = src.stats()[0]
                os.remove(path)
    base = statistics.median(times["without"])
    lines = [
        "# What stats=True costs", "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"`.venv/bin/python benchmarks/stats.py --size {args.size} --repeat {args.repeat}`",
        f"- The light job on two {args.size} x {args.size} inputs, float32 tiled GeoTIFF "
        "(DEFLATE, 512 px), threads, 2 workers, GDAL_CACHEMAX=64; each write alternately "
        f"(medians of {args.repeat}).",
        "",
        "| write | median wall (s) | vs without |",
        "|---|--:|--:|",
    ]
    for name, runs in times.items():
        median = statistics.median(runs)
        lines.append(f"| {name} | {median:.2f} | {median / base:.2f}x |")
    a, b = values["stats=True"], values["GDAL second pass"]
    same = np.allclose([a.min, a.max, a.mean, a.std], [b.min, b.max, b.mean, b.std],
                       rtol=1e-9)
    lines += ["", f"Statistics equal GDAL's ComputeStatistics (rtol 1e-9): "
              f"{'yes' if same else 'no'} (min {a.min:.6g}, max {a.max:.6g}, "
              f"mean {a.mean:.9g}, std {a.std:.9g})."]
    text = "\n".join(lines) + "\n"
    with open(args.results, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
