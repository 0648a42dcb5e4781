"""Several windows a task: each window's run function once, no input pixel
read twice, windows and ij as without groups, far fewer tasks."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import rasterio

import riomucho_dask as rmd
from riomucho_dask.map import task_groups
from riomucho_dask.windows import window_groups

from .conftest import assert_same_raster, block_windows, serial_reference
from .runfuncs import calls_per_window, counted, mask_low, neighbour_sum, with_ij

# 250 x 190 inputs with 32 px blocks: 8 x 6 = 48 windows; a float32 band of 2 x 2
# windows is 16 KB
TWO_BY_TWO = {"riomucho_dask.task-bytes": 64 * 64 * 4}
SIZE = {"height": 250, "width": 190}


def test_groups_of_windows(raster, tmp_path, scheduler):
    path, _ = raster(count=3, **SIZE)
    calls = tmp_path / "calls"
    calls.mkdir()
    g = {"calls": str(calls)}
    # tasks are sized by the bytes they read, when more than they write: 3 uint16
    # bands read, 6 bytes a pixel
    with dask.config.set({"riomucho_dask.task-bytes": 64 * 64 * 6}):
        out = rmd.map_windows(counted, [path], global_args=g, count=1, dtype="float32")
    assert out.chunks[1:] == ((64, 64, 64, 58), (64, 64, 62))  # 2 x 2 windows a task
    assert out.npartitions == 12  # of 48 windows
    report = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler,
                           report=True)
    assert calls_per_window(calls) == {ij: 1 for _, ij in block_windows(path)}
    assert report.windows == 48 and report.tasks == 12
    assert report.pixels_read == 3 * 250 * 190  # every input pixel once, no more
    reference = serial_reference(counted, [path], tmp_path / "ref.tif",
                                 global_args={"calls": str(tmp_path)}, count=1,
                                 dtype="float32")
    assert_same_raster(tmp_path / "out.tif", reference)


@pytest.mark.parametrize("tiled", [True, False])
def test_window_and_ij_as_without_groups(raster, tmp_path, tiled):
    # striped: 17 windows of 256 rows (grouped strips), 2 a task
    path, _ = raster(tiled=tiled, **(SIZE if tiled else {"height": 4352, "width": 20}))
    with dask.config.set({"riomucho_dask.task-bytes": 16 * 2**20 if not tiled else
                          64 * 64 * 8}):
        grouped = rmd.map_windows(with_ij, [path], count=2, dtype="int32")
    with dask.config.set({"riomucho_dask.task-bytes": 0}):
        single = rmd.map_windows(with_ij, [path], count=2, dtype="int32")
    assert grouped.npartitions < single.npartitions
    assert np.array_equal(grouped.compute(), single.compute())


def test_given_windows_keep_their_ij(raster, tmp_path, scheduler):
    path, _ = raster()
    # a grid of 16 x 16 windows, ij numbered backwards: passed as given
    windows = [(rasterio.windows.Window(c, r, min(16, 131 - c), min(16, 97 - r)),
                (100 - r // 16, 100 - c // 16)) for r in range(0, 97, 16)
               for c in range(0, 131, 16)]
    with dask.config.set({"riomucho_dask.task-bytes": 32 * 32 * 8}):
        out = rmd.map_windows(with_ij, [path], count=2, dtype="int32", windows=windows)
    assert out.npartitions < len(windows)
    got = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    reference = serial_reference(with_ij, [path], tmp_path / "ref.tif", windows=windows,
                                 count=2, dtype="int32")
    assert_same_raster(got, reference)


def test_masked_results_grouped(raster, tmp_path, scheduler):
    path, _ = raster(count=1, nodata=0, **SIZE)
    with dask.config.set(TWO_BY_TWO):
        out = rmd.map_windows(mask_low, [path], masked=True, count=1, dtype="uint16",
                              global_args={"threshold": 20000})
    assert out.npartitions == 12
    block = out.blocks[0, 0, 0].compute()
    assert isinstance(block, np.ma.MaskedArray) and block.mask.any()
    got = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    with rasterio.open(path) as src:
        data = src.read(masked=True)
        want = mask_low([data], None, None, {"threshold": 20000})
    with rasterio.open(got) as dst:
        assert np.array_equal(dst.read(masked=True).filled(0), np.ma.filled(want, 0))


def test_overlap_grouped(raster, tmp_path, scheduler):
    path, _ = raster(count=1, **SIZE)
    with dask.config.set(TWO_BY_TWO):
        out = rmd.map_windows(neighbour_sum, [path], overlap=1, boundary="edge", count=1,
                              dtype="float32")
    assert out.npartitions == 12
    with dask.config.set({"riomucho_dask.task-bytes": 0}):
        single = rmd.map_windows(neighbour_sum, [path], overlap=1, boundary="edge", count=1,
                                 dtype="float32")
    assert single.npartitions == 48
    got = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    with rasterio.open(got) as dst:
        assert np.array_equal(dst.read(), single.compute(scheduler="sync"))


def test_default_groups_are_a_few_mb(raster, tmp_path):
    """Tasks of at most task-bytes of output (16 MiB), and at least 8 of them: a
    4096 x 4096 float32 output of 256 px blocks is 4 tasks of 2048 x 2048 with
    the bound alone, and 8 to 16 tasks of 1024 to 1536 px with both."""
    rows = cols = (256,) * 16
    assert window_groups(rows, cols, 16 * 2**20 // 4) == ((8, 8), (8, 8))
    row_groups, col_groups = task_groups(rows, cols, 1, "float32")
    assert 8 <= len(row_groups) * len(col_groups) <= 16
    assert max(row_groups) * max(col_groups) * 256 * 256 * 4 <= 16 * 2**20
    # on a small raster, at least 8 tasks where there are as many windows
    path, _ = raster(height=256, width=256, block=32)
    out = rmd.map_windows(counted, [path], global_args={"calls": str(tmp_path)}, count=1,
                          dtype="float32")
    assert 8 <= out.npartitions < 64


def test_shim_window_list_runs_in_groups(raster, tmp_path, scheduler):
    """rio-mucho window lists that are no grid (here overlapping 40 x 40 windows
    every 30 px) run several consecutive windows a task, each window once."""
    import riomucho_dask as riomucho
    from riomucho_dask import shim

    path, _ = raster(count=1, **SIZE)
    windows = [(rasterio.windows.Window(c, r, min(40, 190 - c), min(40, 250 - r)), (r, c))
               for r in range(0, 250, 30) for c in range(0, 190, 30)]
    calls = tmp_path / "calls"
    calls.mkdir()
    g = {"calls": str(calls)}
    with dask.config.set({"riomucho_dask.task-bytes": 4 * 40 * 40 * 4}):
        runs = shim._window_runs(windows, 1, "float32")
        assert len(runs) < len(windows) / 3 and sum(map(len, runs)) == len(windows)
        options = {**rasterio.open(path).profile, "dtype": "float32"}
        with riomucho.RioMucho([path], str(tmp_path / "out.tif"), counted, windows=windows,
                               global_args=g, options=options) as rm:
            if isinstance(scheduler, str) and scheduler in ("sync", "threads"):
                rm.run(1 if scheduler == "sync" else 2)
            elif isinstance(scheduler, str):
                with dask.config.set(scheduler="processes"):
                    rm.run(2)
            else:
                with scheduler.as_current():
                    rm.run(2)
    assert calls_per_window(calls) == {ij: 1 for _, ij in windows}
    reference = serial_reference(counted, [path], tmp_path / "ref.tif", windows=windows,
                                 global_args={"calls": str(tmp_path)}, dtype="float32")
    assert_same_raster(tmp_path / "out.tif", reference)
