"""One graph on dask's own schedulers: writes compose with any dask work.

Each test runs on sync, threads, processes and a LocalCluster, compares the
output with numpy on the serial result, and counts the run function's calls
in files (so calls in worker processes count too).
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
from dask.delayed import Delayed

import riomucho_dask as rmd
from riomucho_dask.errors import InputMismatchError, RunFunctionError

from . import runfuncs
from .conftest import make_raster, unaccounted_bytes


@pytest.fixture
def calls(tmp_path):
    directory = tmp_path / "calls"
    directory.mkdir()
    return directory


def band1(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1).astype("float32")


def read(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def assert_once_per_block(calls, path) -> None:
    """Each window (block) of ``path`` run once."""
    counts = runfuncs.calls_per_window(calls)
    with rasterio.open(path) as src:
        blocks = {ij for ij, _ in src.block_windows(1)}
    assert set(counts) == blocks
    assert set(counts.values()) == {1}, f"run function called more than once: {counts}"


def test_global_reduction_runs_each_block_once(raster, tmp_path, calls, scheduler):
    path, _ = raster(block=16)  # 7 x 9 = 63 blocks
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    standardized = (out - out.mean()) / out.std()
    written = rmd.to_raster(standardized, tmp_path / "out.tif", like=path,
                            scheduler=scheduler)
    assert_once_per_block(calls, path)
    serial = band1(path)
    want = (serial - serial.mean()) / serial.std()
    got = read(written)
    assert got.shape == (1, *serial.shape) and got.dtype == np.float32
    # dask sums chunk by chunk, numpy pairwise: the same to float32 rounding
    np.testing.assert_allclose(got[0], want, rtol=2e-5, atol=2e-5)


def test_two_writes_computed_together_run_once(raster, tmp_path, calls, scheduler):
    path, _ = raster(block=32)
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    w1 = rmd.to_raster(out, tmp_path / "a.tif", like=path, compute=False)
    w2 = rmd.to_raster(out * 2, tmp_path / "b.tif", like=path, compute=False)
    assert isinstance(w1, Delayed)
    assert set(w1.__dask_graph__()) & set(w2.__dask_graph__())  # shared keys
    if scheduler in ("sync", "threads"):
        written = dask.compute(w1, w2, scheduler=scheduler)
    else:
        written = rmd.compute(w1, w2, scheduler=scheduler)
    assert written == (str(tmp_path / "a.tif"), str(tmp_path / "b.tif"))
    assert_once_per_block(calls, path)
    serial = band1(path)
    assert np.array_equal(read(written[0])[0], serial)
    assert np.array_equal(read(written[1])[0], serial * 2)


def test_band_stack_from_concatenate(raster, tmp_path, scheduler):
    path, data = raster(count=3, block=16)
    arr = rmd.open_raster(path).astype("float32")
    ratio = arr[:1] / (arr[1:2] + 1)
    stack = da.concatenate([arr[2:3], ratio, arr[:1] - arr[1:2]], axis=0)
    assert len(stack.chunks[0]) == 3  # chunked along the band axis
    written = rmd.to_raster(stack, tmp_path / "out.tif", like=path, compress="deflate",
                            scheduler=scheduler)
    serial = data.astype("float32")
    want = np.stack([serial[2], serial[0] / (serial[1] + 1), serial[0] - serial[1]])
    assert np.array_equal(read(written), want)


def test_band_stack_pixel_interleaved_tiles_written_once(raster, tmp_path):
    """Each tile holds all bands: writing bands apart would append tiles twice."""
    path, data = raster(count=2, height=64, width=64, block=16)
    arr = rmd.open_raster(path)
    stack = da.concatenate([arr[1:], arr[:1]], axis=0)
    written = rmd.to_raster(stack, tmp_path / "out.tif", like=path, compress="deflate",
                            interleave="pixel", scheduler="threads")
    reference = tmp_path / "ref.tif"
    with rasterio.open(path) as src:
        profile = dict(src.profile, compress="deflate", interleave="pixel")
    with rasterio.open(reference, "w", **profile) as dst:
        dst.write(data[::-1])
    assert np.array_equal(read(written), data[::-1])
    # every byte of the file is a tile, an IFD or the header: no tile appended twice
    assert unaccounted_bytes(tmp_path / "out.tif") <= 9  # BigTIFF header room, IFD alignment


def test_map_overlap_after_map_windows(raster, tmp_path, scheduler):
    path, _ = raster(block=16)
    out = rmd.map_windows(runfuncs.to_float, [path], count=3, dtype="float32")
    smoothed = out.map_overlap(
        lambda block: (block + np.roll(block, 1, axis=-1) + np.roll(block, -1, axis=-1)) / 3,
        depth={0: 0, 1: 0, 2: 1}, boundary="none", dtype="float32",
    )
    written = rmd.to_raster(smoothed, tmp_path / "out.tif", like=path, scheduler=scheduler)
    with rasterio.open(path) as src:
        half = src.read().astype("float32") * np.float32(0.5)
    want = (half + np.roll(half, 1, axis=-1) + np.roll(half, -1, axis=-1)) / 3
    got = read(written)
    # away from the raster's left and right edges (where np.roll wraps), equal
    assert np.array_equal(got[..., 1:-1], want[..., 1:-1])


def test_numpy_backed_array_mixed_in(raster, tmp_path, scheduler):
    path, data = raster(count=1, block=16)
    offsets = np.arange(data.shape[1] * data.shape[2], dtype="float32").reshape(data.shape)
    mixed = rmd.open_raster(path).astype("float32") + da.from_array(offsets, chunks=(1, 40, 50))
    written = rmd.to_raster(mixed, tmp_path / "out.tif", like=path, scheduler=scheduler)
    assert np.array_equal(read(written), data.astype("float32") + offsets)


def test_persisted_array_is_written_without_recomputing(raster, tmp_path, calls,
                                                         cluster_client):
    path, _ = raster(block=16)
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    from distributed import futures_of

    persisted = cluster_client.persist(out)
    cluster_client.gather(futures_of(persisted))  # every block computed
    assert_once_per_block(calls, path)
    written = rmd.to_raster(persisted * 2, tmp_path / "out.tif", like=path,
                            scheduler=cluster_client)
    assert_once_per_block(calls, path)  # not one call more
    assert np.array_equal(read(written)[0], band1(path) * 2)
    del persisted


def test_cluster_shows_the_users_keys(raster, tmp_path, cluster_client):
    from distributed import get_task_stream

    path, _ = raster(block=16)
    out = rmd.map_windows(runfuncs.to_float, [path], dtype="float32")
    with get_task_stream(client=cluster_client) as stream:
        rmd.to_raster(out - out.mean(), tmp_path / "out.tif", like=path,
                      scheduler=cluster_client)
    names = {str(task["key"]) for task in stream.data}
    assert any("map_windows-" in name for name in names), names
    assert any("mean" in name for name in names), names


def test_derived_array_keeps_its_georeferencing(raster, tmp_path):
    a, _ = raster("a.tif")
    b = make_raster(tmp_path / "b.tif", crs="EPSG:4326")[0]
    derived = rmd.open_raster(b) * 2  # arithmetic keeps the source in the graph
    with pytest.raises(InputMismatchError, match="CRS"):
        rmd.map_windows(runfuncs.passthrough, [a, derived])
    with pytest.raises(InputMismatchError, match="b.tif"):
        rmd.map_windows(runfuncs.passthrough, [rmd.open_raster(a), derived])


def test_writes_computed_together_publish_all_or_none(raster, tmp_path, scheduler):
    path, _ = raster(block=16)
    good = rmd.map_windows(runfuncs.passthrough, [path])
    bad = rmd.map_windows(runfuncs.fails_on_one, [path], global_args={"bad_ij": (6, 8)})
    w1 = rmd.to_raster(good, tmp_path / "good.tif", like=path, compute=False)
    w2 = rmd.to_raster(bad, tmp_path / "bad.tif", like=path, compute=False)
    with pytest.raises(RunFunctionError):
        rmd.compute(w1, w2, scheduler=scheduler)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]  # not even good.tif
