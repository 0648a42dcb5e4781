"""A newcomer's rough edges (issue 22): errors that say what happened, things that just work."""

from __future__ import annotations

import os
import sys

import pytest
import rasterio
from click.testing import CliRunner

import riomucho_dask as rmd
from riomucho_dask import cli
from riomucho_dask.errors import InputReadError

from . import runfuncs
from .conftest import assert_same_raster, serial_reference
from .runfuncs import passthrough


@pytest.fixture
def truncated(raster, tmp_path):
    """A DEFLATE GeoTIFF cut short: its last tiles cannot be read."""
    path, _ = raster("trunc.tif", count=1, height=128, width=128, block=32, compress="deflate")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 2000)
    return path


def test_a_corrupt_input_names_the_input_the_window_and_gdal(truncated, tmp_path,
                                                              local_scheduler):
    out = rmd.map_windows(passthrough, [truncated])
    with pytest.raises(InputReadError) as caught:
        rmd.to_raster(out, tmp_path / "out.tif", like=truncated, scheduler=local_scheduler)
    message = str(caught.value)
    assert "trunc.tif" in message and "at window (row " in message
    assert "Read failed. See previous exception" not in message
    assert "TIFF" in message  # GDAL's own words (TIFFFillTile / TIFFReadEncodedTile)
    assert isinstance(caught.value, OSError)
    assert not (tmp_path / "out.tif").exists()


