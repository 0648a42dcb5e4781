"""Resumable writes (write/journal.py): to_raster(..., resume=True)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

import riomucho_dask as rmd
from riomucho_dask.errors import ProfileError, RioMuchoDaskWarning, RunFunctionError
from riomucho_dask.shim import MuchoChildError
from riomucho_dask.write.journal import resume_paths

from . import runfuncs
from .conftest import assert_same_raster, make_raster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: 320 x 352 pixels in 32-px blocks: 10 x 11 = 110 windows.
SHAPE = dict(count=1, height=320, width=352, block=32)


@pytest.fixture
def job(tmp_path):
    """An input of 110 blocks, a calls directory, the stop flag, and the job's
    arguments (the same in every run: the same job)."""
    path, data = make_raster(tmp_path / "in.tif", **SHAPE)
    calls = tmp_path / "calls"
    calls.mkdir()
    g = {"calls": str(calls), "stop": str(tmp_path / "stop"), "kill_at": 60, "fail_ij": (6, 3)}
    return path, data, calls, g


#: GeoTIFFs with overviews: one band, so GDAL takes nearest levels from the full
#: resolution (the deeper ones from the pixels each chunk gives) and average
#: levels from the level above.
OVERVIEWS = {"GTiff-nearest": {"overviews": [2, 4, 8], "overview_resampling": "nearest"},
             "GTiff-average": {"overviews": [2, 4, 8], "overview_resampling": "average"}}


def _options(driver):
    options = {"driver": driver.split("-")[0], "compress": "deflate", "predictor": 3,
               **OVERVIEWS.get(driver, {})}
    if driver == "COG":  # (a COG's tiles are 512 px unless asked: like= brings no layout)
        options["blocksize"] = 32
    return options


def _reference(tmp_path, path, driver):
    """The same job written without interruption (and without resume)."""
    out = rmd.map_windows(runfuncs.passthrough, [path])
    return rmd.to_raster(out.astype("float32"), tmp_path / f"ref-{driver}.tif", like=path,
                         dtype="float32", **_options(driver))


def _assert_same_levels(got, want, driver):
    assert_same_raster(got, want)
    if driver == "COG" or driver in OVERVIEWS:
        if driver == "COG":
            valid, errors, notes = cog_validate(got)
            assert valid and not notes, (errors, notes)
        with rasterio.open(want) as src:
            levels = len(src.overviews(1))
        assert levels == (4 if driver == "COG" else 3)
        for level in range(levels):
            with rasterio.open(got, OVERVIEW_LEVEL=level) as a, \
                    rasterio.open(want, OVERVIEW_LEVEL=level) as b:
                assert np.array_equal(a.read(), b.read()), level


def _calls(directory) -> int:
    return len(os.listdir(directory))


def _settled(calls) -> None:
    """Wait until no more calls are being counted: after a failure on threads, the
    pool's other threads may still be finishing a window (and leave its file)."""
    count = -1
    while count != len(os.listdir(calls)):
        count = len(os.listdir(calls))
        time.sleep(0.3)


def _journaled(target, level=None) -> int:
    """Chunks journaled (all levels), or windows journaled (level 0)."""
    import json

    if not os.path.exists(resume_paths(str(target))[1]):
        return 0  # (nothing was written before the failure)
    with open(resume_paths(str(target))[1]) as f:
        lines = [json.loads(line) for line in f.read().splitlines()[1:]]  # after the header
    if level is None:
        return len(lines)
    # at level 0, the windows journaled: one 32 px tile each (a chunk may hold several)
    return sum(line["rows"] * line["cols"] for line in lines if line["level"] == level)


def _fail_once(path, g, target, driver, scheduler="sync"):
    """A resumable first run that fails at g["fail_ij"]; returns the array (the job)."""
    open(g["stop"], "w").close()
    out = rmd.map_windows(runfuncs.stops_when_told, [path], global_args=g, count=1,
                          dtype="float32")
    with pytest.raises(RunFunctionError, match="told to fail"):
        rmd.to_raster(out, target, like=path, resume=True, scheduler=scheduler,
                      **_options(driver))
    assert not os.path.exists(target)
    return out


