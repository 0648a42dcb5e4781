"""The RioMucho shim: rio-mucho programs run unchanged, with identical output."""

from __future__ import annotations

import multiprocessing
import os

import dask
import numpy as np
import pytest
import rasterio
import riomucho as original_riomucho
from rasterio.windows import Window

import riomucho_dask as riomucho
from riomucho_dask import errors, utils
from riomucho_dask.single_process_pool import MockTub

from . import runfuncs
from .conftest import assert_same_raster, block_windows, make_raster, serial_reference


@pytest.fixture(autouse=True)
def rio_mucho_without_fork(monkeypatch):
    """rio-mucho's pool forks; this test process has threads (a LocalCluster, dask
    pools), and forking a threaded process can deadlock the child.  Give rio-mucho a
    forkserver pool: the same Pool API, started from a clean server process."""
    monkeypatch.setattr(original_riomucho, "Pool",
                        multiprocessing.get_context("forkserver").Pool)


@pytest.fixture
def two_inputs(raster):
    a, _ = raster("a.tif", count=3, dtype="uint16")
    b, _ = raster("b.tif", count=2, dtype="uint16", seed=4)
    return a, b


def _profile(path):
    with rasterio.open(path) as src:
        return dict(src.profile)


def _options(path, **changes):
    options = utils.getOptions(path)
    options.update(changes)
    return options


MODES = [
    ("simple_read", runfuncs.rio_mucho_simple, 2),
    ("array_read", runfuncs.rio_mucho_array, 1),
    ("manual_read", runfuncs.rio_mucho_manual, 2),
]


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("mode, func, count", MODES)
def test_parity_with_rio_mucho(two_inputs, tmp_path, mode, func, count, processes):
    a, b = two_inputs
    options = _options(a, count=count, compress="deflate")
    windows = utils.getWindows(a)
    ours, theirs = tmp_path / "ours.tif", tmp_path / "theirs.tif"
    with original_riomucho.RioMucho([a, b], str(theirs), func, mode=mode, windows=windows,
                                    options=dict(options), global_args={"divide": 3}) as rm:
        rm.run(processes)
    with riomucho.RioMucho([a, b], str(ours), func, mode=mode, windows=windows,
                           options=dict(options), global_args={"divide": 3}) as rm:
        assert rm.run(processes) is None
    with rasterio.open(ours) as got, rasterio.open(theirs) as want:
        assert np.array_equal(got.read(), want.read())
        assert got.profile == want.profile
    assert_same_raster(ours, theirs)


def test_defaults_match_rio_mucho(raster, tmp_path):
    path, data = raster(count=2, dtype="int16")
    with riomucho.RioMucho([path], str(tmp_path / "ours.tif"), runfuncs.passthrough) as rm:
        rm.run(1)
    with original_riomucho.RioMucho([path], str(tmp_path / "theirs.tif"),
                                    runfuncs.passthrough) as rm:
        rm.run(1)
    assert_same_raster(tmp_path / "ours.tif", tmp_path / "theirs.tif")
    assert _profile(tmp_path / "ours.tif") == _profile(tmp_path / "theirs.tif")


def test_kwargs_alias_and_caller_dict_untouched(two_inputs, tmp_path):
    a, b = two_inputs
    kwargs = _options(a, count=2, dtype="uint16")
    kwargs["transform"] = tuple(kwargs["transform"])[:6]  # rio-mucho guards old-style transforms
    before = dict(kwargs)
    with riomucho.RioMucho([a, b], str(tmp_path / "out.tif"), runfuncs.rio_mucho_simple,
                           kwargs=kwargs, global_args={"divide": 2}) as rm:
        rm.run(1)
    assert kwargs == before
    ref = serial_reference(runfuncs.rio_mucho_simple, [a, b], tmp_path / "ref.tif",
                           global_args={"divide": 2}, count=2)
    assert_same_raster(tmp_path / "out.tif", ref)


def test_bad_mode_at_construction(raster, tmp_path):
    path, _ = raster()
    with pytest.raises(ValueError, match="mode must be one of"):
        riomucho.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.passthrough,
                          mode="quick_read")


def _legacy(window):
    return ((int(window.row_off), int(window.row_off + window.height)),
            (int(window.col_off), int(window.col_off + window.width)))


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("layout", ["subset", "other_tiling", "gaps", "legacy_grid"])
def test_windows_need_not_form_a_grid(raster, tmp_path, layout, processes):
    path, _ = raster(block=32)
    blocks = block_windows(path)
    func = runfuncs.passthrough
    if layout == "subset":
        windows = blocks[::3]
    elif layout == "other_tiling":
        windows = [(Window(c, r, min(20, 131 - c), min(24, 97 - r)), (r // 24, c // 20))
                   for r in range(0, 97, 24) for c in range(0, 131, 20)]
    elif layout == "gaps":
        windows = [(Window(c + 2, r + 3, 20, 18), (r, c)) for r in range(0, 70, 30)
                   for c in range(0, 100, 30)]
    else:
        windows = [(_legacy(w), ij) for w, ij in blocks]
        func = runfuncs.expects_legacy_window
    out = tmp_path / "out.tif"
    with riomucho.RioMucho([path], str(out), func, windows=windows) as rm:
        rm.run(processes)

    reference_windows = [(w if isinstance(w, Window) else Window.from_slices(*w), ij)
                         for w, ij in windows]
    ref = serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif",
                           windows=reference_windows)
    assert_same_raster(out, ref)


def test_output_as_open_dataset(raster, tmp_path):
    path, data = raster()
    dst = rasterio.open(tmp_path / "out.tif", "w", **_profile(path))
    with riomucho.RioMucho([path], dst, runfuncs.passthrough) as rm:
        rm.run(2)
    assert dst.closed  # as rio-mucho: the dataset is written into and closed
    with rasterio.open(tmp_path / "out.tif") as src:
        assert np.array_equal(src.read(), data)


def test_processes_1_runs_in_process(raster, tmp_path):
    path, _ = raster()
    runfuncs.SEEN_PIDS.clear()
    with riomucho.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.records_pid) as rm:
        rm.run(1)
    assert set(runfuncs.SEEN_PIDS) == {os.getpid()}