def test_a_corrupt_input_on_the_command_line(truncated, tmp_path):
    result = CliRunner().invoke(cli.mucho, ["run", "tests.runfuncs:passthrough", truncated,
                                            str(tmp_path / "out.tif")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "trunc.tif" in result.stderr and "at window" in result.stderr
    assert "TIFF" in result.stderr


def test_relative_inputs_are_absolute_in_the_graph(raster, tmp_path, monkeypatch):
    """Workers running in another directory (a remote cluster's) still find the input."""
    path, _ = raster("rel.tif")
    monkeypatch.chdir(tmp_path)
    out = rmd.map_windows(passthrough, ["rel.tif"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # (as a worker started in another directory)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler="threads")
    reference = serial_reference(passthrough, [path], tmp_path / "ref.tif")
    assert_same_raster(written, reference)


def test_a_kept_process_pool_sees_modules_made_importable_later(raster, tmp_path,
                                                                monkeypatch):
    """The processes scheduler's kept pool is started again once sys.path grew (the CLI
    loading a module file, a notebook's sys.path.append)."""
    path, _ = raster()
    out = rmd.map_windows(passthrough, [path])
    rmd.to_raster(out, tmp_path / "first.tif", like=path, scheduler="processes")
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "late_module.py").write_text(
        "def halve(data, window, ij, g):\n    return data[0] // 2\n")
    monkeypatch.syspath_prepend(str(folder))
    import late_module

    try:
        half = rmd.map_windows(late_module.halve, [path])
        written = rmd.to_raster(half, tmp_path / "half.tif", like=path, scheduler="processes")
        with rasterio.open(written) as got, rasterio.open(path) as src:
            assert (got.read() == src.read() // 2).all()
    finally:
        sys.modules.pop("late_module", None)


def _cli(*args):
    return CliRunner().invoke(cli.mucho, [str(a) for a in args])


@pytest.mark.parametrize("given, written", [("255", 255), ("-9999", -9999), (" 7 ", 7)])
def test_nodata_as_a_numeric_string(raster, tmp_path, given, written):
    path, _ = raster(dtype="int16")
    out = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path, nodata=given)
    with rasterio.open(out) as dst:
        assert dst.nodata == written


@pytest.mark.parametrize("given", ["abc", "none", [1]])
def test_nodata_not_a_number_is_a_profile_error(raster, tmp_path, given):
    from riomucho_dask.errors import ProfileError

    path, _ = raster()
    with pytest.raises(ProfileError, match="nodata .* is not a number"):
        rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path, nodata=given)
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("dtype, nodata", [("int64", -2**63), ("int64", 10**17),
                                           ("uint64", 2**64 - 1)])
def test_a_64_bit_nodata_rasterio_would_change_is_refused(tmp_path, dtype, nodata):
    """rasterio writes a nodata beyond 2**53 as another value (-2**63 read back as
    -9): refused before anything is computed, on both routes; 2**53 itself is kept."""
    import dask.array as da

    from riomucho_dask.errors import ProfileError

    array = da.zeros((1, 64, 64), dtype=dtype, chunks=(1, 32, 32))
    profile = {"driver": "GTiff", "crs": "EPSG:32631",
               "transform": rasterio.transform.from_origin(500000, 0, 10, 10)}
    for layout in ({}, {"tiled": True, "blockxsize": 32, "blockysize": 32}):
        with pytest.raises(ProfileError, match=r"beyond \+/-2\*\*53"):
            rmd.to_raster(array, tmp_path / "out.tif", profile, nodata=nodata, **layout)
        assert not list(tmp_path.iterdir())
    written = rmd.to_raster(array, tmp_path / "ok.tif", profile, nodata=2**53)
    with rasterio.open(written) as src:
        assert src.nodata == 2**53


def test_cli_nodata(raster, tmp_path):
    path, _ = raster(dtype="int16")
    for args, nodata in zip((("--nodata", "-5"), ("--co", "nodata=-9999")), (-5, -9999)):
        out = tmp_path / f"out{nodata}.tif"
        result = _cli("run", "tests.runfuncs:passthrough", path, out, args[0], args[1])
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as dst:
            assert dst.nodata == nodata
    result = _cli("run", "tests.runfuncs:passthrough", path, tmp_path / "x.tif",
                  "--nodata", "abc")
    assert result.exit_code == 1 and "nodata 'abc' is not a number" in result.stderr
    assert "Traceback" not in result.output


def test_unknown_driver_and_compression_are_named(raster, tmp_path):
    from riomucho_dask.errors import ProfileError

    path, _ = raster()
    arr = rmd.open_raster(path)
    with pytest.raises(ProfileError, match="unknown driver 'GTiffx'"):
        rmd.to_raster(arr, tmp_path / "a.tif", like=path, driver="GTiffx")
    with pytest.raises(ProfileError, match="unknown compression 'defalte' for GTiff.*deflate"):
        rmd.to_raster(arr, tmp_path / "a.tif", like=path, compress="defalte")
    with pytest.raises(ProfileError, match="unknown compression 'packbits' for COG"):
        rmd.to_raster(arr, tmp_path / "a.tif", like=path, driver="COG", compress="packbits")
    result = _cli("run", "tests.runfuncs:passthrough", path, tmp_path / "b.tif", "-f", "GTiffx")
    assert result.exit_code == 1 and "unknown driver 'GTiffx'" in result.stderr
    result = _cli("run", "tests.runfuncs:passthrough", path, tmp_path / "b.tif",
                  "--co", "compress=defalte")
    assert result.exit_code == 1 and "unknown compression 'defalte'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
    written = rmd.to_raster(arr, tmp_path / "c.tif", like=path, compress="DEFLATE")
    with rasterio.open(written) as dst:
        assert dst.compression.name == "deflate"


@pytest.fixture
def read_only(tmp_path):
    """A read-only directory: a read-only mount as root, else no write permission."""
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = False
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs",
                                  str(folder)], capture_output=True).returncode == 0
    except OSError:
        pass
    if not mounted:
        folder.chmod(0o555)
    try:
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_read_only_directory_fails_before_computing(raster, tmp_path, read_only):
    from riomucho_dask.errors import OutputPathError

    path, _ = raster()
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": calls},
                          dtype="float32", count=1)
    target = read_only / "x.tif"
    with pytest.raises(OutputPathError) as caught:
        rmd.to_raster(out, target, like=path)
    assert str(target) in str(caught.value) and "not writable" in str(caught.value)
    assert ".part" not in str(caught.value)
    assert runfuncs.calls_per_window(calls) == {}  # nothing computed
    result = _cli("run", "tests.runfuncs:passthrough", path, target)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert str(target) in result.stderr and "not writable" in result.stderr