@pytest.mark.parametrize("driver", ["GTiff", "COG", "GTiff-average"])
@pytest.mark.parametrize("where", ["sync", "threads"])
def test_killed_process_resumes_and_recomputes_only_what_was_lost(job, tmp_path, driver,
                                                                   where):
    path, data, calls, g = job
    target = tmp_path / "out.tif"
    open(g["stop"], "w").close()
    g = dict(g, fail_ij=None)
    code = textwrap.dedent(f"""
        import riomucho_dask as rmd
        from tests import runfuncs
        out = rmd.map_windows(runfuncs.stops_when_told, [{path!r}], global_args={g!r},
                              count=1, dtype="float32")
        rmd.to_raster(out, {str(target)!r}, like={path!r}, resume=True, scheduler={where!r},
                      **{_options(driver)!r})
    """)
    child = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    first = _calls(calls)
    assert 60 <= first <= 62
    assert not target.exists()  # nothing at the output path until it is complete
    spool, log = resume_paths(str(target))
    assert os.path.exists(spool) and os.path.exists(log)

    os.remove(g["stop"])  # the same job again, the cause gone
    shutil.rmtree(calls)
    calls.mkdir()
    out = rmd.map_windows(runfuncs.stops_when_told, [path], global_args=g, count=1,
                          dtype="float32")
    written = rmd.to_raster(out, target, like=path, resume=True, scheduler=where,
                            **_options(driver))
    again = runfuncs.calls_per_window(calls)
    assert set(again.values()) == {1}  # each window at most once
    # lost: what the 2 tasks running when it was killed had done (tasks of several
    # windows), and a few windows' tiles still in the writer's queue
    per_task = max(out.chunks[1]) // 32 * (max(out.chunks[2]) // 32)
    assert len(again) <= 110 - 60 + 2 * per_task + 10, \
        f"{len(again)} of 110 windows recomputed after {first} calls"
    assert len(again) >= 110 - first  # (the windows the killed run never reached)
    _assert_same_levels(written, _reference(tmp_path, path, driver), driver)
    assert not os.path.exists(spool) and not os.path.exists(log)  # removed on success
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "in.tif", "out.tif",
                                                          f"ref-{driver}.tif"]


@pytest.mark.parametrize("driver, where", [("GTiff", "threads"), ("COG", "threads"),
                                           ("GTiff", "processes"), ("COG", "processes"),
                                           ("GTiff-nearest", "threads"),
                                           ("GTiff-average", "threads"),
                                           ("GTiff-nearest", "processes")])
def test_failing_window_then_resumed_once_fixed(job, tmp_path, driver, where):
    """Also on processes, whose workers write their tiles into part files."""
    path, data, calls, g = job
    target = tmp_path / "out.tif"
    g = dict(g, kill_at=None)
    if driver in OVERVIEWS:  # (the last window fails: most chunks are written before)
        g["fail_ij"] = (9, 10)
    out = _fail_once(path, g, target, driver, scheduler=where)
    _settled(calls)
    first = runfuncs.calls_per_window(calls)
    journaled = _journaled(target, level=0)
    assert journaled > 0 or where == "processes"  # (there, the failing task may come first)
    if driver in OVERVIEWS and where == "threads":
        assert journaled >= 50  # (so the overviews still to make read chunks back)

    os.remove(g["stop"])
    shutil.rmtree(calls)
    calls.mkdir()
    written = rmd.to_raster(out, target, like=path, resume=True, scheduler=where,
                            **_options(driver))
    again = runfuncs.calls_per_window(calls)
    assert set(again.values()) == {1}
    # every window not computed before, the failed one included, and only those lost
    assert set(again) >= {(i, j) for i in range(10) for j in range(11)} - set(first)
    assert tuple(g["fail_ij"]) in again
    # windows written are not computed again (for a COG, the overview chunks still to
    # make read them back from the spool), all others are
    assert len(again) == 110 - journaled
    _assert_same_levels(written, _reference(tmp_path, path, driver), driver)
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))


