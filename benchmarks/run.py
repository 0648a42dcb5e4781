"""Benchmark riomucho_dask against a serial rasterio loop and rio-mucho 1.0.0.

``python benchmarks/run.py`` (or ``make bench``) generates two 3-band uint16
GeoTIFFs once (cached under ``benchmarks/data/``), then runs two jobs (``heavy``
and ``light``, see ``benchmarks/jobs.py``) on every back end, each run in a
fresh child process, and prints a markdown table of median wall time, peak RSS
(of the child's process tree, of the child alone and of its descendants),
speed-ups and whether the output is identical to the serial loop's.  The table,
the machine and the versions go to ``benchmarks/RESULTS.md``.  A second, small
benchmark measures the per-window overhead of the lazy pipeline with a no-op
run function; a third (the COG section) times ways of writing the light job's
output as a Cloud Optimized GeoTIFF.

The same script is the child: ``run.py --child SPEC`` runs one back end on one
job and prints one ``BENCH-RESULT {json}`` line.  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
OUT = os.path.join(HERE, "out")
RESULTS = os.path.join(HERE, "RESULTS.md")

#: Back ends of the main table, in the order they run and are shown.
BACKENDS = ("serial", "serial-nt2", "rio-mucho", "threads", "processes", "processes-cold",
            "distributed", "distributed-cold", "shim")
#: Back ends without riomucho_dask: "speed-up vs best anchor" divides by the fastest of them.
ANCHORS = ("serial", "serial-nt2", "rio-mucho")
#: GDAL's NUM_THREADS creation option of the ``serial-nt2`` output.
SERIAL_NT2_THREADS = 2
#: Back ends of the per-window overhead figure that run in one process: the overhead proper.
OVERHEAD_BACKENDS = ("serial", "threads", "shim-sync", "rio-mucho-sync")
#: Parallel back ends also timed on it (a net cost per window, with WORKERS workers).
OVERHEAD_PARALLEL = ("rio-mucho", "processes", "distributed", "shim")
#: Where each back end computes, for the overhead table.
RUNS_ON = {
    "serial": "this process",
    "threads": "this process, WORKERS threads",
    "shim-sync": "this process",
    "rio-mucho-sync": "this process",
    "rio-mucho": "WORKERS forked processes",
    "processes": "WORKERS processes (from a fork server)",
    "processes-cold": "WORKERS processes, started by the write",
    "distributed": "WORKERS worker processes",
    "distributed-cold": "WORKERS worker processes, new",
    "shim": "this process, WORKERS threads",
}
MAIN_JOBS = ("heavy", "light")
#: Routes of the COG section (on the light job), in the order they run and are shown;
#: ``serial`` is the reference the others' pixels are compared with.
COG_BACKENDS = ("serial", "threads-gtiff", "threads-cog", "threads-cog-gdal", "gdal-two-pass",
                "odc-geo")
#: The routes that write a COG (checked with rio-cogeo's ``cog_validate``).
COG_ROUTES = ("threads-cog", "threads-cog-gdal", "gdal-two-pass", "odc-geo")
#: The COG section's baseline: the main table's ``threads`` (a tiled GeoTIFF).
COG_BASELINE = "threads-gtiff"
COG_JOB = "light"

GDAL_CACHEMAX_MB = "64"
BLOCK = 512
BANDS = 3
SEED = 20240817
DATA_VERSION = 1
OVERHEAD_SIZE = 4096
OVERHEAD_BLOCK = 64
SAMPLE_SECONDS = 0.02
MARKER = "BENCH-RESULT "

DESCRIPTIONS = {
    "serial": "plain rasterio loop over the block windows (the reference)",
    "serial-nt2": f"the same loop, output profile with NUM_THREADS={SERIAL_NT2_THREADS} "
    f"(GDAL compresses on {SERIAL_NT2_THREADS} threads)",
    "rio-mucho": "riomucho.RioMucho(...).run(WORKERS), rio-mucho 1.0.0 (multiprocessing.Pool)",
    "threads": 'rmd.to_raster(rmd.map_windows(...), scheduler="threads"), num_workers=WORKERS',
    "processes": 'rmd.to_raster(rmd.map_windows(...), scheduler="processes"), '
    "num_workers=WORKERS, the session's pool already started",
    "processes-cold": "the same, the first write of a session (its wall time includes "
    "starting the pool)",
    "distributed": "rmd.to_raster(..., scheduler=Client(LocalCluster(n_workers=WORKERS, "
    "threads_per_worker=1))), its workers warmed (riomucho_dask.workers.warm)",
    "distributed-cold": "the same, the first write on a new cluster whose workers have "
    "imported nothing yet (its first tasks import dask.array, rasterio, riomucho_dask)",
    "shim": "riomucho_dask.RioMucho(...).run(WORKERS): WORKERS threads (its default)",
    "shim-sync": "riomucho_dask.RioMucho(...).run(1): dask's synchronous scheduler, in-process",
    "rio-mucho-sync": "riomucho.RioMucho(...).run(1): rio-mucho's in-process MockTub",
    "threads-gtiff": 'rmd.to_raster(out, path, profile, scheduler="threads"): tiled GeoTIFF '
    "(the main table's threads)",
    "threads-cog": 'the same with driver="COG": tiles and overviews encoded in the tasks, '
    "laid out by the writer",
    "threads-cog-gdal": 'the same with riomucho_dask.encode-tiles=False: a GDAL dataset '
    "writes a tiled intermediate, then GDAL CreateCopy (the route before tiles were encoded "
    "in the tasks)",
    "gdal-two-pass": "the serial loop to a tiled GeoTIFF, then rasterio.shutil.copy(tmp, out, "
    'driver="COG", compress="deflate", blocksize=512, overview_resampling="average")',
    "odc-geo": 'rioxarray.open_rasterio(path, chunks={"band": -1, "y": 512, "x": 512}), the '
    "light formula on the DataArrays, odc.geo.cog.save_cog_with_dask(..., "
    'compression="deflate", blocksize=512, overview_resampling="average").compute('
    'scheduler="threads")',
}


# --------------------------------------------------------------------------
# Input data
# --------------------------------------------------------------------------

def _smoothstep(w):
    return w * w * (3.0 - 2.0 * w)


def _interp_columns(grid, width: int):
    """Interpolate a coarse ``(gr, gc)`` grid along columns to ``(gr, width)``."""
    import numpy as np

    gc = grid.shape[1]
    x = np.linspace(0.0, gc - 1.0, width)
    i0 = np.minimum(np.floor(x).astype(np.intp), gc - 2)
    w = _smoothstep(x - i0)
    return grid[:, i0] * (1.0 - w) + grid[:, i0 + 1] * w


def _interp_rows(columns, rows, height: int):
    """Rows ``rows`` (pixel indices) of a column-interpolated coarse grid."""
    import numpy as np

    gr = columns.shape[0]
    y = rows * (gr - 1.0) / max(height - 1, 1)
    i0 = np.minimum(np.floor(y).astype(np.intp), gr - 2)
    w = _smoothstep(y - i0)[:, None]
    return columns[i0] * (1.0 - w) + columns[i0 + 1] * w


#: (coarse grid size, amplitude) of the smooth octaves of every band.
OCTAVES = ((5, 900.0), (17, 400.0), (65, 150.0), (257, 60.0))
PARCELS, PARCEL_AMPLITUDE, NOISE_SIGMA = 64, 200.0, 25.0


def _band_model(file_index: int, band: int, size: int) -> dict:
    """What a band's strips are made of: interpolated octaves and parcel values."""
    import numpy as np

    octaves = []
    for octave, (cells, amplitude) in enumerate(OCTAVES):
        rng = np.random.default_rng([SEED, file_index, band, octave])
        grid = rng.uniform(-amplitude, amplitude, (cells, cells))
        octaves.append(_interp_columns(grid, size))
    rng = np.random.default_rng([SEED, file_index, band, 99])
    parcels = rng.uniform(-PARCEL_AMPLITUDE, PARCEL_AMPLITUDE, (PARCELS, PARCELS))
    base = 1200.0 + 700.0 * band + 400.0 * file_index
    return {"octaves": octaves, "parcels": parcels, "base": base}


