"""The silent corners of issue 29: each one fixed, each one refused or written right."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

import riomucho_dask as rmd

from .conftest import make_raster

# -- nodata: explicit wins; like='s and the grid's only while the array keeps the dtype -------


def test_like_nodata_not_given_to_another_dtype(tmp_path):
    """The README's class map: `out > 0.3` written as uint8 like a uint16 raster whose
    nodata is 0 must not turn class 0 into nodata."""
    path, data = make_raster(tmp_path / "in.tif", dtype="uint16", nodata=0)
    arr = rmd.open_raster(path)
    classes = arr[:1] > int(np.median(data[0]))
    assert (~classes.compute()).any()  # class 0 is a real value here
    written = rmd.to_raster(classes, tmp_path / "green.tif", like=path, dtype="uint8",
                            stats=True)
    with rasterio.open(written) as src:
        assert src.nodata is None
        assert src.read_masks(1).all()  # class 0 reads back as data
        assert src.tags(1)["STATISTICS_VALID_PERCENT"] == "100"
        assert float(src.tags(1)["STATISTICS_MINIMUM"]) == 0


def test_like_nodata_kept_while_the_array_keeps_its_dtype(tmp_path):
    path, data = make_raster(tmp_path / "in.tif", dtype="uint16", nodata=0)
    written = rmd.to_raster(rmd.open_raster(path) // 2, tmp_path / "half.tif", like=path)
    with rasterio.open(written) as src:
        assert src.nodata == 0


def test_explicit_nodata_wins_over_like(tmp_path):
    path, data = make_raster(tmp_path / "in.tif", dtype="uint16", nodata=0)
    arr = rmd.open_raster(path)
    kept = rmd.to_raster(arr, tmp_path / "kept.tif", like=path, nodata=7)
    cast = rmd.to_raster(arr[:1] > 100, tmp_path / "cast.tif", like=path, dtype="uint8",
                         nodata=255)
    with rasterio.open(kept) as a, rasterio.open(cast) as b:
        assert (a.nodata, b.nodata) == (7, 255)


def test_grid_nodata_not_given_to_another_dtype(tmp_path):
    path, data = make_raster(tmp_path / "in.tif", dtype="uint16", nodata=0)
    arr = rmd.open_raster(path)
    with rasterio.open(rmd.to_raster(arr, tmp_path / "same.tif")) as src:
        assert src.nodata == 0
    with rasterio.open(rmd.to_raster((arr > 100).astype("uint8"), tmp_path / "b.tif")) as src:
        assert src.nodata is None


# -- per-band masks: kept by nodata, one internal mask when they agree, else refused ----------

#: Routes a masked result takes: a GDAL dataset (striped), GDAL with statistics measured in
#: the tasks, encoded tiles (tiled GeoTIFF), and a COG.
MASK_ROUTES = {
    "strips": {"tiled": False},
    "strips-stats": {"tiled": False, "stats": True},
    "tiled": {"tiled": True, "blockxsize": 32, "blockysize": 32, "compress": "deflate"},
    "cog": {"driver": "COG", "blocksize": 32, "compress": "deflate"},
}


def _masks_job(tmp_path, ij):
    from . import runfuncs

    path, data = make_raster(tmp_path / "in.tif", count=1, dtype="uint16", block=32)
    g = {"ij": ij, "low": float(np.percentile(data[0], 20)),
         "high": float(np.percentile(data[0], 80))}
    out = rmd.map_windows(runfuncs.masks_differ_at, [path], global_args=g, count=2,
                          dtype="float32")
    return path, data, g, out


@pytest.mark.parametrize("route", list(MASK_ROUTES))
def test_bands_masked_differently_without_nodata_are_refused(tmp_path, route, local_scheduler):
    from riomucho_dask.errors import StoreError

    path, data, g, out = _masks_job(tmp_path, (1, 2))
    with pytest.raises(StoreError, match=r"nodata=") as caught:
        rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=local_scheduler,
                      **MASK_ROUTES[route])
    message = str(caught.value)
    # the written block holding window (1, 2): that window, or the strip of rows holding it
    assert "row_off=32" in message, message
    assert "col_off=64" in message or "col_off=0, row_off=32, width=131" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_bands_masked_differently_refused_on_a_cluster(tmp_path, cluster_client):
    from riomucho_dask.errors import StoreError

    path, data, g, out = _masks_job(tmp_path, (0, 1))
    with pytest.raises(StoreError, match=r"row_off=0.*col_off=32|col_off=32.*row_off=0"):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=cluster_client,
                      **MASK_ROUTES["tiled"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


@pytest.mark.parametrize("route", list(MASK_ROUTES))
def test_bands_masked_alike_share_one_internal_mask(tmp_path, route):
    path, data, g, out = _masks_job(tmp_path, (-1, -1))
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, **MASK_ROUTES[route])
    low = data[0] < g["low"]
    with rasterio.open(written) as src:
        assert src.nodata is None
        assert [flag.name for flag in src.mask_flag_enums[0]] == ["per_dataset"]
        for band in (1, 2):
            assert np.array_equal(src.read_masks(band) == 0, low)


@pytest.mark.parametrize("route", list(MASK_ROUTES))
def test_bands_masked_differently_keep_their_masks_by_nodata(tmp_path, route):
    path, data, g, out = _masks_job(tmp_path, (1, 2))
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, nodata=-1,
                            **MASK_ROUTES[route])
    expected = out.compute()
    with rasterio.open(written) as src:
        assert src.nodata == -1
        got = src.read(masked=True)
    assert np.array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(expected))
    assert not np.array_equal(np.ma.getmaskarray(got)[0], np.ma.getmaskarray(got)[1])
    assert np.array_equal(got.filled(-1), expected.filled(-1))


# -- creation options checked against the driver's own list, before anything runs -----------


def _counted_job(tmp_path):
    """A job whose run function leaves one file per call in ``calls``."""
    from . import runfuncs

    path, _ = make_raster(tmp_path / "in.tif", count=1, dtype="uint16", block=32)
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    return path, out, calls


def _nothing_ran(tmp_path, calls, *left):
    assert list(calls.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.tif", "calls", *left])


def test_misspelled_creation_option_refused_before_running(tmp_path):
    from riomucho_dask.errors import ProfileError

    path, out, calls = _counted_job(tmp_path)
    with pytest.raises(ProfileError, match=r"'compresss'.*'compress'"):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, compresss="deflate",
                      scheduler="threads")
    with pytest.raises(ProfileError, match=r"'zlevle'.*'zlevel'"):
        rmd.to_raster(out, tmp_path / "out.png", dtype="uint16", zlevle=9)
    with pytest.raises(ProfileError, match=r"'blocksizee'.*'blocksize'"):
        rmd.to_raster(out, tmp_path / "out.tif", driver="COG", blocksizee=256)
    with pytest.raises(ProfileError, match=r"'compresss'"):  # in a profile too
        rmd.to_raster(out, tmp_path / "out.tif", {"compresss": "deflate"})
    _nothing_ran(tmp_path, calls)


@pytest.mark.parametrize("driver", ["GTiff", "COG", "PNG"])
def test_every_option_the_driver_lists_passes(driver):
    from riomucho_dask.write import drivers

    listed = drivers.creation_options(driver)
    assert listed  # (read from this GDAL)
    drivers.check_options(driver, [name.lower() for name in listed])
    drivers.check_options(driver, listed)
    # and the keys riomucho_dask reads itself, whatever the driver
    drivers.check_options(driver, ["driver", "dtype", "nodata", "count", "width", "height",
                                   "crs", "transform", "tiled", "blockxsize", "blockysize",
                                   "compress", "interleave", "overviews", "blocksize"])


def test_listed_options_are_written(tmp_path):
    path, out, calls = _counted_job(tmp_path)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, compress="zstd",
                            ZSTD_LEVEL=3, predictor=3, tiled=True, blockxsize=32,
                            blockysize=32, sparse_ok=True)
    cog = rmd.to_raster(out, tmp_path / "cog.tif", like=path, driver="COG", compress="deflate",
                        level=6, blocksize=64, overview_resampling="average")
    with rasterio.open(written) as a, rasterio.open(cog) as b:
        assert a.compression.name == "zstd" and a.block_shapes[0] == (32, 32)
        assert b.compression.name == "deflate" and b.block_shapes[0] == (64, 64)


# -- extensions and drivers: written by the driver that writes them, or refused up front ----


def test_zarr_extension_is_a_zarr_store(tmp_path):
    path, out, calls = _counted_job(tmp_path)
    written = rmd.to_raster(out, tmp_path / "out.zarr", like=path)
    with rasterio.open(written) as src, rasterio.open(path) as ref:
        assert src.driver == "Zarr"
        assert np.array_equal(src.read(1), ref.read(1).astype("float32"))
        assert src.crs == ref.crs and src.transform == ref.transform
    assert (tmp_path / "out.zarr").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "in.tif", "out.zarr"]


@pytest.mark.parametrize("name, options, words", [
    ("out.nc", {}, "netCDF"),
    ("out.tif", {"driver": "netCDF"}, "netCDF"),
    ("out.bin", {}, "'.bin'"),
    ("out.h5", {"driver": "HDF5"}, "HDF5"),  # (read-only in GDAL)
])
def test_drivers_that_cannot_write_are_refused_up_front(tmp_path, name, options, words):
    from riomucho_dask.errors import ProfileError

    with rasterio.Env() as env:
        if options.get("driver", "netCDF") not in env.drivers():
            pytest.skip(f"no {options.get('driver')} driver in this GDAL")
    path, out, calls = _counted_job(tmp_path)
    with pytest.raises(ProfileError, match=words):
        rmd.to_raster(out, tmp_path / name, like=path, scheduler="threads", **options)
    _nothing_ran(tmp_path, calls)


def test_a_directory_as_output_path_is_refused_up_front(tmp_path):
    from riomucho_dask.errors import OutputPathError

    path, out, calls = _counted_job(tmp_path)
    (tmp_path / "out.tif").mkdir()
    with pytest.raises(OutputPathError, match="out.tif"):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler="threads")
    _nothing_ran(tmp_path, calls, "out.tif")


def test_a_file_where_a_zarr_store_goes_is_refused_up_front(tmp_path):
    from riomucho_dask.errors import OutputPathError

    path, out, calls = _counted_job(tmp_path)
    (tmp_path / "out.zarr").write_bytes(b"a file")
    with pytest.raises(OutputPathError, match="out.zarr"):
        rmd.to_raster(out, tmp_path / "out.zarr", like=path, scheduler="threads")
    with pytest.raises(OutputPathError, match="store.tif"):
        (tmp_path / "store.tif").write_bytes(b"a file")
        rmd.to_raster(out, tmp_path / "store.tif", like=path, driver="Zarr")
    _nothing_ran(tmp_path, calls, "out.zarr", "store.tif")
    assert (tmp_path / "out.zarr").read_bytes() == b"a file"


def test_a_zarr_store_replaces_the_one_at_its_path(tmp_path):
    path, out, calls = _counted_job(tmp_path)
    rmd.to_raster(out, tmp_path / "out.zarr", like=path)
    written = rmd.to_raster(out * 2, tmp_path / "out.zarr", like=path)
    with rasterio.open(written) as src, rasterio.open(path) as ref:
        assert np.array_equal(src.read(1), ref.read(1).astype("float32") * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "in.tif", "out.zarr"]


# -- rmd.compute of writes and any dask collections together --------------------------------


def _compute_job(tmp_path):
    from . import runfuncs

    path, data = make_raster(tmp_path / "in.tif", count=1, height=128, width=128, block=32)
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    return path, data, calls, out


@pytest.mark.parametrize("where", ["threads", "processes", "cluster"])
def test_compute_takes_writes_and_collections_together(tmp_path, where, request):
    import dask

    from . import runfuncs

    scheduler = request.getfixturevalue("cluster_client") if where == "cluster" else where
    path, data, calls, out = _compute_job(tmp_path)
    w1 = rmd.to_raster(out, tmp_path / "a.tif", like=path, compute=False, tiled=True,
                       blockxsize=32, blockysize=32)
    w2 = rmd.to_raster(out * 2, tmp_path / "b.tif", like=path, compute=False)
    mean, a, total, b, plain = rmd.compute(out.mean(), w1, dask.delayed(sum)([1, 2]), w2, 7,
                                           scheduler=scheduler)
    per_window = runfuncs.calls_per_window(calls)
    assert len(per_window) == 16 and set(per_window.values()) == {1}
    assert (a, b) == (str(tmp_path / "a.tif"), str(tmp_path / "b.tif"))
    assert np.isclose(mean, data[0].astype("float32").mean()) and total == 3 and plain == 7
    with rasterio.open(a) as one, rasterio.open(b) as two:
        assert np.array_equal(one.read(1), data[0].astype("float32"))
        assert np.array_equal(two.read(1), data[0].astype("float32") * 2)


def test_dask_compute_of_a_write_on_a_cluster_says_to_use_rmd_compute(tmp_path, cluster_client,
                                                                      caplog):
    import dask

    from riomucho_dask.errors import SchedulerError

    path, data, calls, out = _compute_job(tmp_path)
    write = rmd.to_raster(out, tmp_path / "a.tif", like=path, compute=False)
    with caplog.at_level("DEBUG"):
        with pytest.raises(SchedulerError, match=r"riomucho_dask\.compute|rmd\.compute"):
            dask.compute(write, scheduler=cluster_client)
        with cluster_client.as_current(), pytest.raises(SchedulerError, match="compute"):
            dask.compute(write)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert list(calls.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "in.tif"]
