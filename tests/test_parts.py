"""Tiles written from the workers into part files, assembled by the writer."""

from __future__ import annotations

import os

import pytest
import rasterio

import riomucho_dask as rmd
from riomucho_dask.errors import RunFunctionError
from riomucho_dask.write.store import RasterStore
from riomucho_dask.write.writers import tiled

from .conftest import assert_same_raster, serial_reference
from .runfuncs import fails_on_one, passthrough

OPTIONS = {"tiled": True, "blockxsize": 32, "blockysize": 32, "compress": "deflate"}


@pytest.fixture
def placed(monkeypatch):
    """What the writer (in this process) received: a part file reference or bytes."""
    seen = []
    write = tiled.TiledWriter.write

    def spy(self, tiles, window=None):
        seen.append("part" if tiles.part is not None else "bytes")
        return write(self, tiles, window)

    monkeypatch.setattr(tiled.TiledWriter, "write", spy)
    return seen


@pytest.mark.parametrize("driver", ["GTiff", "COG"])
def test_workers_write_part_files(raster, tmp_path, scheduler, driver, placed):
    path, _ = raster(height=200, width=150)
    out = rmd.map_windows(passthrough, [path])
    options = dict(OPTIONS, driver=driver)
    if driver == "COG":
        options = {"driver": "COG", "blocksize": 32, "compress": "deflate",
                   "overview_resampling": "nearest"}
    target = tmp_path / f"out-{driver}.tif"
    rmd.to_raster(out, target, like=path, scheduler=scheduler, **options)
    # tiles come back as bytes only from this process's own threads
    expected = "bytes" if scheduler in ("sync", "threads") else "part"
    assert placed and set(placed) == {expected}
    assert sorted(os.listdir(tmp_path)) == ["in.tif", target.name]  # no part file left
    if driver == "GTiff":
        reference = serial_reference(passthrough, [path], tmp_path / "ref.tif",
                                     profile=OPTIONS)
        assert_same_raster(target, reference)
    else:  # the same bytes as the threaded route's (bit for bit, overviews included)
        rmd.to_raster(out, tmp_path / "threads.tif", like=path, scheduler="threads",
                      **options)
        assert (tmp_path / "threads.tif").read_bytes() == target.read_bytes()


def test_failure_leaves_no_part_file(raster, tmp_path, scheduler):
    path, _ = raster()
    target = tmp_path / "out.tif"
    target.write_bytes(b"previous")
    out = rmd.map_windows(fails_on_one, [path], global_args={"bad_ij": (2, 3)})
    with pytest.raises(RunFunctionError):
        rmd.to_raster(out, target, like=path, scheduler=scheduler, **OPTIONS)
    assert sorted(os.listdir(tmp_path)) == ["in.tif", "out.tif"]
    assert target.read_bytes() == b"previous"


class _FarWorkers:
    """A cluster whose workers do not see this machine's directories."""

    def run(self, func, *args):
        return {"tcp://10.0.0.1:1": False, "tcp://10.0.0.2:1": True}


def test_workers_that_cannot_see_the_directory_send_tiles_back(raster, tmp_path):
    from riomucho_dask.write.graph import encode
    from riomucho_dask.write.sinks.parts import PartSink

    path, _ = raster()
    profile = {**rasterio.open(path).profile, **OPTIONS}
    sink = PartSink()
    store = RasterStore(tmp_path / "out.tif", profile, encoding=encode.for_profile(profile),
                        parts=sink)
    assert store.prepare("distributed", _FarWorkers()) is False
    assert sink.directory is None and os.listdir(tmp_path) == ["in.tif"]
    assert store.prepare("threads") is False  # (in this process: bytes are at hand)
    assert store.prepare("processes") is True and os.path.isdir(sink.directory)
    store.abort()
    assert os.listdir(tmp_path) == ["in.tif"]
