"""xarray in and out: rioxarray DataArrays as inputs, to_xarray, to_raster of a DataArray."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import rasterio
import rioxarray
from rasterio.transform import from_origin

import riomucho_dask as rmd
from riomucho_dask.errors import InputMismatchError, ProfileError

from . import runfuncs
from .conftest import assert_same_raster, make_raster, serial_reference


@pytest.fixture
def pair(raster):
    a, _ = raster("a.tif", count=3, block=16, nodata=0)
    b, _ = raster("b.tif", count=2, block=16, seed=7, nodata=0)
    return a, b


def test_rioxarray_inputs_mixed_with_paths(pair, tmp_path, scheduler):
    a, b = pair
    scene = rioxarray.open_rasterio(a, chunks=True)
    out = rmd.map_windows(runfuncs.ndvi, [scene, b], count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=a, scheduler=scheduler)
    reference = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1,
                                 dtype="float32")
    assert_same_raster(written, reference)


def test_derived_and_2d_dataarrays_keep_their_georeferencing(pair, tmp_path):
    a, b = pair
    doubled = rioxarray.open_rasterio(a, chunks=True).astype("uint32") * 2
    band = rioxarray.open_rasterio(b, chunks=True).sel(band=1)  # (y, x)
    assert band.dims == ("y", "x") and doubled.rio.crs is not None
    out = rmd.map_windows(runfuncs.scaled_sum, [doubled, band], count=2, dtype="float32")
    got = out.compute(scheduler="threads")
    with rasterio.open(a) as src_a, rasterio.open(b) as src_b:
        first = src_a.read().astype("uint32").astype("float32") * 2
        second = src_b.read(1).astype("float32")
    np.testing.assert_array_equal(got[0], first.sum(axis=0))
    np.testing.assert_array_equal(got[1], second - first[0])


@pytest.mark.parametrize("change", ["crs", "transform"])
def test_misaligned_dataarray_is_an_error(pair, tmp_path, change):
    a, _ = pair
    other = rioxarray.open_rasterio(a, chunks=True)
    if change == "crs":
        other = other.rio.write_crs("EPSG:4326")
    else:
        other = other.rio.write_transform(from_origin(0, 0, 30, 30))
    with pytest.raises(InputMismatchError, match=change.upper() if change == "crs"
                       else "resolution"):
        rmd.map_windows(runfuncs.passthrough, [a, other])
    with pytest.raises(InputMismatchError, match="DataArray"):
        rmd.map_windows(runfuncs.passthrough, [other, a])


def test_to_xarray_matches_open_rasterio(pair, tmp_path):
    a, b = pair
    out = rmd.map_windows(runfuncs.ndvi, [a, b], count=1, dtype="float32")
    x = rmd.to_xarray(out, like=a)
    assert x.chunks is not None  # still lazy
    written = rmd.to_raster(out, tmp_path / "ndvi.tif", like=a)
    opened = rioxarray.open_rasterio(written)
    assert x.dims == opened.dims
    for name in ("band", "x", "y"):
        np.testing.assert_array_equal(x[name].values, opened[name].values)
    assert x.rio.crs == opened.rio.crs
    assert x.rio.transform() == opened.rio.transform()
    assert x.rio.nodata is None and opened.rio.nodata is None  # float32 like uint16
    window = x.isel(x=slice(0, 40), y=slice(10, 30)).values
    np.testing.assert_array_equal(window, opened.isel(x=slice(0, 40), y=slice(10, 30)).values)
    # like= may be a DataArray too
    again = rmd.to_xarray(out, like=opened)
    np.testing.assert_array_equal(again.x.values, opened.x.values)
    with pytest.raises(ProfileError, match="97 x 131"):
        rmd.to_xarray(out[:, :50], like=a)


def test_to_raster_of_a_dataarray_without_like(pair, tmp_path, scheduler):
    a, b = pair
    out = rmd.map_windows(runfuncs.ndvi, [a, b], count=1, dtype="float32")
    x = rmd.to_xarray(out, like=a)
    written = rmd.to_raster(x, tmp_path / "out.tif", compress="deflate", scheduler=scheduler)
    reference = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1,
                                 dtype="float32")
    assert_same_raster(written, reference)


def test_a_pipeline_written_with_xarray_alone(pair, tmp_path):
    a, _ = pair
    scene = rioxarray.open_rasterio(a, chunks=True)
    ratio = ((scene.sel(band=1).astype("float32") + 1)
             / (scene.sel(band=2).astype("float32") + 1))  # 2-D, coordinates kept
    written = rmd.to_raster(ratio, tmp_path / "ratio.tif", nodata=-1.0)
    with rasterio.open(a) as src:
        data = src.read().astype("float32")
        crs, transform = src.crs, src.transform
    with rasterio.open(written) as got:
        assert got.crs == crs and got.transform == transform and got.nodata == -1.0
        np.testing.assert_array_equal(got.read(1), (data[0] + 1) / (data[1] + 1))


def test_dataarray_without_crs_needs_georeferencing(tmp_path):
    import xarray

    bare = xarray.DataArray(np.zeros((1, 8, 8), "uint8"), dims=("band", "y", "x"))
    with pytest.raises(ProfileError, match="no CRS"):
        rmd.to_raster(bare, tmp_path / "out.tif")


def test_without_xarray_the_rest_works_and_says_which_extra(tmp_path):
    path, _ = make_raster(tmp_path / "in.tif")
    code = f"""
