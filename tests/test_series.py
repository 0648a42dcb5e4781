"""Series: dated sources read onto a grid, in open_raster and map_windows."""

from __future__ import annotations

import datetime as dt

import dask
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

import riomucho_dask as rmd
from riomucho_dask.errors import InputError, OverlapError, ProfileError
from riomucho_dask.read.handles import EXACT_TOLERANCE
from tests import runfuncs
from tests.conftest import make_raster

#: A grid in another CRS (web mercator) over the fixtures' rasters, at ~14 m.
MERCATOR = rmd.Grid("EPSG:3857", Affine(14.0, 0, 333900.0, 0, -14.0, 4572100.0), 150, 95)


@pytest.fixture
def dated(tmp_path):
    """Four single-band uint16 rasters with nodata 0 (a corner of 0s), two of them
    shifted, as three dates (the second a mosaic of two files)."""
    paths = []
    for n in range(4):
        shift = Affine.translation(0, 0) if n % 2 == 0 else Affine.translation(300, -200)
        transform = shift * Affine(10, 0, 500000, 0, -10, 4200000)
        path, _ = make_raster(tmp_path / f"d{n}.tif", count=1, nodata=0, seed=n,
                              transform=transform)
        paths.append(path)
    steps = [(dt.datetime(2024, 5, 11, 10, 30), paths[3]),
             ("2024-05-01T10:30:00Z", paths[0]),
             (dt.date(2024, 5, 6), [paths[1], paths[2]])]
    return rmd.Series(steps), paths


def warped_whole(path, grid, resampling=Resampling.nearest):
    """One read of the whole grid through a WarpedVRT (exact transformer): the
    serial reference; pixels outside the file invalid."""
    with rasterio.open(path) as src, WarpedVRT(
            src, crs=grid.crs, transform=grid.transform, width=grid.width,
            height=grid.height, resampling=resampling, tolerance=EXACT_TOLERANCE) as vrt:
        return vrt.read(1), vrt.read_masks(1) > 0


def reference(steps, grid, resampling=Resampling.nearest):
    """(time, 1, rows, cols) data and validity: per step, first valid wins."""
    data = np.zeros((len(steps), 1, grid.height, grid.width), "uint16")
    valid = np.zeros(data.shape, bool)
    for t, files in enumerate(steps):
        for path in files:
            pixels, ok = warped_whole(path, grid, resampling)
            take = ok & ~valid[t, 0]
            data[t, 0][take] = pixels[take]
            valid[t, 0] |= take
    return data, valid


def test_series_times_are_aware_and_ascending(dated):
    series, paths = dated
    assert [t.day for t in series.times] == [1, 6, 11]
    assert all(t.tzinfo is not None for t in series.times)
    assert series.times[2] == dt.datetime(2024, 5, 11, 10, 30, tzinfo=dt.timezone.utc)
    assert len(series) == 3 and "3 steps" in repr(series)


@pytest.mark.parametrize("steps, said", [
    ([], "at least one"),
    ([("2024-05-01",)], "step 0"),
    ([("yesterday", "a.tif")], "ISO 8601"),
    ([("2024-05-01", [])], "step 0"),
    ([("2024-05-01", 3)], "step 0"),
])
def test_series_bad_steps(steps, said):
    with pytest.raises(InputError, match=said):
        rmd.Series(steps)


def test_open_raster_series_equals_whole_grid_reads(dated):
    series, paths = dated
    cube = rmd.open_raster(series, grid=MERCATOR, chunks=32)
    assert cube.shape == (3, 1, 95, 150) and cube.dtype == np.uint16
    assert cube.chunks[:2] == ((3,), (1,))
    want, valid = reference([[paths[0]], [paths[1], paths[2]], [paths[3]]], MERCATOR)
    got = cube.compute()
    assert np.array_equal(got, want)
    assert valid.sum() > 0 and (~valid).sum() > 0  # a real mosaic, with gaps