def test_array_read_needs_same_size(raster, tmp_path):
    a, _ = raster("a.tif")
    b, _ = raster("b.tif", height=50)
    with riomucho.RioMucho([a, b], str(tmp_path / "out.tif"), runfuncs.rio_mucho_array,
                           mode="array_read", options=_options(a, count=1)) as rm:
        with pytest.raises(ValueError, match="height x width"):
            rm.run(1)
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("processes", [1, 2])
def test_errors_reach_caller_as_mucho_child_error(raster, tmp_path, processes):
    path, _ = raster()
    target = tmp_path / "out.tif"
    with riomucho.RioMucho([path], str(target), runfuncs.fails_on_one,
                           global_args={"bad_ij": (2, 1)}) as rm:
        with pytest.raises(riomucho.MuchoChildError) as info:
            rm.run(processes)
    err = info.value
    assert isinstance(err.exception, ZeroDivisionError)
    assert "Child process's traceback" in str(err)
    assert "boom at (2, 1)" in str(err) and "fails_on_one" in str(err)
    assert not target.exists()


@pytest.mark.parametrize("processes", [1, 2])
def test_wrong_shape_is_an_error_naming_the_window(raster, tmp_path, processes):
    path, _ = raster()
    with riomucho.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.wrong_shape) as rm:
        with pytest.raises(riomucho.MuchoChildError) as info:
            rm.run(processes)
    assert isinstance(info.value.exception, errors.OutputShapeError)
    assert "ij=(0, 0)" in str(info.value)


def test_missing_input_is_a_prompt_error(raster, tmp_path):
    path, _ = raster()
    with riomucho.RioMucho([path, str(tmp_path / "gone.tif")], str(tmp_path / "out.tif"),
                           runfuncs.passthrough) as rm:
        with pytest.raises(OSError, match="gone.tif"):
            rm.run(2)


def test_tb_capture():
    @riomucho.tb_capture
    def broken():
        raise KeyError("missing")

    with pytest.raises(riomucho.MuchoChildError) as info:
        broken()
    assert isinstance(info.value.exception, KeyError)
    assert "KeyError" in str(info.value)


def test_compat_modules():
    assert MockTub is not None
    tub = MockTub(lambda x: None, (1,))
    assert list(tub.imap_unordered(lambda v: v * 2, [1, 2])) == [2, 4]
    stacked = utils.array_stack([np.zeros((2, 3, 4)), np.ones((1, 3, 4))])
    assert stacked.shape == (3, 3, 4) and stacked[2].all()
    with pytest.raises(ValueError):
        utils.array_stack([np.zeros((1, 3, 4)), np.ones((1, 3, 5))])


def test_processes_scheduler_when_configured(raster, tmp_path):
    path, _ = raster()
    runfuncs.SEEN_PIDS.clear()
    with dask.config.set(scheduler="processes"):
        with riomucho.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.records_pid) as rm:
            rm.run(2)
    assert runfuncs.SEEN_PIDS == []  # ran in worker processes
    assert_same_raster(tmp_path / "out.tif",
                       serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif"))


def test_processes_n_uses_n_threads(raster, tmp_path, monkeypatch):
    path, _ = raster()
    seen = []
    real = riomucho.shim.to_raster

    def spy(*args, **kwargs):
        seen.append((kwargs.get("scheduler"), dask.config.get("num_workers")))
        return real(*args, **kwargs)

    monkeypatch.setattr(riomucho.shim, "to_raster", spy)
    with riomucho.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.passthrough) as rm:
        rm.run(3)
    assert seen == [("threads", 3)]


@pytest.mark.parametrize("subset", [False, True])
def test_run_progress(raster, tmp_path, capsys, subset):
    path, _ = raster()
    windows = block_windows(path)[::2] if subset else None
    with riomucho.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.passthrough,
                           windows=windows) as rm:
        rm.run(2, progress=True)
    total = len(windows) if subset else len(block_windows(path))
    # (a grid of windows: the output's tiles, encoded in the tasks; a subset: blocks)
    unit = "blocks" if subset else "tiles"
    assert f"{total}/{total} {unit}" in capsys.readouterr().err


def test_window_lists_that_are_no_grid_enter_gdal_options_once_a_task(tmp_path, monkeypatch):
    path, _ = make_raster(tmp_path / "in.tif", count=1, height=97, width=131)
    windows = [(Window(c + 2, r + 3, 20, 18), (r, c)) for r in range(0, 70, 10)
               for c in range(0, 100, 10)]  # overlapping: no grid
    entered = []
    real = rasterio.env.Env.__enter__
    monkeypatch.setattr(rasterio.env.Env, "__enter__",
                        lambda self: entered.append(1) or real(self))
    with riomucho.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.passthrough,
                           windows=windows) as rm:
        rm.run(1)
    # the task's and the write's, not one a window (70 windows)
    assert 0 < len(entered) < len(windows) // 2, len(entered)
