"""to_raster and the RasterStore target."""

from __future__ import annotations

import re
import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
from dask.delayed import Delayed
from rasterio.transform import from_origin
from rasterio.windows import Window

import riomucho_dask as rmd
from riomucho_dask.errors import ProfileError, RunFunctionError, StoreClosedError

from . import runfuncs
from .conftest import assert_same_raster, serial_reference


def test_compute_false_returns_delayed(raster, tmp_path, local_scheduler):
    scheduler = local_scheduler
    path, _ = raster()
    out = rmd.map_windows(runfuncs.passthrough, [path])
    target = tmp_path / "out.tif"
    delayed = rmd.to_raster(out, target, like=path, compute=False)
    assert isinstance(delayed, Delayed)
    assert not target.exists()
    assert delayed.compute(scheduler=scheduler) == str(target)
    ref = serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif")
    assert_same_raster(target, ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif", "ref.tif"]


def test_profile_without_like(raster, tmp_path):
    path, data = raster(dtype="int16")
    with rasterio.open(path) as src:
        profile = dict(src.profile)
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", profile)
    with rasterio.open(written) as dst:
        assert dst.crs == profile["crs"] and dst.transform == profile["transform"]
        assert np.array_equal(dst.read(), data)


def test_no_georeferencing_is_an_error(raster, tmp_path):
    with pytest.raises(ProfileError, match="reads no raster.*like="):
        rmd.to_raster(da.zeros((1, 10, 10), chunks=5), tmp_path / "out.tif")
    a, _ = raster("a.tif")
    b, _ = raster("b.tif", transform=from_origin(0, 0, 30, 30))
    with pytest.raises(ProfileError, match="2 different grids.*like="):
        rmd.to_raster(rmd.open_raster(a) + rmd.open_raster(b), tmp_path / "out.tif")
    with pytest.raises(ProfileError, match="grid it was read on.*like="):
        rmd.to_raster(rmd.open_raster(a)[:, :10], tmp_path / "out.tif")
    assert list(tmp_path.glob("out*")) == []


def test_like_with_other_size_is_an_error(raster, tmp_path):
    a, _ = raster("a.tif")
    b, _ = raster("b.tif", height=50)
    with pytest.raises(ProfileError, match="georeferencing would not match"):
        rmd.to_raster(rmd.open_raster(a), tmp_path / "out.tif", like=b)


def test_explicit_dtype_casts(raster, tmp_path):
    path, data = raster(dtype="uint16")
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path,
                            dtype="float32")
    with rasterio.open(written) as dst:
        assert dst.dtypes[0] == "float32"
        assert np.array_equal(dst.read(), data.astype("float32"))


def test_nodata_that_does_not_fit_new_dtype_is_dropped(raster, tmp_path):
    path, _ = raster(dtype="int16", nodata=-9999)
    out = rmd.open_raster(path).astype("uint8")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path)
    with rasterio.open(written) as dst:
        assert dst.nodata is None
    with pytest.raises(ProfileError, match="nodata"):
        rmd.to_raster(out, tmp_path / "out2.tif", like=path, nodata=-9999)


def test_unaligned_chunks_are_rechunked_to_tiles(raster, tmp_path):
    path, data = raster(block=32)
    arr = rmd.open_raster(path).rechunk((3, 20, 20))
    written = rmd.to_raster(arr, tmp_path / "out.tif", like=path, compress="deflate")
    one_shot = tmp_path / "one.tif"
    with rasterio.open(path) as src:
        profile = dict(src.profile, compress="deflate")
    with rasterio.open(one_shot, "w", **profile) as dst:
        dst.write(data)
    with rasterio.open(written) as dst:
        assert np.array_equal(dst.read(), data)
    # no compressed tile written twice: same size as a one-shot write
    assert abs((tmp_path / "out.tif").stat().st_size - one_shot.stat().st_size) < 1024


def test_numpy_array_and_2d(raster, tmp_path):
    path, data = raster(count=1)
    written = rmd.to_raster(data[0], tmp_path / "out.tif", like=path)
    with rasterio.open(written) as dst:
        assert np.array_equal(dst.read(), data)


