"""Fixtures: small generated rasters and a serial rasterio reference."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from riomucho_dask.map.contract import array_stack

TRANSFORM = from_origin(500000.0, 4200000.0, 10.0, 10.0)
CRS = "EPSG:32631"


def make_raster(path, *, count=3, height=97, width=131, dtype="uint16", tiled=True,
                block=32, nodata=None, crs=CRS, transform=TRANSFORM, seed=0,
                compress=None):
    """Write a deterministic raster with smooth fields plus noise; return (path, data)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    bands = []
    for band in range(count):
        field = np.sin(rows / (7.0 + band)) + np.cos(cols / (11.0 + band))
        bands.append(field + rng.normal(0, 0.2, size=(height, width)))
    data = np.stack(bands)
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        low, high = max(info.min, -1000), min(info.max, 60000)
        data = low + (data - data.min()) / (np.ptp(data) or 1) * (high - low)
        data = np.clip(np.round(data), info.min, info.max)
    data = data.astype(dtype)
    if nodata is not None:
        data[:, :3, :5] = nodata
    profile = dict(driver="GTiff", count=count, height=height, width=width, dtype=dtype.name,
                   crs=crs, transform=transform)
    if tiled:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    else:
        profile.update(tiled=False, blockysize=max(1, block // 4))
    if nodata is not None:
        profile["nodata"] = nodata
    if compress:
        profile["compress"] = compress
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return str(path), data


@pytest.fixture
def raster(tmp_path):
    """Factory: ``raster(name, **options)`` writes a raster in tmp_path."""
    def factory(name="in.tif", **options):
        return make_raster(tmp_path / name, **options)
    return factory


def block_windows(path):
    with rasterio.open(path) as src:
        return [(window, ij) for ij, window in src.block_windows()]


def serial_reference(run_function, inputs, out_path, *, mode="simple_read", windows=None,
                     global_args=None, profile=None, count=None, dtype=None):
    """The plain rasterio loop every output is compared with."""
    windows = windows if windows is not None else block_windows(inputs[0])
    global_args = {} if global_args is None else global_args
    srcs = [rasterio.open(p) for p in inputs]
    try:
        out_profile = dict(srcs[0].profile)
        out_profile.update(profile or {})
        if count is not None:
            out_profile["count"] = count
        if dtype is not None:
            out_profile["dtype"] = np.dtype(dtype).name
        with rasterio.open(out_path, "w", **out_profile) as dst:
            for window, ij in windows:
                if mode == "manual_read":
                    data = srcs
                elif mode == "array_read":
                    data = array_stack([s.read(window=window) for s in srcs])
                else:
                    data = [s.read(window=window) for s in srcs]
                dst.write(run_function(data, window, ij, global_args), window=window)
    finally:
        for s in srcs:
            s.close()
    return str(out_path)


def assert_same_raster(path, reference):
    """Pixels bit for bit, plus dtype, count, CRS, transform and nodata."""
    with rasterio.open(path) as got, rasterio.open(reference) as want:
        assert got.dtypes == want.dtypes
        assert got.count == want.count
        assert got.crs == want.crs
        assert got.transform == want.transform
        assert got.nodata == want.nodata or (
            np.isnan(got.nodata) and np.isnan(want.nodata)
        )
        assert np.array_equal(got.read(), want.read(), equal_nan=got.dtypes[0].startswith("f"))


@pytest.fixture(scope="session")
def cluster_client():
    """One 2-worker LocalCluster of processes for the whole session.

    The client is not set as default: tests pass it as ``scheduler=``
    (or make it current) so other tests keep their own schedulers.
    """
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        with Client(cluster, set_as_default=False) as client:
            yield client


@pytest.fixture(params=["sync", "threads", "processes", "distributed"])
def scheduler(request):
    """Each pipeline test runs on every scheduler."""
    if request.param == "distributed":
        return request.getfixturevalue("cluster_client")
    return request.param


@pytest.fixture(params=["sync", "threads"])
def local_scheduler(request):
    """Schedulers that run in this process (where compute=False graphs run)."""
    return request.param
