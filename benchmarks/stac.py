"""A clear-sky median composite from STAC items over HTTP: riomucho_dask beside odc-stac
(and stackstac, if installed).

    .venv/bin/python benchmarks/stac.py                    # everything (~25 min on 2 cores)
    .venv/bin/python benchmarks/stac.py --no-growth        # the main table only
    .venv/bin/python benchmarks/stac.py --only rmd,odc --growth 20,60 --results /tmp/s.md

A local catalog (generated once into ``benchmarks/out/stac-catalog``, reused): 60 dates
x 3 tiles x 2 assets (``red``, ``nir``, 10 m) of 1024 x 1024 uint16 GeoTIFFs (tiled 512,
DEFLATE, nodata 0), tiles ``A`` and ``C`` in EPSG:32631 and ``B`` in EPSG:32632 around
6°E 45°N (the zones' border), overlapping, each date with its own "clouds" (nodata
ellipses).  It is served by a plain HTTP server with range requests, in a process of
its own on 127.0.0.1 (tests/conftest.py's ``STAC_HTTP_SERVER``).  Items are STAC Item
dicts with projection v2 (``proj:code``, ``proj:transform``, ``proj:shape`` on each
asset) and ``raster:bands``; more than 60 dates reuse the files under new ids and
datetimes.

The job, for each library: the items of each solar day mosaicked (first valid pixel
wins), the per-pixel median over time of the valid pixels (NaN where none), both bands,
on the union of the tiles on EPSG:32631 at 10 m (nearest), written as a float32 COG
(DEFLATE, 512-px tiles, average overviews).  Every run is a fresh process
(``stac.py --child SPEC``, ``GDAL_CACHEMAX=64``): its wall time includes interpreter
start-up, imports, graph build, compute and write; the same process then runs the job a
second time (the "warm" figures, reported beside).  Peak RSS is the process tree's
(psutil, every 50 ms), up to the end of the first run.  The outputs are compared pixel
for pixel.  Then the graph build time and the peak RSS of riomucho_dask and odc-stac at
20, 60, 120 and 200 dates (on one 512 x 512 window).  Writes ``benchmarks/RESULTS-stac.md``
(the measured part: an analysis is added by hand).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time

START = time.time()  # the child's start, before its imports (the parent has its own clock)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
CATALOG = os.path.join(OUT, "stac-catalog")
WORK = os.path.join(OUT, "stac-run")
RESULTS = os.path.join(HERE, "RESULTS-stac.md")

DATES = 60
SIZE = 1024
BLOCK = 512
ASSETS = ("red", "nir")
GRID_CRS = "EPSG:32631"
RES = 10.0
LONLAT = (6.0, 45.0)
#: tile, CRS, shift (east, north) in metres of its centre from 6°E 45°N, minutes after 10:06Z
TILES = (("A", "EPSG:32631", (0.0, 0.0), 0),
         ("B", "EPSG:32632", (4000.0, -3000.0), 0),
         ("C", "EPSG:32631", (-4500.0, 4000.0), 10))
FIRST_DAY = dt.date(2024, 3, 1)
REVISIT_DAYS = 5
GDAL_CACHEMAX_MB = "64"
SAMPLE_SECONDS = 0.05
LIBRARIES = ("rmd", "rmd-cluster", "odc", "odc-rechunk", "stackstac")
#: Diagnostic, not run by default (``--only rmd-approx``): riomucho_dask with GDAL's
#: default warper tolerance (0.125 px) instead of its exact transformer, as odc-stac reads.
DIAGNOSTICS = ("rmd-approx",)
#: Memory diagnostics (``--only rmd-inplace,rmd-w256,rmd-inplace-w256``): riomucho_dask
#: with a run function that makes one float32 copy instead of two (``rmd_median_inplace``),
#: with windows of 256 x 256 instead of 512 x 512 (``windows=``), and both.
DIAGNOSTICS += ("rmd-inplace", "rmd-w256", "rmd-inplace-w256")
#: Window side of the ``-w256`` diagnostics.
SMALL_WINDOW = 256
LABELS = {"rmd": "riomucho_dask (threads)",
          "rmd-approx": "riomucho_dask, GDAL's approximate transformer (diagnostic)",
          "rmd-cluster": "riomucho_dask (LocalCluster 2x1)",
          "rmd-inplace": "riomucho_dask, one float32 copy (diagnostic)",
          "rmd-w256": "riomucho_dask, windows 256 x 256 (diagnostic)",
          "rmd-inplace-w256": "riomucho_dask, one float32 copy, windows 256 x 256 (diagnostic)",
          "odc": "odc-stac (threads)",
          "odc-rechunk": "odc-stac, time rechunked (threads)",
          "stackstac": "stackstac (threads)"}
GROWTH = (20, 60, 120, 200)
HTTP_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


# -- the catalog ----------------------------------------------------------------------


def _tile_origin(crs: str, shift) -> tuple[float, float]:
    from rasterio.warp import transform as transform_points

    xs, ys = transform_points("EPSG:4326", crs, [LONLAT[0]], [LONLAT[1]])
    half = SIZE * RES / 2
    snap = 2 * RES
    return (round((xs[0] + shift[0] - half) / snap) * snap,
            round((ys[0] + shift[1] + half) / snap) * snap)


def _clouds(rng, shape):
    """Nodata patches: 2 to 7 ellipses (radii 30 to 260 px), different for every date."""
    import numpy as np

    rows, cols = np.ogrid[0:shape[0], 0:shape[1]]
    mask = np.zeros(shape, bool)
    for _ in range(rng.integers(2, 8)):
        r0, c0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        a, b = rng.uniform(30, 260, 2)
        mask |= ((rows - r0) / a) ** 2 + ((cols - c0) / b) ** 2 < 1
    return mask


def _file(date_index: int, tile: str, asset: str) -> str:
    return f"{date_index:03d}_{tile}_{asset}.tif"


def make_catalog(folder: str = CATALOG) -> None:
    """Write the 60 x 3 x 2 GeoTIFFs into ``folder`` once (a marker file says done)."""
    import numpy as np
    import rasterio
    from affine import Affine

    done = os.path.join(folder, "COMPLETE")
    if os.path.exists(done):
        return
    os.makedirs(folder, exist_ok=True)
    started = time.perf_counter()
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    for t, (tile, crs, shift, _) in enumerate(TILES):
        origin = _tile_origin(crs, shift)
        transform = Affine(RES, 0, origin[0], 0, -RES, origin[1])
        profile = dict(driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="uint16",
                       crs=crs, transform=transform, nodata=0, tiled=True,
                       blockxsize=BLOCK, blockysize=BLOCK, compress="deflate")
        base = {a: 1500 + 700 * np.sin(5 * yy + t + k) * np.cos(4 * xx - t + 2 * k)
                for k, a in enumerate(ASSETS)}
        for d in range(DATES):
            rng = np.random.default_rng([d, t])
            cloud = _clouds(rng, (SIZE, SIZE))
            for k, asset in enumerate(ASSETS):
                data = base[asset] + 1000 * k + 300 * np.sin(d / 7 + k)
                data = np.clip(data + rng.normal(0, 80, (SIZE, SIZE)), 1, 9999)
                data = data.astype("uint16")
                data[cloud] = 0
                with rasterio.open(os.path.join(folder, _file(d, tile, asset)), "w",
                                   **profile) as dst:
                    dst.write(data, 1)
    with open(done, "w") as f:
        f.write(f"{time.perf_counter() - started:.1f} s\n")


def _footprint(crs, transform):
    from rasterio.warp import transform as transform_points

    x0, y0 = transform.c, transform.f
    side = SIZE * RES
    xs = [x0 + side * f for f in (0, .25, .5, .75, 1)] + [x0 + side] * 4 + \
         [x0 + side * f for f in (.75, .5, .25, 0)] + [x0] * 4
    ys = [y0] * 5 + [y0 - side * f for f in (.25, .5, .75, 1)] + [y0 - side] * 4 + \
         [y0 - side * f for f in (.75, .5, .25, 0)]
    lons, lats = transform_points(crs, "EPSG:4326", xs, ys)
    ring = [[round(a, 9), round(b, 9)] for a, b in zip(lons, lats)]
    return ({"type": "Polygon", "coordinates": [ring]},
            [min(lons), min(lats), max(lons), max(lats)])


def make_items(dates: int, base_url: str) -> list[dict]:
    """STAC Item dicts for ``dates`` dates (date k reads the files of date k % 60)."""
    from affine import Affine

    items = []
    for k in range(dates):
        day = FIRST_DAY + dt.timedelta(days=REVISIT_DAYS * k)
        for tile, crs, shift, minutes in TILES:
            origin = _tile_origin(crs, shift)
            transform = Affine(RES, 0, origin[0], 0, -RES, origin[1])
            geometry, bbox = _footprint(crs, transform)
            when = dt.datetime(day.year, day.month, day.day, 10, 6 + minutes,
                               tzinfo=dt.timezone.utc)
            assets = {}
            for asset in ASSETS:
                assets[asset] = {
                    "href": f"{base_url}/{_file(k % DATES, tile, asset)}",
                    "type": "image/tiff; application=geotiff", "roles": ["data"],
                    "proj:code": crs, "proj:transform": list(transform)[:6],
                    "proj:shape": [SIZE, SIZE],
                    "raster:bands": [{"data_type": "uint16", "nodata": 0,
                                      "spatial_resolution": RES}]}
            items.append({
                "type": "Feature", "stac_version": "1.1.0",
                "stac_extensions": [
                    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                    "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
                "id": f"T{tile}_{day:%Y%m%d}", "geometry": geometry, "bbox": bbox,
                "properties": {"datetime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
                "links": [], "assets": assets})
    return items


#: The fixed area of interest: AOI x AOI pixels centred this far (east, north) from tile
#: A's centre, where the three tiles overlap (all three cover a part of it, B warped).
AOI = 1024
AOI_SHIFT = (-250.0, 500.0)


def aoi_bounds() -> tuple[float, float, float, float]:
    """The fixed AOI on EPSG:32631 (10 m pixels, whole multiples of 10 m)."""
    x0, y0 = _tile_origin(GRID_CRS, (0.0, 0.0))
    half = SIZE * RES / 2
    cx = round((x0 + half + AOI_SHIFT[0]) / RES) * RES
    cy = round((y0 - half + AOI_SHIFT[1]) / RES) * RES
    r = AOI * RES / 2
    return (cx - r, cy - r, cx + r, cy + r)


#: The growth table's area: GROWTH_AREA x GROWTH_AREA pixels at the AOI's centre (one
#: 512 window), so that 20 to 200 dates fit the time budget.
GROWTH_AREA = 512


def growth_bounds() -> tuple[float, float, float, float]:
    left, bottom, right, top = aoi_bounds()
    cx, cy = (left + right) / 2, (bottom + top) / 2
    r = GROWTH_AREA * RES / 2
    return (cx - r, cy - r, cx + r, cy + r)


def union_bounds() -> tuple[float, float, float, float]:
    """The tiles' union on EPSG:32631 (each tile's bounds transformed, densified)."""
    from rasterio.warp import transform_bounds

    boxes = []
    for _, crs, shift, _ in TILES:
        x0, y0 = _tile_origin(crs, shift)
        side = SIZE * RES
        boxes.append(transform_bounds(crs, GRID_CRS, x0, y0 - side, x0 + side, y0,
                                      densify_pts=21))
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


# -- the child: one library, one job, twice -------------------------------------------


def rmd_median(data, window, ij, g):
    """riomucho_dask's run function: data[0] is masked (time, band, rows, cols)."""
    import numpy as np

    x = data[0].astype("float32").filled(np.nan)
    return np.nanmedian(x, axis=0)