def test_store_refuses_writes_after_abort(raster, tmp_path):
    path, _ = raster()
    with rasterio.open(path) as src:
        profile = dict(src.profile)
    store = rmd.RasterStore(tmp_path / "out.tif", profile)
    store[:, 0:32, 0:32] = np.zeros((3, 32, 32), "uint16")
    store.abort()
    with pytest.raises(StoreClosedError):
        store[:, 0:32, 0:32] = np.zeros((3, 32, 32), "uint16")
    assert list(p.name for p in tmp_path.iterdir()) == ["in.tif"]


class CountingLock:
    def __init__(self):
        self._lock = threading.Lock()
        self.acquired = 0
        self.released = 0

    def acquire(self, *args, **kwargs):
        self.acquired += 1
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        self.released += 1
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()


def test_user_lock_is_used_and_released(raster, tmp_path):
    path, _ = raster()
    lock = CountingLock()
    arr = rmd.open_raster(path)
    rmd.to_raster(arr, tmp_path / "out.tif", like=path, lock=lock, scheduler="threads")
    assert lock.acquired == lock.released >= arr.npartitions


def test_progress_counts_tiles_or_blocks(raster, tmp_path, capsys, scheduler):
    """A tiled output counts its full-resolution tiles (a COG's overviews apart), one
    written by GDAL the blocks (chunks) it takes."""
    path, _ = raster(height=97, width=131, block=32)
    arr = rmd.open_raster(path)
    rmd.to_raster(arr, tmp_path / "out.tif", like=path, progress=True, scheduler=scheduler)
    err = capsys.readouterr().err
    assert "20/20 tiles" in err and "tiles/s" in err  # 4 x 5 tiles of 32 px
    rmd.to_raster(arr, tmp_path / "cog.tif", driver="COG", blocksize=32, progress=True,
                  scheduler=scheduler)
    assert "20/20 tiles" in capsys.readouterr().err
    rmd.to_raster(arr, tmp_path / "strips.tif", like=path, tiled=False, progress=True,
                  scheduler=scheduler)
    err = capsys.readouterr().err
    assert re.search(r" (\d+)/\1 blocks ", err) and "blocks/s" in err  # (strips grouped)


def test_executor_as_scheduler(raster, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path, _ = raster()
    out = rmd.map_windows(runfuncs.passthrough, [path])
    with ThreadPoolExecutor(2) as pool:
        written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=pool)
    assert_same_raster(written, serial_reference(runfuncs.passthrough, [path],
                                                 tmp_path / "ref.tif"))


