"""map_windows over generated rasters, compared with a serial rasterio loop."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

import riomucho_dask as rmd
from riomucho_dask.errors import (
    InputMismatchError,
    InputNotFoundError,
    ModeError,
    OutputDtypeError,
    OutputShapeError,
    RioMuchoDaskError,
    RunFunctionError,
    WindowGridError,
    WindowSpecError,
)
from riomucho_dask.read import handles

from . import runfuncs
from .conftest import assert_same_raster, block_windows, make_raster, serial_reference


@pytest.fixture
def count_reads(monkeypatch):
    calls = []
    original = handles.get_dataset

    def counting(path):
        calls.append(path)
        return original(path)

    monkeypatch.setattr(handles, "get_dataset", counting)
    return calls


def test_open_raster_chunks_follow_blocks(raster):
    path, data = raster(height=97, width=131, block=32)
    arr = rmd.open_raster(path)
    assert arr.shape == data.shape
    assert arr.chunks == ((3,), (32, 32, 32, 1), (32, 32, 32, 32, 3))
    assert np.array_equal(arr.compute(scheduler="sync"), data)


def test_open_raster_striped(raster):
    path, data = raster(tiled=False, block=32)  # 8-row strips
    arr = rmd.open_raster(path)
    assert arr.chunks[2] == (131,)
    assert set(arr.chunks[1][:-1]) == {8}
    assert np.array_equal(arr.compute(), data)


def test_open_raster_chunk_multiples(raster):
    path, data = raster(block=32)
    arr = rmd.open_raster(path, chunks=64)
    assert arr.chunks[1:] == ((64, 33), (64, 64, 3))
    assert np.array_equal(arr.compute(), data)
    with pytest.raises(WindowSpecError, match="multiples of the block shape"):
        rmd.open_raster(path, chunks=(48, 64))


def test_open_raster_missing_file_is_oserror(tmp_path):
    with pytest.raises(InputNotFoundError, match="nope.tif") as info:
        rmd.open_raster(tmp_path / "nope.tif")
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, RioMuchoDaskError)


def test_nothing_read_before_compute(raster, count_reads):
    a, _ = raster("a.tif")
    b, _ = raster("b.tif", count=1, seed=1)
    out = rmd.map_windows(runfuncs.ndvi, [a, b], count=1, dtype="float32")
    assert isinstance(out, da.Array)
    assert count_reads == []
    runfuncs.SEEN_PIDS.clear()
    lazy = rmd.map_windows(runfuncs.records_pid, [a])
    (lazy * 2)[:, :10].sum()  # building more graph on top calls nothing either
    assert runfuncs.SEEN_PIDS == []  # the run function is never called at build time
    out.compute(scheduler="sync")
    assert count_reads


def test_ndvi_example(raster, tmp_path, scheduler):
    a, _ = raster("scene_a.tif", count=3, nodata=0)
    b, _ = raster("scene_b.tif", count=2, seed=3, nodata=0)
    out = rmd.map_windows(runfuncs.ndvi, [a, b], count=1, dtype="float32")
    assert out.shape == (1, 97, 131) and out.dtype == np.float32
    written = rmd.to_raster(out, tmp_path / "ndvi.tif", like=a, compress="deflate",
                            scheduler=scheduler)
    assert written == str(tmp_path / "ndvi.tif")
    ref = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1, dtype="float32")
    assert_same_raster(written, ref)


@pytest.mark.parametrize(
    "dtype, tiled, nodata, compress",
    [
        ("uint8", True, None, "deflate"),
        ("uint16", False, 0, "lzw"),
        ("int16", True, -9999, "zstd"),
        ("float32", True, -1.5, None),
        ("float32", False, None, "deflate"),
    ],
)
def test_passthrough_matches_serial(raster, tmp_path, scheduler, dtype, tiled, nodata, compress):
    path, data = raster(dtype=dtype, tiled=tiled, nodata=nodata)
    out = rmd.map_windows(runfuncs.passthrough, [path])
    options = {"compress": compress} if compress else {}
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler, **options)
    ref = serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif")
    assert_same_raster(written, ref)
    with rasterio.open(written) as dst:
        assert np.array_equal(dst.read(), data)
        if compress:
            assert dst.compression.value.lower() == compress


def test_two_inputs_different_counts_and_dtypes(raster, tmp_path, scheduler):
    a, _ = raster("a.tif", count=3, dtype="uint16")
    b, _ = raster("b.tif", count=1, dtype="int16", seed=5)
    g = {"scale": 0.5}
    out = rmd.map_windows(runfuncs.scaled_sum, [a, b], global_args=g, count=2, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=a, compress="lzw",
                            scheduler=scheduler)
    ref = serial_reference(runfuncs.scaled_sum, [a, b], tmp_path / "ref.tif", global_args=g,
                           count=2, dtype="float32")
    assert_same_raster(written, ref)


@pytest.mark.parametrize(
    "mode, func",
    [
        ("simple_read", runfuncs.ndvi),
        ("array_read", runfuncs.array_mean),
        ("manual_read", runfuncs.manual_window_sum),
    ],
)
def test_modes_match_serial(raster, tmp_path, scheduler, mode, func):
    a, _ = raster("a.tif", count=3)
    b, _ = raster("b.tif", count=2, seed=9)
    out = rmd.map_windows(func, [a, b], mode=mode, count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=a, scheduler=scheduler)
    ref = serial_reference(func, [a, b], tmp_path / "ref.tif", mode=mode, count=1,
                           dtype="float32")
    assert_same_raster(written, ref)


def test_window_and_ij_injected(raster, tmp_path):
    path, _ = raster(block=32)
    out = rmd.map_windows(runfuncs.with_ij, [path], count=2, dtype="int32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path)
    ref = serial_reference(runfuncs.with_ij, [path], tmp_path / "ref.tif", count=2,
                           dtype="int32")
    assert_same_raster(written, ref)


def test_array_inputs_from_open_raster(raster, tmp_path):
    a, _ = raster("a.tif", count=3)
    b, _ = raster("b.tif", count=2, seed=2)
    arrays = [rmd.open_raster(a), rmd.open_raster(b, chunks=64)]  # rechunked to a's grid
    out = rmd.map_windows(runfuncs.ndvi, arrays, count=1, dtype="float32")
    assert out.chunks == arrays[0].chunks[:0] + ((1,),) + arrays[0].chunks[1:]
    written = rmd.to_raster(out, tmp_path / "out.tif", like=a)
    ref = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1, dtype="float32")
    assert_same_raster(written, ref)


def test_custom_grid_windows(raster, tmp_path, scheduler):
    path, _ = raster(height=97, width=131, block=32)
    windows = []
    for i, row in enumerate(range(0, 97, 50)):
        for j, col in enumerate(range(0, 131, 60)):
            # ij given with the windows (not the chunk index) reach the run function
            windows.append((Window(col, row, min(60, 131 - col), min(50, 97 - row)),
                            (i + 10, j + 20)))
    out = rmd.map_windows(runfuncs.with_ij, [path], count=2, dtype="int32", windows=windows)
    assert out.chunks[1:] == ((50, 47), (60, 60, 11))
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    ref = serial_reference(runfuncs.with_ij, [path], tmp_path / "ref.tif", windows=windows,
                           count=2, dtype="int32")
    assert_same_raster(written, ref)


def test_non_grid_windows_refused(raster):
    path, _ = raster()
    some = block_windows(path)[:3]
    with pytest.raises(WindowGridError, match="RioMucho|grid"):
        rmd.map_windows(runfuncs.passthrough, [path], windows=some)


def test_composes_with_dask(raster, tmp_path, scheduler):
    path, data = raster(dtype="uint8")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    doubled = (out.astype("uint16") * 2).astype("uint16")
    written = rmd.to_raster(doubled, tmp_path / "out.tif", like=path, scheduler=scheduler)
    with rasterio.open(written) as dst:
        assert dst.dtypes[0] == "uint16"
        assert np.array_equal(dst.read(), data.astype("uint16") * 2)


# -- bad input ---------------------------------------------------------------

def test_bad_mode():
    with pytest.raises(ModeError, match="'fancy_read'") as info:
        rmd.map_windows(runfuncs.passthrough, ["x.tif"], mode="fancy_read")
    assert isinstance(info.value, ValueError)


def test_missing_input_named(raster, tmp_path):
    a, _ = raster("a.tif")
    with pytest.raises(InputNotFoundError, match="missing.tif"):
        rmd.map_windows(runfuncs.passthrough, [a, str(tmp_path / "missing.tif")])


@pytest.mark.parametrize(
    "options, what",
    [
        ({"height": 90}, "height x width"),
        ({"crs": "EPSG:4326"}, "CRS"),
        ({"transform": rasterio.transform.from_origin(500010.0, 4200000.0, 10.0, 10.0)},
         "transform"),
    ],
)
def test_misaligned_inputs(raster, count_reads, options, what):
    a, _ = raster("a.tif")
    b, _ = raster("b.tif", **options)
    with pytest.raises(InputMismatchError, match=what) as info:
        rmd.map_windows(runfuncs.ndvi, [a, b], count=1, dtype="float32")
    assert "b.tif" in str(info.value)
    assert count_reads == []


def test_run_function_error_names_window(raster, tmp_path, scheduler):
    path, _ = raster()
    target = tmp_path / "out.tif"
    target.write_bytes(b"previous result")
    out = rmd.map_windows(runfuncs.fails_on_one, [path], global_args={"bad_ij": (1, 2)})
    with pytest.raises(RunFunctionError) as info:
        rmd.to_raster(out, target, like=path, scheduler=scheduler)
    err = info.value
    assert tuple(err.ij) == (1, 2)
    assert err.window == Window(64, 32, 32, 32)
    assert "ij=(1, 2)" in str(err) and "Window(col_off=64, row_off=32" in str(err)
    assert isinstance(err.__cause__, ZeroDivisionError)
    assert "boom at" in err.formatted_traceback
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


def test_run_function_error_leaves_no_file(raster, tmp_path, scheduler):
    path, _ = raster()
    out = rmd.map_windows(runfuncs.fails_on_one, [path], global_args={"bad_ij": (3, 4)})
    with pytest.raises(RunFunctionError):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


@pytest.mark.parametrize("func, got", [(runfuncs.wrong_shape, "(3, 32, 31)"),
                                       (runfuncs.wrong_count, "(1, 32, 32)")])
def test_wrong_shape_or_count(raster, tmp_path, func, got):
    path, _ = raster()
    out = rmd.map_windows(func, [path])
    with pytest.raises(OutputShapeError, match="expected") as info:
        rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler="sync")
    message = str(info.value)
    assert got in message and "(3, 32, 32)" in message and "ij=(0, 0)" in message
    assert isinstance(info.value, ValueError)
    assert not (tmp_path / "out.tif").exists()


def test_default_dtype_refuses_lossy_result(raster, tmp_path):
    path, _ = raster(dtype="uint16")
    out = rmd.map_windows(runfuncs.float_result, [path])
    with pytest.raises(OutputDtypeError, match="pass dtype="):
        out.compute(scheduler="sync")
    ok = rmd.map_windows(runfuncs.float_result, [path], dtype="float32")
    assert ok.compute(scheduler="sync").dtype == np.float32


def test_missing_output_directory_before_compute(raster, tmp_path, count_reads):
    path, _ = raster()
    out = rmd.map_windows(runfuncs.passthrough, [path])
    with pytest.raises(rmd.errors.OutputPathError, match="does not exist"):
        rmd.to_raster(out, tmp_path / "no" / "such" / "dir.tif", like=path)
    assert count_reads == []


def test_map_windows_keeps_user_dask_config(raster):
    path, data = raster()
    with dask.config.set(scheduler="sync"):
        out = rmd.map_windows(runfuncs.passthrough, [path])
        assert np.array_equal(out.compute(), data)


def test_a_task_enters_gdal_options_once_not_once_a_window(tmp_path, monkeypatch):
    # entering a first rasterio.Env looks for GDAL's and PROJ's data files: once a
    # window, that was 70 us a window (a 4096-window job 2.4x slower than serial)
    path, data = make_raster(tmp_path / "small.tif", count=1, height=128, width=128, block=16)
    out = rmd.map_windows(lambda data, window, ij, g: data[0] + 1, [path], count=1,
                          dtype="uint16")
    tasks = np.prod(out.numblocks)
    windows = (128 // 16) ** 2
    assert tasks < windows  # (windows grouped into tasks)
    entered = []
    real = rasterio.env.Env.__enter__
    monkeypatch.setattr(rasterio.env.Env, "__enter__",
                        lambda self: entered.append(1) or real(self))
    result = out.compute(scheduler="sync")
    np.testing.assert_array_equal(result, data + 1)
    # a read task and a map task each (and a first open), never one a window
    assert 0 < len(entered) <= 2 * tasks + 1 < windows, (len(entered), tasks, windows)