def test_another_job_on_the_same_path_starts_over(job, tmp_path):
    path, data, calls, g = job
    target = tmp_path / "out.tif"
    _fail_once(path, dict(g, kill_at=None), target, "COG")
    assert _journaled(target) > 0
    other = rmd.open_raster(path).astype("float32") * 2  # another array: another job
    with pytest.warns(RioMuchoDaskWarning, match="starts over: .*another job"):
        written = rmd.to_raster(other, target, like=path, dtype="float32", resume=True,
                                **_options("COG"))
    with rasterio.open(written) as src:
        assert np.array_equal(src.read(), data.astype("float32") * 2)  # no old tile mixed in
    assert cog_validate(written)[0]
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))


def test_without_resume_nothing_is_left(job, tmp_path):
    path, data, calls, g = job
    open(g["stop"], "w").close()
    out = rmd.map_windows(runfuncs.stops_when_told, [path], global_args=dict(g, kill_at=None),
                          count=1, dtype="float32")
    with pytest.raises(RunFunctionError):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler="threads",
                      **_options("COG"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "in.tif", "stop"]


def test_resume_needs_an_output_of_encoded_tiles(job, tmp_path):
    path, *_ = job
    with pytest.raises(ProfileError, match="resume=True needs"):
        rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path, tiled=False,
                      resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "in.tif"]


def test_shim_and_cli_resume(job, tmp_path):
    path, data, calls, g = job
    open(g["stop"], "w").close()
    g = dict(g, kill_at=None)
    with rasterio.open(path) as src:
        options = dict(src.profile, dtype="float32", compress="deflate")
        windows = [w for _, w in src.block_windows()]
    target = tmp_path / "shim.tif"
    with rmd.RioMucho([path], str(target), runfuncs.stops_when_told, windows=windows,
                      global_args=g, options=options) as rm:
        with pytest.raises(MuchoChildError):
            rm.run(2, resume=True)
    assert _journaled(target) > 0
    os.remove(g["stop"])
    with rmd.RioMucho([path], str(target), runfuncs.stops_when_told, windows=windows,
                      global_args=g, options=options) as rm:
        rm.run(2, resume=True)
    with rasterio.open(target) as src:
        assert np.array_equal(src.read(), data.astype("float32"))

    from click.testing import CliRunner

    from riomucho_dask.cli import mucho

    result = CliRunner().invoke(mucho, [
        "run", "tests.runfuncs:passthrough", path, str(tmp_path / "cli.tif"), "--resume",
        "--co", "compress=deflate"])
    assert result.exit_code == 0, result.output
    assert_same_raster(tmp_path / "cli.tif", path)
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))


def test_resume_on_object_storage(job, tmp_path, s3):
    """The spool and journal of an S3 output live in scratch space; nothing is at
    the key until the resumed run uploads the finished COG."""
    import dask

    path, data, calls, g = job
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    open(g["stop"], "w").close()
    g = dict(g, kill_at=None)
    url = f"s3://{s3.bucket}/out.tif"
    out = rmd.map_windows(runfuncs.stops_when_told, [path], global_args=g, count=1,
                          dtype="float32")
    with s3.env(), dask.config.set({"riomucho_dask.scratch": str(scratch)}):
        with pytest.raises(RunFunctionError):
            rmd.to_raster(out, url, like=path, resume=True, scheduler="threads",
                          **_options("COG"))
        assert s3.keys() == []
        spool, log = resume_paths(url)
        assert os.path.dirname(spool) == str(scratch) and os.path.exists(log)
        journaled = _journaled(url, level=0)
        os.remove(g["stop"])
        _settled(calls)
        shutil.rmtree(calls)
        calls.mkdir()
        rmd.to_raster(out, url, like=path, resume=True, scheduler="threads", **_options("COG"))
    assert s3.keys() == ["out.tif"]
    assert len(os.listdir(calls)) == 110 - journaled  # written windows not computed again
    got = s3.get("out.tif", tmp_path / "got.tif")
    _assert_same_levels(got, _reference(tmp_path, path, "COG"), "COG")
    assert os.listdir(scratch) == []