def rmd_median_inplace(data, window, ij, g):
    """``rmd_median`` with one float32 copy: NaN written into it where masked."""
    import numpy as np

    x = data[0].data.astype("float32")
    x[np.ma.getmaskarray(data[0])] = np.nan
    return np.nanmedian(x, axis=0)


def _small_windows(grid):
    from rasterio.windows import Window

    n = SMALL_WINDOW
    return [Window(c, r, min(n, grid.width - c), min(n, grid.height - r))
            for r in range(0, grid.height, n) for c in range(0, grid.width, n)]


def _grid(bounds):
    import riomucho_dask as rmd

    return rmd.Grid.from_bounds(bounds, GRID_CRS, RES)


def _job_rmd(items, bounds, path, scheduler, report=False, inplace=False, small=False):
    import stac as this  # the run function by reference, for the cluster's workers

    import riomucho_dask as rmd

    started = time.perf_counter()
    series = rmd.stac_series(items, list(ASSETS), groupby="solar_day")
    grid = _grid(bounds)
    out = rmd.map_windows(this.rmd_median_inplace if inplace else this.rmd_median, [series],
                          grid=grid, masked=True, dtype="float32", count=2,
                          windows=_small_windows(grid) if small else None)
    built = time.perf_counter()
    result = rmd.to_raster(out, path, driver="COG", nodata=float("nan"), compress="deflate",
                           blocksize=BLOCK, scheduler=scheduler, report=report)
    return built - started, time.perf_counter() - built, {
        "tasks": len(out.__dask_graph__()), "steps": len(series),
        "report": str(result) if report else None}