import sys
sys.modules["xarray"] = None
sys.modules["rioxarray"] = None
import riomucho_dask as rmd
from riomucho_dask.errors import MissingExtraError
out = rmd.map_windows(lambda d, w, ij, g: d[0], [{str(path)!r}])
rmd.to_raster(out, {str(tmp_path / 'out.tif')!r}, like={str(path)!r})
try:
    rmd.to_xarray(out, like={str(path)!r})
except MissingExtraError as err:
    print(err)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'pip install "riomucho_dask[xarray]"' in result.stdout
    assert (tmp_path / "out.tif").exists()


def test_dataarray_edge_cases(pair, tmp_path):
    a, b = pair
    scene = rioxarray.open_rasterio(a)  # numpy-backed until computed: chunked, not read
    out = rmd.map_windows(runfuncs.passthrough, scene)  # a single DataArray, not a list
    with rasterio.open(a) as src:
        np.testing.assert_array_equal(out.compute(), src.read())
    with pytest.raises(ProfileError, match="south up"):
        rmd.to_raster(scene.sortby("y"), tmp_path / "flipped.tif")
    scaled = scene.copy()
    scaled.attrs["scale_factor"] = 0.0001
    with pytest.raises(ProfileError, match="scale_factor"):
        rmd.to_raster(scaled, tmp_path / "scaled.tif")
    # like's nodata (0) kept for uint8; a float like with NaN nodata dropped for uint8
    nan_like, _ = make_raster(tmp_path / "nan.tif", dtype="float32", nodata=float("nan"))
    small = rmd.map_windows(runfuncs.passthrough, [a], dtype="uint8")
    assert rmd.to_xarray(small, like=nan_like).rio.nodata is None
    # a rotated transform gives 2-D xc / yc coordinates, as open_rasterio does
    from affine import Affine

    rotated, _ = make_raster(tmp_path / "rot.tif", count=1,
                             transform=Affine.rotation(30) * Affine.scale(10, -10))
    x = rmd.to_xarray(rmd.open_raster(rotated), like=rotated)
    opened = rioxarray.open_rasterio(rotated)
    np.testing.assert_array_equal(x.xc.values, opened.xc.values)
    np.testing.assert_array_equal(x.yc.values, opened.yc.values)


def test_a_dataarray_as_the_grid(tmp_path):
    fine, _ = make_raster(tmp_path / "fine.tif", count=1, height=96, width=128)
    coarse, coarse_data = make_raster(tmp_path / "coarse.tif", count=1, height=48, width=64,
                                      transform=from_origin(500000.0, 4200000.0, 20.0, 20.0))
    grid = rioxarray.open_rasterio(fine, chunks=True)
    out = rmd.map_windows(runfuncs.passthrough, [coarse], grid=grid)
    assert out.shape == (1, 96, 128)
    assert np.array_equal(out.compute(), np.repeat(np.repeat(coarse_data, 2, 1), 2, 2))
    with rasterio.open(rmd.to_raster(out, tmp_path / "out.tif")) as src:
        assert src.transform == grid.rio.transform() and src.crs == grid.rio.crs
