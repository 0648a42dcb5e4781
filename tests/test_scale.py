"""Process pools and dask.distributed: one writer, bounded memory, faults survived."""

from __future__ import annotations

import os
import threading
import time

import dask
import numpy as np
import psutil
import pytest
import rasterio

import riomucho_dask as rmd
from riomucho_dask.errors import RunFunctionError, SchedulerError
from riomucho_dask.execute import schedulers

from . import runfuncs
from .conftest import assert_same_raster, serial_reference


def test_scheduler_kinds(cluster_client):
    assert schedulers.kind("sync") == "sync"
    assert schedulers.kind("threads") == "threads"
    assert schedulers.kind("processes") == "processes"
    assert schedulers.kind(cluster_client) == "distributed"
    with dask.config.set(scheduler="processes"):
        assert schedulers.kind(None) == "processes"
    with pytest.raises(SchedulerError, match="bogus"):
        schedulers.kind("bogus")


def test_processes_from_dask_config(raster, tmp_path):
    path, _ = raster()
    out = rmd.map_windows(runfuncs.ndvi, [path, path], count=1, dtype="float32")
    with dask.config.set(scheduler="processes", num_workers=2):
        written = rmd.to_raster(out, tmp_path / "out.tif", like=path, compress="zstd")
    ref = serial_reference(runfuncs.ndvi, [path, path], tmp_path / "ref.tif", count=1,
                           dtype="float32")
    assert_same_raster(written, ref)


@pytest.mark.parametrize("compress", ["deflate", "lzw", "zstd"])
def test_cluster_every_tile(raster, tmp_path, cluster_client, compress):
    a, _ = raster("a.tif", count=3, block=16, nodata=0)
    b, _ = raster("b.tif", count=2, block=16, seed=7, nodata=0)
    out = rmd.map_windows(runfuncs.ndvi, [a, b], count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=a, compress=compress,
                            scheduler=cluster_client)
    ref = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1, dtype="float32")
    assert_same_raster(written, ref)
    with rasterio.open(written) as got, rasterio.open(ref) as want:
        for _, window in got.block_windows():  # every tile read back on its own
            assert np.array_equal(got.read(window=window), want.read(window=window))


def test_compute_false_on_processes(raster, tmp_path):
    path, data = raster()
    write = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path,
                          compute=False)
    # dask.compute would run the store's tasks in a worker process: refused, clearly
    with pytest.raises(SchedulerError, match="riomucho_dask.compute"):
        dask.compute(write, scheduler="processes")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
    # the write's own compute (and rmd.compute) stream blocks back to this process
    assert write.compute(scheduler="processes") == str(tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as src:
        assert np.array_equal(src.read(), data)


def test_worker_killed_mid_run_is_survived(raster, tmp_path, cluster_client):
    path, _ = raster(block=16)
    marker = tmp_path / "died-once"
    g = {"ij": (2, 3), "marker": str(marker)}
    out = rmd.map_windows(runfuncs.dies_once, [path], global_args=g)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, compress="deflate",
                            scheduler=cluster_client)
    assert marker.exists()  # a worker really died
    ref = serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif")
    assert_same_raster(written, ref)
    cluster_client.wait_for_workers(2, timeout=60)


def test_worker_killed_on_process_pool_is_a_clear_error(raster, tmp_path):
    path, _ = raster(block=16)
    g = {"ij": (1, 1), "marker": str(tmp_path / "died-once")}
    out = rmd.map_windows(runfuncs.dies_once, [path], global_args=g)
    with pytest.raises(SchedulerError, match="worker process died"):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler="processes")
    assert not (tmp_path / "out.tif").exists()


def test_error_on_cluster_then_next_job_runs(raster, tmp_path, cluster_client):
    path, _ = raster()
    bad = rmd.map_windows(runfuncs.fails_on_one, [path], global_args={"bad_ij": (1, 1)})
    with pytest.raises(RunFunctionError) as info:
        rmd.to_raster(bad, tmp_path / "bad.tif", like=path, scheduler=cluster_client)
    assert tuple(info.value.ij) == (1, 1)
    assert "boom at" in info.value.formatted_traceback
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert not (tmp_path / "bad.tif").exists()
    good = rmd.map_windows(runfuncs.passthrough, [path])
    written = rmd.to_raster(good, tmp_path / "good.tif", like=path, scheduler=cluster_client)
    assert_same_raster(written, serial_reference(runfuncs.passthrough, [path],
                                                 tmp_path / "ref.tif"))


def test_shim_uses_active_client(raster, tmp_path, cluster_client):
    path, _ = raster()
    runfuncs.SEEN_PIDS.clear()
    with cluster_client.as_current():
        with rmd.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.records_pid) as rm:
            rm.run(1)  # processes=1 would run here, but the active client wins
    assert runfuncs.SEEN_PIDS == []  # nothing ran in this process
    assert_same_raster(tmp_path / "out.tif",
                       serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif"))


class PeakRSS:
    """Samples this process's RSS in a thread; ``peak`` minus ``start`` is the growth."""

    def __init__(self):
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("which", ["processes", "distributed"])
def test_caller_memory_stays_flat(tmp_path, cluster_client, which):
    size = 4096  # a 64 MB float32 output, in blocks of 256 KB
    path = tmp_path / "big.tif"
    profile = dict(driver="GTiff", count=1, height=size, width=size, dtype="uint16",
                   crs="EPSG:32631", transform=rasterio.transform.from_origin(0, size, 1, 1),
                   tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        rows = np.arange(size, dtype="uint16")[:, None]
        dst.write(((rows + np.arange(size, dtype="uint16")) % 4096)[None])
    out = rmd.map_windows(runfuncs.to_float, [str(path)], dtype="float32")
    scheduler = cluster_client if which == "distributed" else "processes"
    output_bytes = size * size * 4
    with PeakRSS() as rss:
        rmd.to_raster(out, tmp_path / "out.tif", like=str(path), compress="deflate",
                      scheduler=scheduler)
    growth = rss.peak - rss.start
    assert growth < output_bytes / 4, f"caller RSS grew {growth / 1e6:.0f} MB"
    with rasterio.open(tmp_path / "out.tif") as src, rasterio.open(path) as inp:
        assert np.array_equal(src.read(1, window=((0, 512), (3584, 4096))),
                              inp.read(1, window=((0, 512), (3584, 4096))) * np.float32(0.5))
    os.remove(path)


@pytest.mark.parametrize(
    "env, changed",
    [({"MALLOC_TRIM_THRESHOLD_": "65536"}, True),  # as dask's nanny starts workers
     ({"MALLOC_TRIM_THRESHOLD_": "65536", "RIOMUCHO_DASK_TUNE_MALLOC": "0"}, False),
     ({}, False)],
)
def test_tune_malloc_only_undoes_the_nanny_setting(env, changed):
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items()
             if k not in ("MALLOC_TRIM_THRESHOLD_", "RIOMUCHO_DASK_TUNE_MALLOC")}
    code = ("from riomucho_dask.workers import tune_malloc; "
            "print(tune_malloc(), tune_malloc())")
    result = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                            capture_output=True, text=True, check=True)
    assert result.stdout.split() == [str(changed), "False"]  # once per process


def test_warm_imports_the_tasks_modules_in_the_workers(cluster_client):
    import sys

    from riomucho_dask.workers import PRELOAD, warm

    warm(cluster_client)
    loaded = cluster_client.run(lambda: all(name in sys.modules for name in PRELOAD))
    assert loaded and all(loaded.values())