def _job_odc(items, bounds, path, scheduler, report=False, rechunk=False):
    import dask
    import numpy as np
    import odc.stac
    import pystac
    from odc.geo.cog import save_cog_with_dask
    from odc.geo.geobox import GeoBox

    started = time.perf_counter()
    pitems = [pystac.Item.from_dict(item) for item in items]
    converted = time.perf_counter()
    grid = _grid(bounds)
    geobox = GeoBox((grid.height, grid.width), grid.transform, GRID_CRS)
    ds = odc.stac.load(pitems, bands=list(ASSETS), geobox=geobox, groupby="solar_day",
                       chunks={"x": BLOCK, "y": BLOCK}, resampling="nearest")
    x = ds.to_array("band").astype("float32")
    x = x.where(x != 0)
    if rechunk:  # whole time series per chunk, the x/y chunks kept (else dask's nanmedian
        x = x.chunk({"time": -1})  # rechunks the other axes to "auto": 128 MiB chunks)
    median = x.median("time", skipna=True)
    median.attrs["nodata"] = np.nan
    built = time.perf_counter()
    write = save_cog_with_dask(median, path, compression="deflate", blocksize=BLOCK,
                               overview_resampling="average")
    dask.compute(write, scheduler=scheduler)
    return built - converted, time.perf_counter() - built, {
        "tasks": len(median.data.__dask_graph__()), "steps": int(ds.sizes["time"]),
        "from_dict": converted - started}