def test_resume_of_strips_says_to_tile(raster, tmp_path):
    from riomucho_dask.errors import ProfileError

    path, _ = raster()
    with pytest.raises(ProfileError, match="--co tiled=true"):
        rmd.to_raster(rmd.open_raster(path), tmp_path / "o.tif", like=path, tiled=False,
                      resume=True)
    result = _cli("run", "tests.runfuncs:passthrough", path, tmp_path / "o.tif", "--resume",
                  "--co", "tiled=false")
    assert result.exit_code == 1 and "--co tiled=true" in result.stderr


def test_an_interrupted_resume_that_wrote_nothing_leaves_nothing(raster, tmp_path):
    from riomucho_dask.errors import RunFunctionError

    path, _ = raster(height=32, width=32)  # one window: it fails, no chunk is journaled
    bad = rmd.map_windows(runfuncs.fails_on_one, [path], global_args={"bad_ij": (0, 0)})
    with pytest.raises(RunFunctionError):
        rmd.to_raster(bad, tmp_path / "o.tif", like=path, resume=True, scheduler="sync",
                      tiled=True, blockxsize=32, blockysize=32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


NO_POSIX = """
import builtins, os, sys
sys.modules["fcntl"] = None          # (import fcntl fails, as on Windows)
del os.pread
real_open = builtins.open
def no_proc(file, *args, **kwargs):  # (for riomucho_dask; psutil knows its platform)
    caller = sys._getframe(1).f_globals.get("__name__", "")
    if str(file).startswith("/proc") and caller.startswith("riomucho_dask"):
        raise FileNotFoundError(file)
    return real_open(file, *args, **kwargs)
builtins.open = no_proc
import numpy as np, rasterio
import riomucho_dask as rmd
from tests.conftest import make_raster
from tests.runfuncs import passthrough
src, data = make_raster(sys.argv[1] + "/in.tif", count=1, height=100, width=90)
out = rmd.map_windows(passthrough, [src])
for name, options in (("g.tif", dict(tiled=True, blockxsize=32, blockysize=32,
                                     compress="deflate")),
                      ("c.tif", dict(driver="COG", blocksize=32, compress="deflate"))):
    written = rmd.to_raster(out, sys.argv[1] + "/" + name, like=src, resume=True,
                            scheduler="threads", **options)
    with rasterio.open(written) as dst:
        assert (dst.read() == data).all(), name
print("ok", sorted(os.listdir(sys.argv[1])))
"""


def test_imports_and_writes_without_fcntl_pread_or_proc(tmp_path):
    """As on Windows (and macOS without /proc): the package imports, writes tiled
    GeoTIFFs and COGs, and resumable writes still lock."""
    import subprocess

    result = subprocess.run([sys.executable, "-c", NO_POSIX, str(tmp_path)],
                            capture_output=True, text=True, cwd=os.getcwd())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok ['c.tif', 'g.tif', 'in.tif']"


def test_a_write_computed_again_writes_again(raster, tmp_path, local_scheduler):
    import dask

    path, _ = raster()
    target = tmp_path / "out.tif"
    reference = serial_reference(passthrough, [path], tmp_path / "ref.tif")
    w1 = rmd.to_raster(rmd.map_windows(passthrough, [path]), target, like=path, compute=False)
    w2 = rmd.to_raster(rmd.open_raster(path), tmp_path / "b.tif", like=path, compute=False,
                       tiled=True, blockxsize=32, blockysize=32, compress="deflate")
    assert rmd.compute(w1, w2, scheduler=local_scheduler) == (str(target),
                                                               str(tmp_path / "b.tif"))
    for again in (lambda: dask.compute(w1, w2, scheduler=local_scheduler),
                  lambda: (w1.compute(scheduler=local_scheduler),
                           w2.compute(scheduler=local_scheduler)),
                  lambda: rmd.compute(w1, w2, scheduler=local_scheduler)):
        os.remove(target)
        os.remove(tmp_path / "b.tif")
        again()
        assert_same_raster(target, reference)
        assert_same_raster(tmp_path / "b.tif", path)


def test_a_failed_write_computed_again_once_fixed(raster, tmp_path):
    path, _ = raster()
    calls, stop = tmp_path / "calls", tmp_path / "stop"
    calls.mkdir()
    stop.touch()
    g = {"calls": str(calls), "stop": str(stop), "fail_ij": (1, 1)}
    out = rmd.map_windows(runfuncs.stops_when_told, [path], global_args=g, count=1,
                          dtype="float32")
    write = rmd.to_raster(out, tmp_path / "out.tif", like=path, compute=False)
    with pytest.raises(rmd.errors.RunFunctionError):
        write.compute(scheduler="threads")
    assert not (tmp_path / "out.tif").exists()
    stop.unlink()
    assert write.compute(scheduler="threads") == str(tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as got, rasterio.open(path) as src:
        assert (got.read(1) == src.read(1).astype("float32")).all()


def test_the_task_stream_shows_the_users_names(raster, tmp_path, cluster_client):
    """A default tiled write fuses read, run function and encoding into one task: it
    keeps the user's name (map_windows, their own operations), not "encode"."""
    from dask.utils import key_split
    from distributed import get_task_stream

    path, _ = raster()
    out = rmd.map_windows(passthrough, [path])
    scaled = out.astype("float32") / 2
    with get_task_stream(cluster_client) as stream:
        rmd.to_raster(out, tmp_path / "a.tif", like=path, scheduler=cluster_client,
                      tiled=True, blockxsize=32, blockysize=32, compress="deflate")
        rmd.to_raster(scaled, tmp_path / "b.tif", like=path, scheduler=cluster_client,
                      driver="COG", blocksize=32, compress="deflate")
    names = {key_split(task["key"]) for task in stream.data}
    assert "map_windows" in names and "truediv" in names
    assert not any(name.startswith("encode") for name in names), names


def test_a_gdal_failure_while_writing_names_the_output_and_the_window(raster, tmp_path,
                                                                      monkeypatch):
    from rasterio._err import CPLE_AppDefinedError
    from rasterio.errors import RasterioIOError

    from riomucho_dask.errors import OutputPathError
    from riomucho_dask.write.writers.gdal import GDALWriter

    def failing(self, block, window):
        try:
            raise CPLE_AppDefinedError(1, 1, "out.tif: TIFFWriteEncodedStrip failed")
        except CPLE_AppDefinedError as cause:
            raise RasterioIOError("Write failed. See previous exception for details.") \
                from cause

    monkeypatch.setattr(GDALWriter, "write", failing)
    path, _ = raster()
    with pytest.raises(OutputPathError) as caught:
        rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path, tiled=False,
                      scheduler="threads")
    message = str(caught.value)
    assert str(tmp_path / "out.tif") in message and "window Window(" in message
    assert "TIFFWriteEncodedStrip failed" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_tiles_gdal_fails_to_compress_are_an_error_not_a_blank_file(tmp_path):
    """GDAL only prints "Error when compressing strip/tile" when it flushes a file whose
    codec refuses the tiles (WEBP with one band): the write fails, nothing is left."""
    import dask.array as da
    import numpy as np
    from rasterio.transform import from_origin

    from riomucho_dask.errors import OutputPathError

    pixels = np.random.default_rng(0).integers(1, 200, (1, 256, 256)).astype("uint8")
    with pytest.raises(OutputPathError, match="WEBP") as caught:
        rmd.to_raster(da.from_array(pixels, chunks=(1, 128, 128)), tmp_path / "o.tif",
                      dict(driver="GTiff", crs="EPSG:32631",
                           transform=from_origin(0, 2560, 10, 10)),
                      scheduler="sync", driver="COG", blocksize=128, compress="webp")
    assert str(tmp_path / "o.tif") in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("tiled", [False, True])
def test_dask_compute_of_a_write_and_a_reduction_runs_each_window_once(raster, tmp_path,
                                                                       tiled):
    import dask
    import numpy as np

    path, data = raster(count=1, height=128, width=128, block=32)
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    write = rmd.to_raster(out, tmp_path / "o.tif", like=path, compute=False, tiled=tiled,
                          blockxsize=32, blockysize=32)
    _, mean = dask.compute(write, out.mean(), scheduler="threads")
    per_window = runfuncs.calls_per_window(calls)
    assert len(per_window) == 16 and set(per_window.values()) == {1}
    assert np.isclose(mean, data[0].astype("float32").mean())