def test_lock_false_is_refused(raster, tmp_path):
    path, _ = raster()
    with pytest.raises(ProfileError, match="lock=False"):
        rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path, lock=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_output_may_replace_its_own_input(raster, tmp_path, scheduler):
    path, data = raster(dtype="uint16", count=1)
    doubled = rmd.open_raster(path) * 2
    rmd.to_raster(doubled, path, like=path, scheduler=scheduler)
    with rasterio.open(path) as src:
        assert np.array_equal(src.read(), data * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_gdal_options_reach_every_worker(raster, tmp_path, scheduler):
    path, _ = raster()
    with rasterio.Env(RIOMUCHO_TEST_OPTION="yes"):
        out = rmd.map_windows(runfuncs.reports_gdal_option, [path], count=1, dtype="uint8")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    with rasterio.open(written) as src:
        assert src.read().min() == 1  # every window ran inside the captured options


@pytest.mark.parametrize("encoded", [True, False], ids=["encoded-tiles", "gdal-dataset"])
def test_writer_failure_stops_the_run_and_leaves_nothing(raster, tmp_path, monkeypatch,
                                                         scheduler, encoded):
    from riomucho_dask.write.writers.gdal import GDALWriter
    from riomucho_dask.write.writers.tiled import TiledWriter

    path, _ = raster(block=16)
    target = tmp_path / "out.tif"
    target.write_bytes(b"previous")
    writer = TiledWriter if encoded else GDALWriter
    original = writer.write
    written = []

    def failing(self, block, window):
        if len(written) == 5:
            raise OSError("disk on fire")
        written.append(window)
        original(self, block, window)

    monkeypatch.setattr(writer, "write", failing)
    with dask.config.set({"riomucho_dask.encode-tiles": encoded}):
        with pytest.raises(OSError, match="disk on fire"):
            rmd.to_raster(rmd.open_raster(path), target, like=path, scheduler=scheduler)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


def test_store_queue_applies_backpressure(raster, tmp_path, monkeypatch):
    """With room for two blocks (one being written, one waiting), a third put waits."""
    from riomucho_dask.write.writers.gdal import GDALWriter

    path, _ = raster()
    with rasterio.open(path) as src:
        profile = dict(src.profile)
    release = threading.Event()
    original = GDALWriter.write

    def slow(self, block, window):
        release.wait(10)
        original(self, block, window)

    monkeypatch.setattr(GDALWriter, "write", slow)
    block = np.zeros((3, 32, 32), "uint16")
    with dask.config.set({"riomucho_dask.queue-bytes": 2 * block.nbytes}):
        store = rmd.RasterStore(tmp_path / "out.tif", profile)
    store[:, 0:32, 0:32] = block  # taken by the writer, which blocks on `release`
    store[:, 0:32, 32:64] = block  # fills the queue
    third = threading.Thread(target=store.put, args=(block, Window(64, 0, 32, 32)))
    third.start()
    third.join(0.3)
    assert third.is_alive()  # waiting for room
    release.set()
    third.join(10)
    assert not third.is_alive()
    store.commit()
    assert store.written == 3


def test_failed_delayed_write_leaves_nothing_once_dropped(raster, tmp_path, local_scheduler):
    import gc

    path, _ = raster(block=16)
    out = rmd.map_windows(runfuncs.fails_on_one, [path], global_args={"bad_ij": (5, 5)})
    write = rmd.to_raster(out, tmp_path / "out.tif", like=path, compute=False)
    try:
        dask.compute(write, scheduler=local_scheduler)
    except RunFunctionError:
        pass
    else:
        raise AssertionError("the run function's error was not raised")
    del write, out
    # tasks already running on other threads may still hold the store for a moment
    deadline = time.monotonic() + 10
    while len(list(tmp_path.iterdir())) > 1 and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_store_writes_every_block_put_from_many_threads(tmp_path):
    """The writer thread stops when the queue is empty and restarts on the next put:
    no block may fall between the two, whatever the timing."""
    size, block = 160, 8
    profile = dict(driver="GTiff", count=1, height=size, width=size, dtype="uint16",
                   tiled=True, blockxsize=16, blockysize=16, crs="EPSG:32631",
                   transform=rasterio.transform.from_origin(0, size, 1, 1))
    expected = np.arange(size * size, dtype="uint16").reshape(1, size, size)
    windows = [Window(c, r, block, block) for r in range(0, size, block)
               for c in range(0, size, block)]
    with dask.config.set({"riomucho_dask.queue-bytes": 2 * block * block * 2}):
        store = rmd.RasterStore(tmp_path / "out.tif", profile)

    def put_all(part):
        for w in part:
            rows, cols = slice(w.row_off, w.row_off + block), slice(w.col_off, w.col_off + block)
            store.put(expected[:, rows, cols].copy(), w)

    threads = [threading.Thread(target=put_all, args=(windows[k::8],)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.commit()
    assert store.written == len(windows) == 400
    with rasterio.open(tmp_path / "out.tif") as src:
        assert np.array_equal(src.read(), expected)


def test_full_disk_is_a_clear_error(raster, tmp_path, small_disk, scheduler):
    from riomucho_dask.errors import NoSpaceError

    path, _ = raster(count=1, height=300, width=300, dtype="float32", block=64)
    target = small_disk / "out.tif"
    target.write_bytes(b"previous")
    with pytest.raises(NoSpaceError) as info:
        rmd.to_raster(rmd.open_raster(path), target, like=path, scheduler=scheduler)
    message = str(info.value)
    assert "no space left" in message and str(target) in message
    assert "0.3 MB" in message  # what the output needs, uncompressed (300 x 300 float32)
    assert isinstance(info.value, OSError)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in small_disk.iterdir()) == ["out.tif"]