@pytest.mark.parametrize("resampling", ["nearest", "bilinear", "cubic"])
def test_warped_reads_do_not_depend_on_the_windows(dated, resampling):
    """One whole-grid read, 16 x 16 chunks and 48 x 80 chunks: the same pixels."""
    series, paths = dated
    whole = rmd.open_raster(series, grid=MERCATOR, chunks=(95, 150),
                            resampling=resampling).compute()
    for chunks in (16, (48, 80)):
        got = rmd.open_raster(series, grid=MERCATOR, chunks=chunks,
                              resampling=resampling).compute()
        assert np.array_equal(got, whole), chunks


def test_masked_series(dated):
    series, paths = dated
    cube = rmd.open_raster(series, grid=MERCATOR, masked=True).compute()
    want, valid = reference([[paths[0]], [paths[1], paths[2]], [paths[3]]], MERCATOR)
    assert isinstance(cube, np.ma.MaskedArray)
    assert np.array_equal(~cube.mask, valid)
    assert np.array_equal(cube.data[valid], want[valid])
    counts = rmd.map_windows(runfuncs.clear_count, [series], grid=MERCATOR, masked=True,
                             dtype="uint16").compute()
    assert np.array_equal(np.ma.getdata(counts), valid.sum(axis=0))


def test_map_windows_series_on_every_scheduler(dated, tmp_path, scheduler):
    series, paths = dated
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.series_median, [series], grid=MERCATOR, dtype="float32",
                          windows=None, global_args={"calls": str(calls)})
    assert out.shape == (1, 95, 150)
    written = rmd.to_raster(out, tmp_path / "median.tif", scheduler=scheduler)
    want, _ = reference([[paths[0]], [paths[1], paths[2]], [paths[3]]], MERCATOR)
    with rasterio.open(written) as got:
        assert np.array_equal(got.read(), np.median(want.astype("float64"), axis=0)
                              .astype("float32"))
        assert got.crs == MERCATOR.crs and got.transform == MERCATOR.transform
        assert (got.width, got.height) == (150, 95)
    per_window = runfuncs.calls_per_window(calls)
    assert set(per_window.values()) == {1}  # each window once
    assert len(per_window) == 1  # 150 x 95 on a grid from no file: one 512 x 512 window


def test_series_beside_a_plain_raster(dated, tmp_path):
    series, paths = dated
    dem, _ = make_raster(tmp_path / "dem.tif", count=1, dtype="int16", seed=9)
    out = rmd.map_windows(runfuncs.series_minus_dem, [series, dem], grid=MERCATOR,
                          windows=[rasterio.windows.Window(c, r, 30, min(35, 95 - r))
                                   for r in (0, 35, 70) for c in (0, 30, 60, 90, 120)],
                          count=1, dtype="float32").compute()
    first, _ = warped_whole(paths[0], MERCATOR)
    other, _ = warped_whole(dem, MERCATOR)
    assert np.array_equal(out[0], first.astype("float32") - other.astype("float32"))


def test_array_read_stacks_dates_time_major(dated):
    series, paths = dated
    stacked = rmd.map_windows(lambda d, w, ij, g: d, [series], grid=MERCATOR, count=3,
                              mode="array_read").compute()
    cube = rmd.open_raster(series, grid=MERCATOR).compute()
    assert np.array_equal(stacked, cube.reshape((3, 95, 150)))


def test_series_refusals(dated):
    series, _ = dated
    with pytest.raises(InputError, match="grid="):
        rmd.map_windows(runfuncs.series_median, [series], dtype="float32")
    with pytest.raises(InputError, match="grid="):
        rmd.open_raster(series)
    with pytest.raises(InputError, match="manual_read"):
        rmd.map_windows(runfuncs.manual_first, [series], grid=MERCATOR, mode="manual_read")
    with pytest.raises(OverlapError, match="series"):
        rmd.map_windows(runfuncs.series_median, [series], grid=MERCATOR, overlap=1)
    cube = rmd.open_raster(series, grid=MERCATOR)
    with pytest.raises(ProfileError, match="reduce it over time"):
        rmd.to_raster(cube, "never.tif")