def _job_stackstac(items, bounds, path, scheduler, report=False):
    import dask
    import numpy as np
    import pystac
    import stackstac
    from odc.geo.cog import save_cog_with_dask
    from odc.geo.geobox import GeoBox
    from odc.geo.xr import wrap_xr
    from rasterio.enums import Resampling

    started = time.perf_counter()
    pitems = [pystac.Item.from_dict(item) for item in items]
    converted = time.perf_counter()
    grid = _grid(bounds)
    stack = stackstac.stack(pitems, assets=list(ASSETS), epsg=int(GRID_CRS.split(":")[1]),
                            resolution=RES, bounds=tuple(grid.bounds), chunksize=BLOCK,
                            resampling=Resampling.nearest, dtype="float32",
                            fill_value=np.float32(np.nan), rescale=False)
    days = [str(t)[:10] for t in stack.time.values]  # 10:06-10:16Z at 6°E: UTC date = solar day
    stack = stack.assign_coords(day=("time", days))
    mosaics = stack.groupby("day").map(stackstac.mosaic, reverse=True)  # first valid wins
    median = mosaics.median("day", skipna=True).transpose("band", "y", "x")
    if tuple(stack.attrs["transform"])[:6] != tuple(grid.transform)[:6] or \
            median.shape[1:] != (grid.height, grid.width):
        raise RuntimeError(f"stackstac's grid {stack.attrs['transform']} {median.shape} is "
                           f"not {grid}")
    # stackstac's x/y are the pixels' top-left corners: the GeoBox given, as odc's
    median = wrap_xr(median.data, GeoBox((grid.height, grid.width), grid.transform, GRID_CRS),
                     nodata=np.nan, axis=1)
    built = time.perf_counter()
    write = save_cog_with_dask(median, path, compression="deflate", blocksize=BLOCK,
                               overview_resampling="average")
    dask.compute(write, scheduler=scheduler)
    return built - converted, time.perf_counter() - built, {
        "tasks": len(median.data.__dask_graph__()), "steps": len(set(days)),
        "from_dict": converted - started}


def _job_odc_rechunk(*args, **kwargs):
    return _job_odc(*args, rechunk=True, **kwargs)


def _job_rmd_variant(inplace, small):
    def job(*args, **kwargs):
        return _job_rmd(*args, inplace=inplace, small=small, **kwargs)
    return job


JOBS = {"rmd": _job_rmd, "rmd-cluster": _job_rmd, "rmd-approx": _job_rmd, "odc": _job_odc,
        "odc-rechunk": _job_odc_rechunk, "stackstac": _job_stackstac,
        "rmd-inplace": _job_rmd_variant(True, False),
        "rmd-w256": _job_rmd_variant(False, True),
        "rmd-inplace-w256": _job_rmd_variant(True, True)}


def child_main(spec: dict) -> None:
    import dask
    import rasterio

    imported = time.time()
    if spec["library"] in ("odc", "odc-rechunk", "stackstac"):  # imports count as start-up
        import odc.stac  # noqa: F401
        import pystac  # noqa: F401
        if spec["library"] == "stackstac":
            import stackstac  # noqa: F401
    else:
        import riomucho_dask  # noqa: F401
    imported = time.time() - imported
    with open(spec["items"]) as f:
        items = json.load(f)
    scheduler, client, cluster_start = "threads", None, 0.0
    if spec["library"] == "rmd-cluster":
        from distributed import Client, LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        scheduler = client
        cluster_start = time.perf_counter() - started
    if spec["library"] == "rmd-approx":
        from riomucho_dask.read import handles
        handles.EXACT_TOLERANCE = 0.125  # GDAL's default error threshold, in pixels
    job = JOBS[spec["library"]]
    runs = []
    with dask.config.set(num_workers=2), rasterio.Env(**HTTP_ENV):
        for n in range(2 if spec["warm"] else 1):
            path = spec["out"] + (".warm.tif" if n else "")
            if spec.get("profile") and n == 0:
                import cProfile
                import pstats
                profiler = cProfile.Profile()
                profiler.enable()
            build, compute, extra = job(items, spec["bounds"], path, scheduler,
                                        report=bool(spec.get("report")) and n == 1)
            if spec.get("profile") and n == 0:
                profiler.disable()
                stats = pstats.Stats(profiler)
                stats.sort_stats("cumulative").dump_stats(spec["out"] + ".prof")
            runs.append({"build": build, "compute": compute, **extra})
            if n == 0:  # the parent ends the cold run's wall time and peak here
                print("STAC-COLD " + json.dumps({"end": time.time(), "start": START}),
                      flush=True)
            if n:
                os.remove(path)
    import riomucho_dask
    print("STAC-RESULT " + json.dumps({"runs": runs, "imports": imported,
                                       "rmd_file": riomucho_dask.__file__,
                                       "cluster_start": cluster_start}), flush=True)
    if client is not None:
        client.close()
        cluster.close()