def test_masks_differing_per_band_resume_exactly(tmp_path):
    """Overviews made from chunks read back equal those made from computed ones:
    both are made from the pixels as written (each band's mask kept by nodata;
    without it, bands masked differently are refused: test_corners)."""
    path, _ = make_raster(tmp_path / "in.tif", **SHAPE)
    g = {"stop": str(tmp_path / "stop"), "fail_ij": (6, 3)}
    out = rmd.map_windows(runfuncs.masks_per_band, [path], global_args=g, count=2,
                          dtype="float32")
    options = {"driver": "COG", "compress": "deflate", "blocksize": 32, "nodata": -9999}
    reference = rmd.to_raster(out, tmp_path / "ref.tif", like=path, **options)
    open(g["stop"], "w").close()
    with pytest.raises(RunFunctionError):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, resume=True, **options)
    os.remove(g["stop"])
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, resume=True, **options)
    for level in range(4):
        with rasterio.open(written, OVERVIEW_LEVEL=level) as a, \
                rasterio.open(reference, OVERVIEW_LEVEL=level) as b:
            assert np.array_equal(a.read(), b.read()), level
            assert np.array_equal(a.dataset_mask(), b.dataset_mask()), level


def test_two_resumable_writes_of_one_path_are_refused(job, tmp_path):
    from riomucho_dask.errors import OutputPathError

    path, data, calls, g = job
    array = rmd.open_raster(path).astype("float32")
    first = rmd.to_raster(array, tmp_path / "out.tif", like=path, resume=True,
                          compute=False, **_options("COG"))
    with pytest.raises(OutputPathError, match="another resumable write"):
        rmd.to_raster(array * 2, tmp_path / "out.tif", like=path, resume=True,
                      compute=False, **_options("COG"))
    first.compute()
    with rasterio.open(tmp_path / "out.tif") as src:
        assert np.array_equal(src.read(), data.astype("float32"))
    # once finished, the path is free again
    rmd.to_raster(array * 2, tmp_path / "out.tif", like=path, resume=True, **_options("COG"))


def test_journal_line_cut_by_a_kill_is_dropped(job, tmp_path):
    path, data, calls, g = job
    target = tmp_path / "out.tif"
    g = dict(g, kill_at=None)
    out = _fail_once(path, g, target, "GTiff")
    journaled = _journaled(target, level=0)
    with open(resume_paths(str(target))[1], "ab") as log:
        log.write(b'{"level": 0, "row": 9, "co')  # the kill came mid-line
    os.remove(g["stop"])
    shutil.rmtree(calls)
    calls.mkdir()
    written = rmd.to_raster(out, target, like=path, resume=True, scheduler="sync",
                            **_options("GTiff"))
    assert _calls(calls) == 110 - journaled
    assert_same_raster(written, _reference(tmp_path, path, "GTiff"))


def test_manual_read_input_rewritten_is_another_job(tmp_path):
    path, data = make_raster(tmp_path / "in.tif", **SHAPE)
    target = tmp_path / "out.tif"
    stop = tmp_path / "stop"

    def write():
        out = rmd.map_windows(runfuncs.manual_stops_when_told, [path], mode="manual_read",
                              count=1, dtype="float32",
                              global_args={"stop": str(stop), "fail_ij": (6, 3)})
        return rmd.to_raster(out, target, like=path, resume=True, **_options("GTiff"))

    open(stop, "w").close()
    with pytest.raises(RunFunctionError):
        write()
    _, new = make_raster(tmp_path / "in.tif", seed=7, **SHAPE)  # the input rewritten
    os.remove(stop)
    with pytest.warns(RioMuchoDaskWarning, match="another job"):
        written = write()
    with rasterio.open(written) as src:
        assert np.array_equal(src.read(), new.sum(axis=0, keepdims=True).astype("float32"))