def _band_strip(model: dict, file_index: int, band: int, strip: int, row0: int, rows: int,
                size: int):
    """One strip of one band: smooth field + parcels + noise, as uint16 (>= 1)."""
    import numpy as np

    index = np.arange(row0, row0 + rows)
    field = np.full((rows, size), model["base"])
    for columns in model["octaves"]:
        field += _interp_rows(columns, index, size)
    parcel_rows = index * PARCELS // size
    parcel_cols = np.arange(size) * PARCELS // size
    field += model["parcels"][parcel_rows][:, parcel_cols]
    rng = np.random.default_rng([SEED, file_index, band, 1000 + strip])
    field += rng.normal(0.0, NOISE_SIGMA, field.shape)
    return np.clip(np.rint(field), 1, 60000).astype(np.uint16)


def _georef(size: int) -> tuple[str, tuple[float, ...]]:
    return "EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 6000000.0 + 10.0 * size)


def _good(path: str, count: int, size: int, dtype: str) -> bool:
    import rasterio

    if not os.path.exists(path):
        return False
    try:
        with rasterio.open(path) as src:
            return (src.count, src.height, src.width, src.dtypes[0]) == (count, size, size, dtype)
    except Exception:
        return False


def make_input(file_index: int, size: int) -> str:
    """The ``file_index``-th input raster of ``size`` x ``size``, generated once."""
    import numpy as np
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    name = "ab"[file_index]
    path = os.path.join(DATA, f"input-{name}-{size}-v{DATA_VERSION}.tif")
    if _good(path, BANDS, size, "uint16"):
        return path
    os.makedirs(DATA, exist_ok=True)
    crs, transform = _georef(size)
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": BANDS, "dtype": "uint16",
        "crs": crs, "transform": Affine(*transform), "tiled": True,
        "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate",
        "num_threads": "all_cpus",
    }
    tmp = path + ".part"
    started = time.perf_counter()
    log(f"generating {os.path.relpath(path, ROOT)} ({size} x {size} x {BANDS} uint16)...")
    models = [_band_model(file_index, band, size) for band in range(BANDS)]
    with rasterio.Env(GDAL_CACHEMAX=256), rasterio.open(tmp, "w", **profile) as dst:
        for strip, row0 in enumerate(range(0, size, BLOCK)):
            rows = min(BLOCK, size - row0)
            block = np.empty((BANDS, rows, size), dtype=np.uint16)
            for band in range(BANDS):
                block[band] = _band_strip(models[band], file_index, band, strip, row0, rows,
                                          size)
            dst.write(block, window=Window(0, row0, size, rows))
    os.replace(tmp, path)
    log(f"  done in {time.perf_counter() - started:.1f} s, "
        f"{os.path.getsize(path) / 2**20:.0f} MB on disk")
    return path


def make_overhead_input() -> str:
    """A 4096 x 4096 1-band uint8 raster tiled 64 x 64, uncompressed (4096 windows)."""
    import numpy as np
    import rasterio
    from affine import Affine

    size = OVERHEAD_SIZE
    path = os.path.join(DATA, f"overhead-{size}-{OVERHEAD_BLOCK}-v{DATA_VERSION}.tif")
    if _good(path, 1, size, "uint8"):
        return path
    os.makedirs(DATA, exist_ok=True)
    crs, transform = _georef(size)
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "uint8",
        "crs": crs, "transform": Affine(*transform), "tiled": True,
        "blockxsize": OVERHEAD_BLOCK, "blockysize": OVERHEAD_BLOCK,
    }
    data = np.random.default_rng([SEED, 7]).integers(0, 256, (1, size, size), dtype=np.uint8)
    tmp = path + ".part"
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
    os.replace(tmp, path)
    return path


def output_profile(size: int, dtype: str, block: int, compress: str | None) -> dict:
    """The output's creation profile, JSON-serialisable (CRS string, 6 transform numbers)."""
    crs, transform = _georef(size)
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": dtype,
        "crs": crs, "transform": list(transform), "tiled": True,
        "blockxsize": block, "blockysize": block,
    }
    if compress:
        profile["compress"] = compress
    return profile


# --------------------------------------------------------------------------
# Child: one back end, one job, in a fresh process
# --------------------------------------------------------------------------