def test_mixed_band_counts_refused(tmp_path):
    a, _ = make_raster(tmp_path / "a.tif", count=1)
    b, _ = make_raster(tmp_path / "b.tif", count=2)
    with pytest.raises(InputError, match="one band count"):
        rmd.open_raster(rmd.Series([("2024-01-01", a), ("2024-01-02", b)]), grid=a)


def test_tasks_are_sized_by_the_bytes_they_read(tmp_path):
    """200 dates of a 512 x 512 grid: a task holds fewer windows than one date would."""
    path, _ = make_raster(tmp_path / "one.tif", count=1, height=512, width=512, block=64)
    grid = rmd.Grid.from_info(rmd.read.raster_info(path))
    few = rmd.Series([(f"2024-01-{d:02d}", path) for d in (1, 2)])
    many = rmd.Series([(dt.datetime(2024, 1, 1) + dt.timedelta(days=d), path)
                       for d in range(200)])
    with dask.config.set({"riomucho_dask.task-bytes": 4 * 2**20}):
        small = rmd.map_windows(runfuncs.series_median, [few], grid=path, dtype="float32")
        large = rmd.map_windows(runfuncs.series_median, [many], grid=path, dtype="float32")
    assert grid.shape == (512, 512)
    # 2 dates x 2 bytes: windows grouped by the output's 4 bytes a pixel (at least 8
    # tasks: 6 windows a task); 200 dates x 2 bytes = 400 bytes a pixel read: a task
    # of at most 4 MiB of input holds 2 windows
    area = [int(np.prod(a.chunksize[1:])) for a in (small, large)]
    assert area[0] == 6 * 64 * 64
    assert area[1] * 400 <= 4 * 2**20 and area[1] == 2 * 64 * 64


def test_to_xarray_of_a_series(dated):
    pytest.importorskip("rioxarray")
    series, _ = dated
    cube = rmd.to_xarray(rmd.open_raster(series, grid=MERCATOR))
    assert cube.dims == ("time", "band", "y", "x")
    assert [str(t)[:10] for t in cube.time.values] == ["2024-05-01", "2024-05-06",
                                                        "2024-05-11"]
    assert list(cube.band.values) == [1]
    assert cube.rio.crs == MERCATOR.crs and cube.rio.transform() == MERCATOR.transform
    assert cube.rio.nodata == 0
    median = rmd.to_xarray(rmd.map_windows(runfuncs.series_median, [series], grid=MERCATOR,
                                           dtype="float32"))
    assert median.dims == ("band", "y", "x") and median.rio.transform() == MERCATOR.transform


@pytest.mark.parametrize("resampling", ["bilinear", "cubic", "average"])
def test_downsampling_reads_do_not_depend_on_task_size(tmp_path, resampling):
    """30 m onto 45 m in another CRS: GDAL warps a request larger than the VRT's
    block in one go, with the kernel's scale from that request (a single 600 x 600
    read differed from 512 x 512 ones on most pixels); reads are made on the
    VRT's blocks, so windows of 64 and 600 pixels give the same pixels."""
    path, _ = make_raster(tmp_path / "30m.tif", count=1, height=900, width=900, block=128,
                          transform=Affine(30, 0, 500000, 0, -30, 4200000))
    grid = rmd.Grid.from_bounds((2.99, 37.7, 3.31, 37.95), "EPSG:3857", 45,
                                bounds_crs="EPSG:4326")
    assert min(grid.shape) > 600
    small = rmd.open_raster(path, grid=grid, resampling=resampling, chunks=64).compute()
    large = rmd.open_raster(path, grid=grid, resampling=resampling, chunks=600).compute()
    assert np.array_equal(small, large)
    assert (small > 0).mean() > 0.5