# -- the parent -------------------------------------------------------------------------


class TreeRSS(threading.Thread):
    """The summed RSS of a process and its descendants, sampled every 50 ms; ``mark()``
    freezes ``cold_peak`` (the peak so far) and starts ``warm_peak``."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(pid)
        self.peak = self.cold_peak = self.warm_peak = 0
        self.marked = False
        self.stopping = threading.Event()

    def run(self):
        n = 0
        procs = [self.root]
        while not self.stopping.is_set():
            if n % 4 == 0:
                try:
                    procs = [self.root, *self.root.children(recursive=True)]
                except self.psutil.Error:
                    pass
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except self.psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            if self.marked:
                self.warm_peak = max(self.warm_peak, total)
            n += 1
            self.stopping.wait(SAMPLE_SECONDS)

    def mark(self):
        self.cold_peak = self.peak
        self.marked = True


#: riomucho_dask as committed (``git archive HEAD``), put first on the children's
#: PYTHONPATH, so that uncommitted edits of the work tree do not leak into the figures.
SOURCE: dict = {"path": None, "commit": None, "dirty": None}


def committed_source() -> None:
    import tempfile

    def git(*a):
        return subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True,
                              check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        folder = tempfile.mkdtemp(prefix="rmd-stac-bench-")
        archive = subprocess.run(["git", "-C", ROOT, "archive", commit, "riomucho_dask"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        SOURCE.update(path=folder, commit=commit,
                      dirty=bool(git("status", "--porcelain", "--", "riomucho_dask").strip()))
    except (OSError, subprocess.CalledProcessError) as err:
        log(f"no git archive ({err}): riomucho_dask from the work tree")


def child_env() -> dict:
    env = dict(os.environ)
    env["GDAL_CACHEMAX"] = GDAL_CACHEMAX_MB
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (SOURCE["path"], HERE, env.get("PYTHONPATH")) if p)
    return env


def run_child(spec: dict, timeout: float = 1500) -> dict:
    """Run one child; its wall time (from before its start to the end of its first run,
    as seen by this process), peak RSS and what it printed."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    import tempfile

    errors = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child",
                             json.dumps(spec)], env=child_env(), stdout=subprocess.PIPE,
                            stderr=errors, text=True, start_new_session=True)
    sampler = TreeRSS(proc.pid)
    sampler.start()
    result: dict = {}
    lines: list[str] = []

    def read():
        for line in proc.stdout:
            if line.startswith("STAC-COLD "):
                sampler.mark()
                result["cold"] = json.loads(line.split(" ", 1)[1])
            elif line.startswith("STAC-RESULT "):
                result.update(json.loads(line.split(" ", 1)[1]))
            else:
                lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
        errors.seek(0)
        stderr = errors.read()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        stderr = "timeout"
    reader.join(5)
    sampler.stopping.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode or "cold" not in result:
        tail = (stderr or "").strip().splitlines()[-15:]
        raise RuntimeError(f"{spec['library']} failed ({proc.returncode}):\n"
                           + "\n".join(tail))
    result["wall"] = result["cold"]["end"] - started
    result["python_start"] = result["cold"]["start"] - started
    result["peak"] = sampler.cold_peak
    result["warm_peak"] = sampler.warm_peak
    result["total_peak"] = sampler.peak
    result["maxrss_children"] = after.ru_maxrss * 1024  # the largest single process
    result["stdout"] = "".join(lines)
    result["cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return result


def compare(a: str, b: str) -> dict:
    """Pixels of two outputs (full resolution) on their common extent (same CRS, origin
    and resolution; odc-geo's COG writer pads its image to a multiple of 4 pixels):
    where both are valid (not NaN), the fraction equal and the largest difference;
    where only one is valid; and how many of the padding's pixels are not NaN."""
    import numpy as np
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        if (x.crs, x.transform, x.count) != (y.crs, y.transform, y.count):
            return {"same_grid": False, "a": [str(x.crs), tuple(x.transform)[:6], x.shape],
                    "b": [str(y.crs), tuple(y.transform)[:6], y.shape]}
        p, q = x.read(), y.read()
        shapes = (x.shape, y.shape)
    h, w = min(p.shape[1], q.shape[1]), min(p.shape[2], q.shape[2])
    pad = int(sum((~np.isnan(r)).sum() - (~np.isnan(r[:, :h, :w])).sum() for r in (p, q)))
    p, q = p[:, :h, :w], q[:, :h, :w]
    vp, vq = ~np.isnan(p), ~np.isnan(q)
    both = vp & vq
    diff = np.abs(p[both].astype("float64") - q[both])
    return {"same_grid": True, "shapes": shapes, "padding_valid": pad,
            "both_valid": int(both.sum()),
            "equal": float((diff == 0).mean()) if both.any() else 1.0,
            "n_differ": int((diff != 0).sum()),
            "max_abs_diff": float(diff.max()) if both.any() else 0.0,
            "only_a": int((vp & ~vq).sum()), "only_b": int((vq & ~vp).sum()),
            "pixels": int(p.size)}


def cog_info(path: str) -> dict:
    import rasterio

    with rasterio.open(path) as src:
        return {"MB": os.path.getsize(path) / 1e6, "overviews": src.overviews(1),
                "blocks": src.block_shapes[0], "compress": str(src.compression),
                "predictor": src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", "-")}


def _serve():
    sys.path.insert(0, ROOT)
    from tests.conftest import STAC_HTTP_SERVER, _free_port, _serve

    port = _free_port()
    process = _serve(["-c", STAC_HTTP_SERVER, str(port)], port, cwd=CATALOG)
    return process, f"http://127.0.0.1:{port}"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _slope(xs, ys) -> float:
    """Least-squares slope, per 100 dates."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return 100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(LIBRARIES),
                        help=f"libraries of the main table (of {','.join(LIBRARIES)})")
    parser.add_argument("--growth", default=",".join(map(str, GROWTH)),
                        help="dates of the growth table (riomucho_dask and odc-stac)")
    parser.add_argument("--no-growth", action="store_true")
    parser.add_argument("--area", choices=("aoi", "union"), default="aoi",
                        help=f"aoi: a fixed {AOI} x {AOI} area where the tiles overlap "
                             "(default); union: the tiles' union (about 3.2x the pixels)")
    parser.add_argument("--profile", action="store_true",
                        help="also: cProfile of riomucho_dask's first run and its "
                             "report=True on the second (in the results)")
    parser.add_argument("--results", default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0

    import psutil
    import rasterio

    libraries = [name for name in args.only.split(",") if name]
    notes = []
    if "stackstac" in libraries and not _installed("stackstac"):
        libraries.remove("stackstac")
        notes.append("stackstac is not installed: left out.")
    growth = [] if args.no_growth else [int(n) for n in args.growth.split(",") if n]
    load_before = os.getloadavg()
    committed_source()
    log("catalog: " + CATALOG)
    make_catalog()
    os.makedirs(WORK, exist_ok=True)
    bounds = union_bounds() if args.area == "union" else aoi_bounds()
    server, url = _serve()
    results: dict = {}
    growth_results: dict = {}
    try:
        def items_file(dates):
            path = os.path.join(WORK, f"items-{dates}.json")
            with open(path, "w") as f:
                json.dump(make_items(dates, url), f)
            return path

        main_items = items_file(DATES)
        for lib in libraries:
            log(f"{lib}, {DATES} dates")
            spec = {"library": lib, "items": main_items, "bounds": bounds, "warm": True,
                    "out": os.path.join(WORK, f"{lib}.tif"),
                    "report": lib.startswith("rmd"),
                    "profile": args.profile and lib == "rmd"}
            try:
                results[lib] = run_child(spec)
                log(f"  wall {results[lib]['wall']:.1f} s, "
                    f"peak {results[lib]['peak'] / 2**20:.0f} MB, "
                    f"build {results[lib]['runs'][0]['build']:.2f} s")
            except Exception as err:  # noqa: BLE001 - the row shows it
                results[lib] = {"error": str(err)}
                log(f"  failed: {err}")
        for dates in growth:
            path = items_file(dates)
            for lib in ("rmd", "odc"):
                log(f"growth: {lib}, {dates} dates")
                spec = {"library": lib, "items": path, "bounds": growth_bounds(),
                        "warm": False,
                        "out": os.path.join(WORK, f"{lib}-{dates}.tif")}
                try:
                    growth_results[(lib, dates)] = run_child(spec)
                    log(f"  wall {growth_results[(lib, dates)]['wall']:.1f} s, peak "
                        f"{growth_results[(lib, dates)]['peak'] / 2**20:.0f} MB")
                    os.remove(spec["out"])
                except Exception as err:  # noqa: BLE001
                    growth_results[(lib, dates)] = {"error": str(err)}
                    log(f"  failed: {err}")
    finally:
        server.terminate()
        server.wait(10)
        if SOURCE["path"]:
            import shutil
            shutil.rmtree(SOURCE["path"], ignore_errors=True)
    outputs = {lib: os.path.join(WORK, f"{lib}.tif") for lib in results
               if "error" not in results[lib]}
    comparisons = {}
    for lib in outputs:
        if lib != "odc" and "odc" in outputs:
            comparisons[(lib, "odc")] = compare(outputs[lib], outputs["odc"])
    if "rmd" in outputs and "rmd-cluster" in outputs:
        comparisons[("rmd-cluster", "rmd")] = compare(outputs["rmd-cluster"], outputs["rmd"])
    cogs = {lib: cog_info(path) for lib, path in outputs.items()}
    info = {
        "cores": os.cpu_count(), "ram_gb": psutil.virtual_memory().total / 2**30,
        "system": f"{platform.system()} {platform.release()}",
        "versions": {"python": platform.python_version(), "rasterio": rasterio.__version__,
                     "GDAL": rasterio.__gdal_version__,
                     **{n: _version(n) for n in ("numpy", "dask", "distributed", "xarray",
                                                 "riomucho_dask", "odc-stac", "odc-loader",
                                                 "odc-geo", "pystac", "stackstac")}}}
    with rasterio.open(next(iter(outputs.values()))) as src:
        shape = (src.count, src.height, src.width)
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump({"results": results, "growth": {f"{k[0]}-{k[1]}": v
                                                  for k, v in growth_results.items()},
                   "comparisons": {f"{k[0]} vs {k[1]}": v for k, v in comparisons.items()},
                   "cogs": cogs}, f, default=str)
    text = render(args, info, bounds, shape, results, growth_results, growth, comparisons,
                  cogs, notes, load_before, os.getloadavg())
    with open(args.results, "w") as f:
        f.write(text)
    print(text)
    return 0


def _mb(n) -> str:
    return f"{n / 2**20:.0f}"


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "–"


def command_line() -> str:
    python = os.path.relpath(sys.executable, ROOT)
    if python.startswith(".."):
        python = sys.executable
    return shlex.join([python, "benchmarks/stac.py", *sys.argv[1:]])


def render(args, info, bounds, shape, results, growth_results, growth, comparisons, cogs,
           notes, load_before, load_after) -> str:
    v = info["versions"]
    area = ("the tiles' union" if args.area == "union" else
            f"a fixed {AOI} x {AOI} area where the three tiles overlap")
    lines = [
        "# A median composite from STAC items over HTTP: riomucho_dask and odc-stac", "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; command: "
        f"`{command_line()}`",
        f"- Machine: {info['cores']} cores, {info['ram_gb']:.0f} GB RAM, {info['system']}; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after.",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"- riomucho_dask as committed at `{(SOURCE['commit'] or 'the work tree')[:10]}` "
        f"(`git archive`, first on the children's PYTHONPATH"
        f"{'; the work tree had uncommitted edits, not used' if SOURCE['dirty'] else ''}).",
        f"- Catalog: {DATES} dates x 3 tiles (A, C: EPSG:32631; B: EPSG:32632) x 2 assets "
        f"(red, nir), {SIZE} x {SIZE} uint16, 10 m, tiled {BLOCK}, DEFLATE, nodata 0 with "
        "clouds (nodata ellipses) that differ by date; served by a Python HTTP server "
        "(range requests) in its own process on 127.0.0.1.",
        f"- Job: per solar day the mosaic (first valid pixel wins), then the median over "
        f"time of the valid pixels, both bands, on {area} on {GRID_CRS} at 10 m "
        f"({shape[2]} x {shape[1]} pixels, bounds {tuple(round(b) for b in bounds)}), "
        f"nearest, written as a float32 COG (DEFLATE, {BLOCK}-px tiles, average overviews, "
        "nodata NaN). dask threads, 2 workers, unless said; `GDAL_CACHEMAX=64`, "
        "`GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR` around graph build and compute.",
        "- One run per library. **wall**: a fresh process, from before its start to the "
        "end of its first run (interpreter start-up, imports, reading the items JSON, graph "
        "build, compute, write). **warm**: the same job again in the same process "
        "(GDAL's HTTP caches and the imports warm). **peak**: the summed RSS of the "
        "process tree (psutil, every 50 ms) up to the end of the first run. **build**: "
        "from the item dicts to the lazy (band, y, x) median, before compute "
        "(odc-stac and stackstac: after `pystac.Item.from_dict`, shown apart).",
        "",
    ]
    for note in notes:
        lines.append(f"- {note}")
    lines += ["## Every library", "",
              "| library | wall (s) | warm (s) | peak (MB) | warm peak (MB) | build (s) | "
              "warm build (s) | from_dict (s) | tasks | CPU (s) | COG (MB) |",
              "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for lib, r in results.items():
        if "error" in r:
            lines.append(f"| {LABELS[lib]} | failed: {r['error'].splitlines()[0][:120]} |")
            continue
        cold, warm = r["runs"][0], r["runs"][-1]
        fd = f"{cold['from_dict']:.2f}" if "from_dict" in cold else "–"
        lines.append(
            f"| {LABELS[lib]} | {r['wall']:.1f} | {warm['build'] + warm['compute']:.1f} | "
            f"{_mb(r['peak'])} | {_mb(r['warm_peak'])} | {cold['build']:.2f} | "
            f"{warm['build']:.2f} | {fd} | {cold['tasks']} | {r['cpu']:.0f} | "
            f"{cogs[lib]['MB']:.1f} |")
    odc = results.get("odc")
    if odc and "error" not in odc:
        lines += ["", "## riomucho_dask / odc-stac", "",
                  "Targets: wall <= 0.8x, peak <= 1x, build <= 1x, outputs equal.", "",
                  "| | wall | warm | peak | build | warm build |", "|---|--:|--:|--:|--:|--:|"]
        for lib in ("rmd", "rmd-cluster", "rmd-approx", "rmd-inplace", "rmd-w256",
                    "rmd-inplace-w256", "odc-rechunk", "stackstac"):
            r = results.get(lib)
            if not r or "error" in r:
                continue
            a, b = r["runs"], odc["runs"]
            lines.append(
                f"| {LABELS[lib]} | {_ratio(r['wall'], odc['wall'])} "
                f"({r['wall']:.1f} / {odc['wall']:.1f} s) | "
                f"{_ratio(a[-1]['build'] + a[-1]['compute'], b[-1]['build'] + b[-1]['compute'])}"
                f" | {_ratio(r['peak'], odc['peak'])} ({_mb(r['peak'])} / {_mb(odc['peak'])} MB)"
                f" | {_ratio(a[0]['build'], b[0]['build'])} "
                f"({a[0]['build']:.2f} / {b[0]['build']:.2f} s) | "
                f"{_ratio(a[-1]['build'], b[-1]['build'])} |")
    if comparisons:
        lines += ["", "## Outputs", "",
                  "Full-resolution pixels; `both valid`: pixels not NaN in either.", "",
                  "| output | against | same grid | both valid | equal | differ | max abs diff "
                  "| valid only in the first | valid only in the second |",
                  "|---|---|---|--:|--:|--:|--:|--:|--:|"]
        for (a, b), c in comparisons.items():
            if not c["same_grid"]:
                lines.append(f"| {LABELS[a]} | {LABELS[b]} | no: {c['a']} vs {c['b']} |")
                continue
            lines.append(f"| {LABELS[a]} | {LABELS[b]} | yes | {c['both_valid']} | "
                         f"{100 * c['equal']:.4f}% | {c['n_differ']} | {c['max_abs_diff']:g} | "
                         f"{c['only_a']} | {c['only_b']} |")
        lines += ["", "COGs: " + "; ".join(
            f"{LABELS[k]} {c['MB']:.1f} MB, {c['compress']}, predictor {c['predictor']}, "
            f"blocks {c['blocks']}, overviews {c['overviews']}" for k, c in cogs.items()) + "."]
    if growth:
        lines += ["", "## Growth with the number of dates", "",
                  f"Each a fresh process, one run, on a {GROWTH_AREA} x {GROWTH_AREA} area at "
                  "the AOI's centre (one 512 window: one task per time step for odc-stac, "
                  "one for all of them for riomucho_dask), so that 200 dates fit the time "
                  "budget.", "",
                  "| dates | rmd build (s) | odc build (s) | build ratio | rmd peak (MB) | "
                  "odc peak (MB) | peak ratio | rmd wall (s) | odc wall (s) | wall ratio |",
                  "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for dates in growth:
            r, o = growth_results.get(("rmd", dates)), growth_results.get(("odc", dates))
            if not r or not o or "error" in r or "error" in o:
                lines.append(f"| {dates} | failed |")
                continue
            rb, ob = r["runs"][0]["build"], o["runs"][0]["build"]
            lines.append(f"| {dates} | {rb:.2f} | {ob:.2f} | {_ratio(rb, ob)} | "
                         f"{_mb(r['peak'])} | {_mb(o['peak'])} | {_ratio(r['peak'], o['peak'])}"
                         f" | {r['wall']:.1f} | {o['wall']:.1f} | {_ratio(r['wall'], o['wall'])} |")
        lines += ["", "Slopes (least squares, per 100 dates):", ""]
        for lib, name in (("rmd", "riomucho_dask"), ("odc", "odc-stac")):
            pts = [(d, growth_results[(lib, d)]) for d in growth
                   if "error" not in growth_results.get((lib, d), {"error": 1})]
            if len(pts) >= 2:
                xs = [d for d, _ in pts]
                lines.append(
                    f"- {name}: build {_slope(xs, [r['runs'][0]['build'] for _, r in pts]):+.2f}"
                    f" s, peak {_slope(xs, [r['peak'] / 2**20 for _, r in pts]):+.0f} MB, "
                    f"wall {_slope(xs, [r['wall'] for _, r in pts]):+.1f} s per 100 dates.")
    for lib, r in results.items():
        if "error" in r:
            continue
        report = r["runs"][-1].get("report")
        if report:
            lines += ["", f"`report=True` of {LABELS[lib]}'s warm run:", "", "```",
                      report.strip(), "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