def _profile_for_rasterio(spec_profile: dict) -> dict:
    from affine import Affine
    from rasterio.crs import CRS

    profile = dict(spec_profile)
    profile["crs"] = CRS.from_user_input(profile["crs"])
    profile["transform"] = Affine(*profile["transform"])
    return profile


def _run_serial(func, inputs: list[str], output: str, profile: dict) -> None:
    import rasterio

    srcs = [rasterio.open(path) for path in inputs]
    try:
        with rasterio.open(output, "w", **profile) as dst:
            for ij, window in srcs[0].block_windows(1):
                data = [src.read(window=window) for src in srcs]
                dst.write(func(data, window, ij, {}), window=window)
    finally:
        for src in srcs:
            src.close()


def _run_lazy(func, inputs: list[str], output: str, profile: dict, scheduler: Any,
              workers: int, options: dict | None = None) -> None:
    import dask

    import riomucho_dask as rmd

    out = rmd.map_windows(func, inputs, count=profile["count"], dtype=profile["dtype"],
                          **(options or {}))
    with dask.config.set(num_workers=workers):
        rmd.to_raster(out, output, profile, scheduler=scheduler)


def _run_cog_route(backend: str, inputs: list[str], output: str, profile: dict,
                   workers: int) -> None:
    """One route of the COG section, on the light job."""
    import dask
    import jobs

    if backend in ("threads-gtiff", "threads-cog", "threads-cog-gdal"):
        import riomucho_dask as rmd

        out = rmd.map_windows(jobs.light, inputs, count=profile["count"],
                              dtype=profile["dtype"])
        extra = {"driver": "COG"} if backend != "threads-gtiff" else {}
        encode = backend != "threads-cog-gdal"
        with dask.config.set({"num_workers": workers, "riomucho_dask.encode-tiles": encode}):
            rmd.to_raster(out, output, profile, scheduler="threads", **extra)
    elif backend == "gdal-two-pass":
        import rasterio.shutil

        tmp = output + ".gtiff.tif"
        try:
            _run_serial(jobs.light, inputs, tmp, profile)
            rasterio.shutil.copy(tmp, output, driver="COG", compress="deflate",
                                 blocksize=BLOCK, overview_resampling="average")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    elif backend == "odc-geo":
        import odc.geo.xr  # noqa: F401  (the .odc accessor: geobox)
        import rioxarray
        from odc.geo.cog import save_cog_with_dask

        chunks = {"band": -1, "y": BLOCK, "x": BLOCK}
        a, b = (rioxarray.open_rasterio(path, chunks=chunks) for path in inputs)
        written = save_cog_with_dask(jobs.light_dataarrays(a, b), output,
                                     compression="deflate", blocksize=BLOCK,
                                     overview_resampling="average")
        with dask.config.set(num_workers=workers):
            if hasattr(written, "compute"):  # a dask.delayed (odc-geo 0.4, 0.5)
                written.compute(scheduler="threads")
    else:
        raise ValueError(f"unknown COG route {backend!r}")


def _cpu_seconds() -> float:
    """User + system CPU time of this process and of its children that have exited."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _warm_imports(backend: str) -> None:
    """Import what a back end needs before the clock starts: the wall time is the job,
    not Python's imports (dask's first compute imports distributed, about 0.5 s here)."""
    import rasterio  # noqa: F401

    if backend.startswith("rio-mucho"):
        import riomucho  # noqa: F401
    elif backend == "odc-geo":
        import dask.array  # noqa: F401
        import odc.geo.cog  # noqa: F401
        import odc.geo.xr  # noqa: F401
        import rioxarray  # noqa: F401
    elif backend not in ("serial", "serial-nt2", "gdal-two-pass"):
        import dask.array  # noqa: F401
        import distributed  # noqa: F401

        import riomucho_dask  # noqa: F401


def child_main(spec: dict) -> dict:
    """Run ``spec["backend"]`` on ``spec["job"]``; return wall time (and cluster start-up)."""
    import jobs

    func = jobs.JOBS[spec["job"]]
    options = jobs.JOB_OPTIONS.get(spec["job"], {})
    backend, inputs, output = spec["backend"], spec["inputs"], spec["output"]
    workers = int(spec["workers"])
    profile = _profile_for_rasterio(spec["profile"])
    result: dict[str, Any] = {"ok": True, "pid": os.getpid()}
    if os.path.exists(output):
        os.remove(output)
    _warm_imports(backend)

    if backend in ("distributed", "distributed-cold"):
        from distributed import Client, LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        client.wait_for_workers(workers)
        if backend == "distributed":
            # Its workers import what the tasks need, as the process pool's fork server
            # does (distributed-cold: in the write's first tasks).
            from riomucho_dask.workers import warm

            warm(client)
        result["startup"] = time.perf_counter() - started
        try:
            cpu = _cpu_seconds()
            started = time.perf_counter()
            _run_lazy(func, inputs, output, profile, client, workers, options)
            result["wall"] = time.perf_counter() - started
        finally:
            client.close()
            cluster.close()
        # The workers' CPU time is only known once they have exited.
        result["cpu"] = _cpu_seconds() - cpu
        return result

    if backend == "processes":  # the session's pool, started (as the cluster is) first
        import dask

        from riomucho_dask.execute.processes import process_pool

        started = time.perf_counter()
        with dask.config.set(num_workers=workers):
            list(process_pool().map(abs, range(4 * workers)))
        result["startup"] = time.perf_counter() - started
    if backend == "serial-nt2":
        profile["num_threads"] = SERIAL_NT2_THREADS
    cpu = _cpu_seconds()
    started = time.perf_counter()
    if backend in ("serial", "serial-nt2"):
        _run_serial(func, inputs, output, profile)
    elif backend in ("rio-mucho", "rio-mucho-sync"):
        import riomucho

        processes = 1 if backend == "rio-mucho-sync" else workers
        riomucho.RioMucho(inputs, output, func, options=dict(profile)).run(processes)
    elif backend in ("threads", "processes", "processes-cold"):
        _run_lazy(func, inputs, output, profile, backend.split("-")[0], workers, options)
    elif backend in ("shim", "shim-sync"):
        import riomucho_dask

        processes = 1 if backend == "shim-sync" else workers
        riomucho_dask.RioMucho(inputs, output, func, options=dict(profile)).run(processes)
    elif backend in COG_BACKENDS:
        _run_cog_route(backend, inputs, output, profile, workers)
    else:
        raise ValueError(f"unknown back end {backend!r}")
    result["wall"] = time.perf_counter() - started
    result["cpu"] = _cpu_seconds() - cpu
    return result


def child_entry(spec_json: str) -> int:
    """``--child``: run, print one ``BENCH-RESULT`` JSON line, exit 0 or 1."""
    spec = json.loads(spec_json)
    try:
        result = child_main(spec)
        code = 0
    except BaseException as err:  # report anything, including KeyboardInterrupt
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        code = 1
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


# --------------------------------------------------------------------------
# Parent: children, memory sampling, correctness
# --------------------------------------------------------------------------

class TreeRSS(threading.Thread):
    """Samples the summed RSS of a process and all its descendants; keeps the peaks.

    Three peaks, each the largest over the samples: ``peak``, the whole tree;
    ``peak_client``, the root process alone (the benchmark's child: it writes
    the output; for ``distributed`` it also hosts the LocalCluster's scheduler
    and nannies); ``peak_workers``, the sum over the descendants (worker
    processes, and multiprocessing's resource tracker where one runs), or
    ``None`` when no descendant was ever seen.  The three may come from
    different samples, so ``peak_client + peak_workers >= peak``.

    Listing the descendants scans ``/proc`` and costs far more than reading
    their RSS, so the list is refreshed every ``rescan`` samples (every
    100 ms by default), and the RSS of the known processes every sample.
    """

    def __init__(self, pid: int, interval: float = SAMPLE_SECONDS, rescan: int = 5):
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)
        self.interval = interval
        self.rescan = rescan
        self.peak = 0
        self.peak_client = 0
        self.peak_workers: int | None = None
        self.samples = 0
        self.max_processes = 0
        self._procs = [self.root]
        self._stop_event = threading.Event()

    def sample(self) -> None:
        psutil = self._psutil
        if self.samples % self.rescan == 0:
            try:
                self._procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                pass
        client = 0
        workers = 0
        alive = 0
        descendants = 0
        for proc in self._procs:
            try:
                rss = proc.memory_info().rss
            except psutil.Error:
                continue  # exited since the last listing
            alive += 1
            if proc is self.root:
                client = rss
            else:
                workers += rss
                descendants += 1
        self.samples += 1
        self.peak = max(self.peak, client + workers)
        self.peak_client = max(self.peak_client, client)
        if descendants:
            self.peak_workers = max(self.peak_workers or 0, workers)
        self.max_processes = max(self.max_processes, alive)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def child_env() -> dict:
    """The children's environment: fixed GDAL block cache, benchmarks/ importable."""
    env = dict(os.environ)
    env["GDAL_CACHEMAX"] = GDAL_CACHEMAX_MB
    env["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, env.get("PYTHONPATH")) if p)
    return env


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_child(spec: dict, timeout: float) -> dict:
    """Run one back end in a fresh process; its result, plus ``peak_rss``."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(), cwd=ROOT, start_new_session=True)
    sampler = TreeRSS(proc.pid)
    sampler.start()
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        stdout, stderr = proc.communicate()
    finally:
        sampler.stop()
        # Anything the child left behind (its own session, so only its processes).
        _kill_group(proc.pid)
    result = None
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER):])
    if timed_out:
        result = {"ok": False, "error": f"timed out after {timeout:g} s"}
    elif result is None:
        tail = " | ".join(stderr.strip().splitlines()[-3:]) or "no output"
        result = {"ok": False, "error": f"child exited with {proc.returncode}: {tail}"}
    if not result["ok"]:
        result["stderr"] = stderr[-4000:]
    result["peak_rss"] = sampler.peak
    result["peak_client"] = sampler.peak_client
    result["peak_workers"] = sampler.peak_workers
    result["samples"] = sampler.samples
    result["processes"] = sampler.max_processes
    return result


def compare(path: str, reference: str, strip_rows: int = BLOCK) -> str:
    """``"yes"`` when ``path`` holds exactly the reference's pixels, else why not.

    Reads both rasters in strips of ``strip_rows`` rows to keep memory low.
    """
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as out, rasterio.open(reference) as ref:
        if (out.count, out.height, out.width) != (ref.count, ref.height, ref.width):
            return f"NO: shape {out.shape} vs {ref.shape}"
        if out.dtypes != ref.dtypes:
            return f"NO: dtype {out.dtypes[0]} vs {ref.dtypes[0]}"
        if out.transform != ref.transform or out.crs != ref.crs:
            return "NO: georeferencing differs"
        different = 0
        for row0 in range(0, ref.height, strip_rows):
            window = Window(0, row0, ref.width, min(strip_rows, ref.height - row0))
            a, b = out.read(window=window), ref.read(window=window)
            if not np.array_equal(a, b, equal_nan=True):
                different += int(np.count_nonzero((a != b) & ~(np.isnan(a) & np.isnan(b))))
        return "yes" if different == 0 else f"NO: {different} pixels differ"


def validate_cog(path: str) -> str:
    """``"yes"`` when rio-cogeo's ``cog_validate`` passes on ``path``, else why not."""
    try:
        from rio_cogeo.cogeo import cog_validate
    except ImportError:
        return "n/a (rio-cogeo not installed)"
    try:
        valid, errors, _warnings = cog_validate(path, quiet=True)
    except Exception as err:
        return f"NO: {type(err).__name__}: {err}"
    return "yes" if valid else "NO: " + "; ".join(errors)[:200]


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------

def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Cell:
    """Every run of one back end on one job."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.peaks: list[int] = []
        self.client_peaks: list[int] = []
        self.worker_peaks: list[int | None] = []
        self.cpus: list[float] = []
        self.startups: list[float] = []
        self.identical: list[str] = []
        self.cog_valid: list[str] = []
        self.errors: list[str] = []

    @property
    def ok(self) -> bool:
        return bool(self.walls) and not self.errors

    @property
    def median(self) -> float | None:
        return statistics.median(self.walls) if self.ok else None

    @property
    def peak_client(self) -> int:
        return max(self.client_peaks, default=0)

    @property
    def peak_workers(self) -> int | None:
        """The largest workers' peak over the runs; ``None`` when no run had descendants."""
        return max((p for p in self.worker_peaks if p is not None), default=None)

    def cog_text(self) -> str:
        """``cog_validate``'s verdict over the runs: the first failure, else ``yes``."""
        bad = [text for text in self.cog_valid if text != "yes"]
        if bad:
            return bad[0]
        return "yes" if self.cog_valid else "n/a"

    def identical_text(self) -> str:
        bad = [text for text in self.identical if text != "yes"]
        if bad:
            return bad[0]
        return "yes" if self.identical else "n/a"


def run_cell(cell: Cell, spec: dict, reference: str | None, timeout: float,
             label: str) -> None:
    """One run: child process, then the comparison with ``reference``; ``cell`` updated."""
    result = run_child(spec, timeout)
    output = spec["output"]
    if not result["ok"]:
        cell.errors.append(result["error"])
        log(f"{label}: FAILED {result['error']}")
        if result.get("stderr"):
            log("  " + result["stderr"].strip().replace("\n", "\n  ")[-2000:])
        return
    cell.walls.append(result["wall"])
    cell.peaks.append(result["peak_rss"])
    cell.client_peaks.append(result["peak_client"])
    cell.worker_peaks.append(result["peak_workers"])
    cell.cpus.append(result.get("cpu", float("nan")))
    if "startup" in result:
        cell.startups.append(result["startup"])
    if reference is None:
        same = "no reference"
    elif os.path.abspath(reference) == os.path.abspath(output):
        same = None
    else:
        try:
            same = compare(output, reference)
        except Exception as err:
            same = f"NO: {type(err).__name__}: {err}"
    if same is not None:
        cell.identical.append(same)
    valid = None
    if spec["backend"] in COG_ROUTES:
        valid = validate_cog(output)
        cell.cog_valid.append(valid)
    extra = f", cluster start-up {result['startup']:.1f} s" if "startup" in result else ""
    cpu = result.get("cpu", float("nan"))
    log(f"{label}: {result['wall']:.2f} s (CPU {cpu:.1f} s), "
        f"peak RSS {result['peak_rss'] / 2**20:.0f} MB "
        f"(client {_mb(result['peak_client'])}, workers {_mb(result['peak_workers'])}; "
        f"{result['processes']} processes, {result['samples']} samples){extra}"
        f"{'' if same is None else ', identical: ' + same}"
        f"{'' if valid is None else ', cog_validate: ' + valid}")


def run_grid(backends: list[str], jobs_: list[str], inputs: list[str], profile: dict,
             repeat: int, workers: int, timeout: float, tag: str) -> dict:
    """Every (back end, job), ``repeat`` times, interleaved so load noise spreads evenly.

    The first serial run of a job is the reference every other output is
    compared with; later serial runs are compared with it too.
    """
    os.makedirs(OUT, exist_ok=True)
    cells = {(backend, job): Cell() for job in jobs_ for backend in backends}
    references: dict[str, str | None] = {}
    for rep in range(repeat):
        for job in jobs_:
            for backend in backends:
                reference = references.get(job)
                first_serial = backend == "serial" and reference is None
                if first_serial:
                    # The reference itself: compared with nothing.
                    output = reference = os.path.join(OUT, f"{tag}-{job}-serial-reference.tif")
                else:
                    output = os.path.join(OUT, f"{tag}-{job}-{backend}.tif")
                spec = {"backend": backend, "job": job, "inputs": inputs, "output": output,
                        "profile": profile, "workers": workers}
                label = f"[{rep + 1}/{repeat}] {tag} {job:<5} {backend:<14}"
                run_cell(cells[backend, job], spec, reference, timeout, label)
                if first_serial:
                    ok = cells[backend, job].ok and os.path.exists(output)
                    references[job] = output if ok else None
                if output != references.get(job) and os.path.exists(output):
                    os.remove(output)
    for reference in references.values():
        if reference and os.path.exists(reference):
            os.remove(reference)
    return cells


#: The overlap-cost jobs: with overlap, and the same function without.
OVERLAP_JOBS = ("hillshade", "hillshade-alone")


def overlap_table(cells: dict) -> str:
    """Median wall time of each overlap job on threads, and their ratio."""
    with_overlap, alone = (cells["threads", job].median for job in OVERLAP_JOBS)
    rows = ["| job | median wall (s) | vs hillshade-alone |", "|---|--:|--:|"]
    for job, wall in zip(OVERLAP_JOBS, (with_overlap, alone)):
        text = f"{wall:.2f}" if wall is not None else "failed"
        rows.append(f"| {job} | {text} | {_ratio(wall, alone)} |")
    return "\n".join(rows)


def cog_backends() -> list[str]:
    """``COG_BACKENDS`` less ``odc-geo`` when odc-geo or rioxarray is not installed."""
    import importlib.util

    def have(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except ImportError:
            return False

    if have("odc.geo") and have("rioxarray"):
        return list(COG_BACKENDS)
    log("COG section: odc-geo or rioxarray not installed (pip install -e '.[bench]'); "
        "odc-geo left out")
    return [b for b in COG_BACKENDS if b != "odc-geo"]


def cog_table(cells: dict, backends: list[str]) -> str:
    """Median wall time of each COG route, its ratio to ``threads-gtiff``, checks."""
    base = cells.get((COG_BASELINE, COG_JOB))
    base_t = base.median if base else None
    rows = ["| route | writes | median wall (s) | vs threads-gtiff | peak RSS (MB) "
            "| identical | cog_validate |", "|---|---|--:|--:|--:|---|---|"]
    for backend in backends:
        cell = cells[backend, COG_JOB]
        writes = "COG" if backend in COG_ROUTES else "tiled GeoTIFF"
        if not cell.ok:
            error = (cell.errors[0] if cell.errors else "no run").replace("|", "/")
            rows.append(f"| {backend} | {writes} | error: {error[:200]} | – | – | – | – |")
            continue
        identical = cell.identical_text()
        if backend == "serial" and identical in ("yes", "n/a"):
            identical = "yes (reference)"
        valid = cell.cog_text() if backend in COG_ROUTES else "– (not a COG)"
        rows.append(f"| {backend} | {writes} | {cell.median:.2f} | {_ratio(cell.median, base_t)} "
                    f"| {_mb(max(cell.peaks))} | {identical.replace('|', '/')} "
                    f"| {valid.replace('|', '/')} |")
    return "\n".join(rows)


def _ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "–"
    return f"{numerator / denominator:.2f}x"


def _mb(nbytes: int | None) -> str:
    return "–" if nbytes is None else f"{nbytes / 2**20:.0f}"


def best_anchor(cells: dict, job: str) -> tuple[str, float] | None:
    """The anchor (``ANCHORS``) with the fastest median wall time on ``job``, if any ran."""
    times = [(cells[name, job].median, name) for name in ANCHORS
             if (name, job) in cells and cells[name, job].ok]
    if not times:
        return None
    t, name = min(times)
    return name, t


def main_table(cells: dict, backends: list[str], jobs_: list[str]) -> str:
    """The markdown table of the main benchmark."""
    lines = [
        "| backend | job | median wall (s) | peak RSS (MB) | peak RSS client (MB) "
        "| peak RSS workers (MB) | speed-up vs serial | speed-up vs rio-mucho "
        "| speed-up vs best anchor | identical |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for job in jobs_:
        serial = cells.get(("serial", job))
        mucho = cells.get(("rio-mucho", job))
        serial_t = serial.median if serial else None
        mucho_t = mucho.median if mucho else None
        best = best_anchor(cells, job)
        best_t = best[1] if best else None
        for backend in backends:
            cell = cells[backend, job]
            if not cell.ok:
                error = (cell.errors[0] if cell.errors else "no run").replace("|", "/")
                lines.append(f"| {backend} | {job} | error: {error[:200]} "
                             "| – | – | – | – | – | – | – |")
                continue
            t = cell.median
            identical = "yes (reference)" if backend == "serial" and cell.identical_text() in (
                "yes", "n/a") else cell.identical_text()
            lines.append(
                f"| {backend} | {job} | {t:.2f} | {_mb(max(cell.peaks))} "
                f"| {_mb(cell.peak_client)} | {_mb(cell.peak_workers)} "
                f"| {_ratio(serial_t, t)} | {_ratio(mucho_t, t)} | {_ratio(best_t, t)} "
                f"| {identical} |"
            )
    return "\n".join(lines)


def best_anchor_text(cells: dict, jobs_: list[str]) -> str | None:
    """Which anchor is the best of each job, e.g. ``heavy: serial-nt2 (5.12 s)``."""
    parts = []
    for job in jobs_:
        best = best_anchor(cells, job)
        if best:
            parts.append(f"{job}: `{best[0]}` ({best[1]:.2f} s)")
    return "; ".join(parts) or None


def overhead_table(cells: dict, windows: int, backends: list[str], workers: int) -> str:
    """The markdown table of the per-window overhead benchmark."""
    lines = [
        "| backend | runs on | median wall (s) | overhead vs serial (ms / window) "
        "| peak RSS (MB) | identical |",
        "|---|---|--:|--:|--:|---|",
    ]
    serial = cells[("serial", "noop")].median
    for backend in backends:
        cell = cells[backend, "noop"]
        where = RUNS_ON[backend].replace("WORKERS", str(workers))
        if not cell.ok:
            error = (cell.errors[0] if cell.errors else "no run").replace("|", "/")
            lines.append(f"| {backend} | {where} | error: {error[:200]} | – | – | – |")
            continue
        if backend == "serial":
            per_window = "0 (reference)"
        elif serial is None:
            per_window = "–"
        else:
            per_window = f"{(cell.median - serial) / windows * 1000:+.3f}"
        identical = cell.identical_text()
        if backend == "serial" and identical in ("yes", "n/a"):
            identical = "yes (reference)"
        lines.append(f"| {backend} | {where} | {cell.median:.2f} | {per_window} "
                     f"| {max(cell.peaks) / 2**20:.0f} | {identical} |")
    return "\n".join(lines)


def raw_runs(cells: dict) -> str:
    """Every run's wall time, CPU time and peak RSS, for the record."""
    lines = [
        "| backend | job | wall times (s) | CPU times (s) | peak RSS (MB) "
        "| peak RSS client (MB) | peak RSS workers (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (backend, job), cell in cells.items():
        walls = ", ".join(f"{t:.2f}" for t in cell.walls) or "–"
        cpus = ", ".join(f"{t:.1f}" for t in cell.cpus) or "–"
        peaks = ", ".join(_mb(p) for p in cell.peaks) or "–"
        clients = ", ".join(_mb(p) for p in cell.client_peaks) or "–"
        workers = ", ".join(_mb(p) for p in cell.worker_peaks) or "–"
        if cell.errors:
            walls += f" ({len(cell.errors)} failed)"
        lines.append(f"| {backend} | {job} | {walls} | {cpus} | {peaks} | {clients} "
                     f"| {workers} |")
    return "\n".join(lines)


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    """Cores, RAM, CPU model, versions."""
    import psutil
    import rasterio

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "ram_gb": psutil.virtual_memory().total / 2**30,
        "cpu": model,
        "system": f"{platform.system()} {platform.release()}",
        "versions": {
            "python": platform.python_version(),
            "numpy": _version("numpy"),
            "rasterio": rasterio.__version__,
            "GDAL": rasterio.__gdal_version__,
            "dask": _version("dask"),
            "distributed": _version("distributed"),
            "rio-mucho": _version("rio-mucho"),
            "riomucho_dask": _version("riomucho_dask"),
            "psutil": psutil.__version__,
            "odc-geo": _version("odc-geo"),
            "rioxarray": _version("rioxarray"),
            "rio-cogeo": _version("rio-cogeo"),
        },
    }


def command_line() -> str:
    python = sys.executable
    try:
        rel = os.path.relpath(python, ROOT)
        if not rel.startswith(".."):
            python = rel
    except ValueError:
        pass
    return shlex.join([python, "benchmarks/run.py", *sys.argv[1:]])


def _names(text: str | None, allowed: tuple[str, ...], what: str) -> list[str]:
    if not text:
        return list(allowed)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown}; choose from {', '.join(allowed)}")
    return [name for name in allowed if name in names]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark riomucho_dask back ends against a serial loop and rio-mucho.")
    parser.add_argument("--size", type=int, default=4096,
                        help="input rasters are SIZE x SIZE (default 4096)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per back end and job; the median is shown (default 3)")
    parser.add_argument("--only", help=f"back ends to run, comma-separated, of {BACKENDS} "
                        "(serial always runs: it is the reference)")
    parser.add_argument("--jobs", help=f"jobs to run, comma-separated, of {MAIN_JOBS}")
    parser.add_argument("--workers", type=int, default=2,
                        help="workers of the parallel back ends (default 2)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds before a child is killed (default 900)")
    parser.add_argument("--no-overhead", action="store_true",
                        help="skip the per-window overhead benchmark")
    parser.add_argument("--no-overlap", action="store_true",
                        help="skip the overlap-cost benchmark (hillshade with and without)")
    parser.add_argument("--no-cog", action="store_true",
                        help="skip the COG section (light job written as a COG four ways)")
    parser.add_argument("--results", default=RESULTS,
                        help="markdown file to write (default benchmarks/RESULTS.md)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size < 1 or args.repeat < 1 or args.workers < 1:
        parser.error("--size, --repeat and --workers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_entry(args.child)

    backends = _names(args.only, BACKENDS, "back ends")
    if "serial" not in backends:
        backends.insert(0, "serial")
    jobs_ = _names(args.jobs, MAIN_JOBS, "jobs")
    info = machine()
    load_before = os.getloadavg()
    started = time.time()

    inputs = [make_input(0, args.size), make_input(1, args.size)]
    profile = output_profile(args.size, "float32", BLOCK, "deflate")
    cells = run_grid(backends, jobs_, inputs, profile, args.repeat, args.workers,
                     args.timeout, f"main-{args.size}")
    table = main_table(cells, backends, jobs_)
    anchors = best_anchor_text(cells, jobs_)

    overhead = None
    windows = (OVERHEAD_SIZE // OVERHEAD_BLOCK) ** 2
    if not args.no_overhead:
        small = make_overhead_input()
        small_profile = output_profile(OVERHEAD_SIZE, "uint8", OVERHEAD_BLOCK, None)
        overhead_backends = [*OVERHEAD_BACKENDS, *(b for b in OVERHEAD_PARALLEL if b in backends)]
        overhead_cells = run_grid(overhead_backends, ["noop"], [small], small_profile,
                                  args.repeat, args.workers, args.timeout, "overhead")
        overhead = overhead_table(overhead_cells, windows, overhead_backends, args.workers)
        cells.update(overhead_cells)
    overlap = None
    if not args.no_overlap:
        overlap_cells = run_grid(["threads"], list(OVERLAP_JOBS), inputs[:1], profile,
                                 args.repeat, args.workers, args.timeout, f"overlap-{args.size}")
        overlap = overlap_table(overlap_cells)
        cells.update(overlap_cells)
    cog = None
    if not args.no_cog:
        cog_routes = cog_backends()
        cog_cells = run_grid(cog_routes, [COG_JOB], inputs, profile, args.repeat,
                             args.workers, args.timeout, f"cog-{args.size}")
        cog = (cog_table(cog_cells, cog_routes), cog_routes)
        # Keyed apart from the main table's (serial, light) in "Every run".
        cells.update({(f"cog:{b}", job): cell for (b, job), cell in cog_cells.items()})
    elapsed = time.time() - started
    load_after = os.getloadavg()

    print()
    print(table)
    if overlap:
        print()
        print("Overlap cost (threads):")
        print()
        print(overlap)
    if cog:
        print()
        print(f"COG section ({COG_JOB}, threads, {args.workers} workers):")
        print()
        print(cog[0])
    if anchors:
        print()
        print(f"Best anchor ({', '.join(ANCHORS)}): {anchors}")
    if overhead:
        print()
        print(f"Per-window overhead ({windows} windows of {OVERHEAD_BLOCK} x {OVERHEAD_BLOCK}, "
              "no-op run function):")
        print()
        print(overhead)

    startups = {name: [t for (b, _), c in cells.items() if b == name for t in c.startups]
                for name in ("distributed", "processes")}
    report = render_results(args, info, table, overhead, windows, startups, cells,
                            load_before, load_after, elapsed, backends, anchors, overlap, cog)
    with open(args.results, "w") as f:
        f.write(report)
    log(f"\nwrote {os.path.relpath(args.results, ROOT)} ({elapsed / 60:.1f} min)")
    return 0


def render_results(args, info, table, overhead, windows, startups, cells, load_before,
                   load_after, elapsed, backends, anchors=None, overlap=None,
                   cog=None) -> str:
    """The text of RESULTS.md."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    size = args.size
    describe = "\n".join(
        f"- `{name}`: {DESCRIPTIONS[name].replace('WORKERS', str(args.workers))}"
        for name in backends
    )
    parts = [
        "# Benchmark results",
        "",
        f"- Date: {now}",
        f"- Machine: {info['cores']} cores, {info['ram_gb']:.1f} GB RAM, "
        f"CPU {info['cpu']}, {info['system']}",
        f"- Versions: {versions}",
        f"- Command: `{command_line()}`",
        f"- Load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{', '.join(f'{x:.2f}' for x in load_after)} after; whole run {elapsed / 60:.1f} min",
        "",
        f"Inputs: two {size} x {size} 3-band uint16 GeoTIFFs, tiled {BLOCK} x {BLOCK}, DEFLATE "
        f"(smooth fields + parcels + noise), {((size + BLOCK - 1) // BLOCK) ** 2} block windows. "
        f"Output: 1-band float32, tiled {BLOCK} x {BLOCK}, DEFLATE. Every run is a fresh "
        f"process with `GDAL_CACHEMAX={GDAL_CACHEMAX_MB}`; wall time is the job only (median "
        f"of {args.repeat}); peak RSS is the maximum, over the runs, of the summed RSS of the "
        f"child and all its descendants sampled every {SAMPLE_SECONDS * 1000:.0f} ms, split "
        "into the child alone (client) and the sum of its descendants (workers). "
        "`identical` compares every output with the serial loop's, pixel for pixel.",
        "",
        describe,
        "",
        table,
        "",
    ]
    notes = [
        "Each run imports what its back end needs (rasterio; rio-mucho; dask, distributed and "
        "riomucho_dask) before its clock starts: the wall time is the job. dask's first "
        "compute in a process imports distributed (about 0.5 s here), once per session.",
    ]
    if anchors:
        notes.append(
            "Anchors are the back ends without riomucho_dask: "
            f"{', '.join(f'`{a}`' for a in ANCHORS)} (those that ran). \"speed-up vs best "
            "anchor\" divides the fastest anchor's median wall time on the same job by the "
            f"back end's. Fastest anchor per job: {anchors}."
        )
    if "serial-nt2" in backends:
        notes.append(
            f"`serial-nt2` is `serial`'s loop with `NUM_THREADS={SERIAL_NT2_THREADS}` in the "
            f"output profile: GDAL compresses the output's blocks on {SERIAL_NT2_THREADS} threads, "
            "reading and the run function stay on one. It shows how much of a back end's "
            "speed-up multi-threaded compression alone gives."
        )
    notes.append(
        "Peak RSS client is the benchmark's child process alone: the process that writes the "
        "output (for `distributed` it also hosts the client, the LocalCluster's scheduler and "
        "its nannies). Peak RSS workers is the summed RSS of the child's descendants: "
        "`distributed`'s worker processes (started by the nannies), `processes`' and "
        "`rio-mucho`'s pool processes, and multiprocessing's resource tracker where one runs "
        "(about 12 MB); `–` when there were none (the back ends that compute in one process). "
        "Each column is its own peak over the samples, so client + workers may exceed the "
        "total peak."
    )
    if startups.get("distributed"):
        notes.append(
            f"`distributed`: starting the LocalCluster ({args.workers} worker processes) and "
            "importing the tasks' modules in its workers (`riomucho_dask.workers.warm`, as the "
            "process pool's fork server preloads them) took "
            f"{statistics.median(startups['distributed']):.1f} s (median), not included in "
            "its wall time. `distributed-cold` starts its cluster the same way (not timed) but "
            "does not warm it: its wall time includes the imports in the write's first tasks, "
            "as the first write on a new cluster does."
        )
    if startups.get("processes"):
        notes.append(
            f"`processes`: the session's process pool (kept between writes, "
            f"`riomucho_dask.keep-pool`) is started first, as the cluster is: "
            f"{statistics.median(startups['processes']):.1f} s (median), not in its wall "
            "time. `processes-cold` is the same write as the first of a session: its wall "
            "time includes starting the pool (from a fork server that imports numpy, "
            "rasterio and dask once)."
        )
    notes.append(
        "`rio-mucho` includes starting its worker processes (it forks) in the wall time."
    )
    notes.append(
        "`serial` and `rio-mucho` compress the output on their one writing thread "
        f"(`serial-nt2` on {SERIAL_NT2_THREADS}); riomucho_dask's back ends encode each "
        "output tile in the task that computed it (in the worker processes for `processes` "
        "and `distributed`), and the writer only places the compressed bytes."
    )
    notes.append(
        "Peak RSS sums the RSS of every process in the tree: pages shared between a parent "
        "and forked children (rio-mucho) are counted once per process."
    )
    notes.append(
        f"The machine has {info['cores']} cores and other work may run beside the benchmark: "
        "timings are noisy; the per-run figures are below."
    )
    parts += ["Notes:", ""] + [f"- {note}" for note in notes] + [""]
    if overhead:
        parts += [
            "## Per-window overhead",
            "",
            f"A no-op run function (returns its input) over a {OVERHEAD_SIZE} x "
            f"{OVERHEAD_SIZE} 1-band uint8 raster tiled {OVERHEAD_BLOCK} x {OVERHEAD_BLOCK} "
            f"({windows} windows), uncompressed output; overhead = (back end's median - "
            f"serial median) / {windows} windows. For the back ends computing in the "
            "benchmark's process it is what the pipeline costs per window; for the parallel "
            f"ones ({args.workers} workers, worker start-up included) it is a net figure: "
            "what scheduling, transfers and start-up cost, less what splitting the work "
            "saves.",
            "",
            f"- `shim-sync`: {DESCRIPTIONS['shim-sync']}",
            f"- `rio-mucho-sync`: {DESCRIPTIONS['rio-mucho-sync']}",
            "",
            overhead,
            "",
        ]
    if overlap:
        parts += [
            "## Overlap cost",
            "",
            f"A 3 x 3 hillshade of band 1 of the first {size} x {size} input (512-px blocks, "
            "threads, DEFLATE float32 output): `hillshade` runs with `overlap=1, "
            "boundary=\"edge\"` (each window read one pixel wider, straight from the file); "
            "`hillshade-alone` is the same function on each window alone, its edges repeated "
            "(`np.pad`), which leaves seams at block edges. The ratio is the cost of "
            "overlap.",
            "",
            overlap,
            "",
        ]
    if cog:
        cog_text, cog_routes = cog
        routes = "\n".join(f"- `{name}`: {DESCRIPTIONS[name]}" for name in cog_routes
                           if name != "serial")
        parts += [
            "## COG section",
            "",
            f"The light job on the same {size} x {size} inputs, 1-band float32, DEFLATE, "
            f"{BLOCK}-px tiles, written by each route below ({args.workers} workers where "
            "parallel). "
            "`vs threads-gtiff` divides a route's median wall time by `threads-gtiff`'s "
            "(the cost of a COG over a plain tiled GeoTIFF). `identical` compares the "
            "full-resolution pixels with the serial loop's (`serial`, the reference, run "
            "again here); `cog_validate` is rio-cogeo's check of the COG layout.",
            "",
            routes,
            "",
            cog_text,
            "",
            "`threads-gtiff` and `threads-cog` encode each tile in the dask task that "
            "computed it (GDAL in memory, one thread per task); `threads-cog-gdal` lets GDAL "
            "compress on every core (`NUM_THREADS=ALL_CPUS`, also in the COG CreateCopy); "
            "`gdal-two-pass` does not (both of its passes compress on one thread); `odc-geo` "
            "compresses tiles in dask tasks (tifffile/imagecodecs) and reads through "
            "rioxarray's default lock.",
            "",
        ]
    parts += [
        "## Every run",
        "",
        "Each back end's runs in order. CPU time is user + system of the child and of the "
        "processes it started, over the job (for `distributed`, over the job and the "
        "cluster's shutdown: its workers' CPU time is only known once they exit).",
        "",
        raw_runs(cells),
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
