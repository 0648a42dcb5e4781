"""Grid.from_bounds: a grid from a CRS, a resolution and bounds (Python and CLI)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_bounds

import riomucho_dask as rmd
from riomucho_dask.errors import InputError
from riomucho_dask.read.grid import Grid

from . import runfuncs
from .conftest import CRS, TRANSFORM, make_raster

# -- the grid ---------------------------------------------------------------------------


def test_bounds_off_the_multiples_snap_outward():
    grid = Grid.from_bounds((103, 201, 147.5, 299), "EPSG:32631", 10)
    assert grid.bounds == (100.0, 200.0, 150.0, 300.0)
    assert grid.transform == Affine(10, 0, 100, 0, -10, 300)
    assert (grid.width, grid.height) == (5, 10)
    assert grid.crs == rasterio.crs.CRS.from_epsg(32631)


def test_bounds_on_the_multiples_stay():
    grid = Grid.from_bounds((100, 200, 150, 300), "EPSG:32631", 10)
    assert grid.bounds == (100.0, 200.0, 150.0, 300.0)
    assert (grid.width, grid.height) == (5, 10)


def test_floating_noise_is_not_a_pixel_more():
    grid = Grid.from_bounds((100.0000000001, 199.9999999999, 149.9999999999, 300.0000000001),
                            "EPSG:32631", 10)
    assert grid.bounds == (100.0, 200.0, 150.0, 300.0)
    # 0.1 is not exact in binary: 3 x 0.1 is still 3 pixels
    grid = Grid.from_bounds((0.0, 0.0, 0.3, 0.3), "EPSG:4326", 0.1)
    assert (grid.width, grid.height) == (3, 3)


def test_negative_coordinates():
    grid = Grid.from_bounds((-105, -203, -1, -19.9), "EPSG:3857", 10)
    assert grid.bounds == (-110.0, -210.0, 0.0, -10.0)
    assert (grid.width, grid.height) == (11, 20)


def test_different_x_and_y_resolutions():
    grid = Grid.from_bounds((3, 7, 98, 99), "EPSG:32631", (20, 30))
    assert grid.res == (20.0, 30.0)
    assert grid.bounds == (0.0, 0.0, 100.0, 120.0)
    assert grid.transform == Affine(20, 0, 0, 0, -30, 120)
    assert (grid.width, grid.height) == (5, 4)


def test_bounds_in_another_crs():
    lonlat = (2.99, 37.9, 3.01, 37.91)
    grid = Grid.from_bounds(lonlat, "EPSG:32631", 10, bounds_crs="EPSG:4326")
    # the oracle: transform_bounds, then snapping written out here
    left, bottom, right, top = transform_bounds("EPSG:4326", "EPSG:32631", *lonlat,
                                                densify_pts=21)
    want = (math.floor(left / 10) * 10, math.floor(bottom / 10) * 10,
            math.ceil(right / 10) * 10, math.ceil(top / 10) * 10)
    assert grid.bounds == pytest.approx(want, abs=1e-6)
    assert grid.crs == rasterio.crs.CRS.from_epsg(32631)
    assert grid.width == round((want[2] - want[0]) / 10)
    assert grid.height == round((want[3] - want[1]) / 10)
    # the box holds the transformed bounds, by less than a pixel more on each side
    assert want[0] <= left < want[0] + 10 and want[2] - 10 < right <= want[2]
    assert want[1] <= bottom < want[1] + 10 and want[3] - 10 < top <= want[3]


def test_bounds_crs_equal_to_crs_changes_nothing():
    plain = Grid.from_bounds((103, 201, 147, 299), "EPSG:32631", 10)
    assert Grid.from_bounds((103, 201, 147, 299), "EPSG:32631", 10,
                            bounds_crs="EPSG:32631") == plain


def test_grids_of_one_crs_and_resolution_line_up():
    a = Grid.from_bounds((1003, 5001, 2017, 6099), "EPSG:32631", 10)
    b = Grid.from_bounds((1333.3, 4444.4, 3210.1, 5555.5), "EPSG:32631", 10)
    assert a.offset_in(b) is not None and b.offset_in(a) is not None
    assert a.offset_in(b) == (round((b.bounds[3] - a.bounds[3]) / 10),
                              round((a.bounds[0] - b.bounds[0]) / 10))
    # and with bounds given in degrees
    c = Grid.from_bounds((2.99, 37.9, 3.01, 37.91), "EPSG:32631", 10, bounds_crs="EPSG:4326")
    assert c.offset_in(a) is not None
    # another resolution does not line up
    assert Grid.from_bounds((1003, 5001, 2017, 6099), "EPSG:32631", 20).offset_in(a) is None


@pytest.mark.parametrize("bounds", [
    (0, 0, 10),                       # 3 numbers
    (0, 0, 10, 10, 20),               # 5
    (0, 0, 10, float("nan")),         # not finite
    (0, 0, float("inf"), 10),
    (0, "0", 10, 10),                 # not a number
    (0, 0, True, 10),
    "0,0,10,10",
    None,
    (10, 0, 0, 10),                   # left >= right
    (0, 10, 10, 10),                  # bottom >= top
])
def test_bad_bounds(bounds):
    with pytest.raises(InputError, match="bounds") as raised:
        Grid.from_bounds(bounds, "EPSG:32631", 10)
    assert repr(bounds) in str(raised.value) or repr(tuple(bounds)) in str(raised.value)


@pytest.mark.parametrize("resolution", [0, -10, float("nan"), float("inf"), "10", None,
                                        (10,), (10, 10, 10), (10, 0), (10, -1), True])
def test_bad_resolution(resolution):
    with pytest.raises(InputError, match="resolution") as raised:
        Grid.from_bounds((0, 0, 100, 100), "EPSG:32631", resolution)
    assert repr(resolution) in str(raised.value)


@pytest.mark.parametrize("crs", ["not a crs", "EPSG:99999", None, ""])
def test_bad_crs(crs):
    with pytest.raises(InputError, match="^crs ") as raised:
        Grid.from_bounds((0, 0, 100, 100), crs, 10)
    assert repr(crs) in str(raised.value)


def test_bad_bounds_crs():
    with pytest.raises(InputError, match="^bounds_crs 'not a crs'"):
        Grid.from_bounds((0, 0, 1, 1), "EPSG:32631", 10, bounds_crs="not a crs")


def test_bounds_that_do_not_transform():
    with pytest.raises(InputError, match="bounds"):
        Grid.from_bounds((-1e9, -1e9, 1e9, 1e9), "EPSG:32631", 10, bounds_crs="EPSG:4326")


# -- map_windows on such a grid ---------------------------------------------------------


#: GDAL's approximate transformer off, in effect: rasterio's WarpedVRT never sets a
#: transformer when tolerance=0 (GDAL: "pfnTransformer is NULL", then ObjectNullError, in
#: rasterio 1.4.4 and upstream), so the reference asks for an error of 1e-9 pixel instead
#: (equal, here, to the nearest pixels of an exact PROJ transform: see the test below).
EXACT = 1e-9


def _whole_grid_reference(path, grid, resampling=Resampling.nearest):
    """The serial oracle: one WarpedVRT onto the whole grid, exact transformer, one read."""
    with rasterio.open(path) as src, WarpedVRT(src, crs=grid.crs, transform=grid.transform,
                                               width=grid.width, height=grid.height,
                                               resampling=resampling, tolerance=EXACT) as vrt:
        return vrt.read()


def _nearest_by_proj(path, grid):
    """Nearest pixels computed here: each grid pixel's centre through PROJ, then floor."""
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    t = grid.transform
    xs, ys = t.c + (cols.ravel() + 0.5) * t.a, t.f + (rows.ravel() + 0.5) * t.e
    with rasterio.open(path) as src:
        data = src.read()
        sx, sy = map(np.asarray, warp_transform(grid.crs, src.crs, xs, ys))
        inverse = ~src.transform
        col = np.floor(inverse.a * sx + inverse.b * sy + inverse.c).astype(int)
        row = np.floor(inverse.d * sx + inverse.e * sy + inverse.f).astype(int)
        inside = (col >= 0) & (col < src.width) & (row >= 0) & (row < src.height)
    out = np.zeros((data.shape[0], grid.height * grid.width), data.dtype)
    out[:, inside] = data[:, row[inside], col[inside]]
    return out.reshape(data.shape[0], grid.height, grid.width)


#: Longitudes and latitudes over part of the fixture raster (EPSG:32631, from 500000 E,
#: 4200000 N: about 3.000 to 3.015 E, 37.939 to 37.948 N) and beyond it.
LONLAT = (2.996, 37.936, 3.010, 37.946)


def test_the_reference_is_exact(tmp_path):
    path, _ = make_raster(tmp_path / "in.tif", count=2)
    for crs, res in (("EPSG:3857", 7), ("EPSG:32632", 13)):
        grid = Grid.from_bounds(LONLAT, crs, res, bounds_crs="EPSG:4326")
        want = _nearest_by_proj(path, grid)
        assert 0.3 < (want != 0).mean() < 1
        assert np.array_equal(_whole_grid_reference(path, grid), want)


def test_map_windows_on_a_grid_on_the_raster_pixels(tmp_path):
    # the fixture raster: EPSG:32631, 10 m, from (500000, 4200000), 131 x 97; a grid over
    # part of it and beyond its right and bottom edges, on the same pixels (no warping)
    path, data = make_raster(tmp_path / "in.tif", count=2)
    grid = Grid.from_bounds((500203, 4198777, 501500.5, 4199901), CRS, 10)
    assert grid.bounds == (500200.0, 4198770.0, 501510.0, 4199910.0)
    assert grid.offset_in(Grid(CRS, TRANSFORM, 131, 97)) == (9, 20)
    out = rmd.map_windows(runfuncs.first_input, [path], grid=grid)
    written = rmd.to_raster(out, tmp_path / "out.tif", scheduler="threads")
    with rasterio.open(written) as src:
        assert (src.crs, src.transform, src.width, src.height) == (
            grid.crs, grid.transform, grid.width, grid.height)
        got = src.read()
    want = _whole_grid_reference(path, grid)
    assert np.array_equal(got, want)
    # the same pixels as the file's, and 0 (no nodata) outside it
    assert np.array_equal(got[:, :97 - 9, :131 - 20], data[:, 9:, 20:])
    assert not got[:, 97 - 9:, :].any() and not got[:, :, 131 - 20:].any()


def test_map_windows_on_a_grid_in_another_crs(tmp_path):
    """Warped reads against one exact WarpedVRT of the whole grid, read at once (with
    GDAL's default approximate transformer, 162 of 2 x 203 x 224 pixels differed)."""
    path, _ = make_raster(tmp_path / "in.tif", count=2)
    grid = Grid.from_bounds(LONLAT, "EPSG:3857", 7, bounds_crs="EPSG:4326")
    out = rmd.map_windows(runfuncs.first_input, [path], grid=grid, resampling="nearest")
    got = out.compute(scheduler="threads")
    want = _whole_grid_reference(path, grid)
    assert 0.3 < (want != 0).mean() < 1  # the raster covers part of the grid
    assert np.array_equal(got, want)


def test_a_crs_is_not_a_grid(tmp_path):
    path, _ = make_raster(tmp_path / "in.tif", count=1)
    with pytest.raises(InputError, match="is a CRS, not a grid.*Grid.from_bounds"):
        rmd.map_windows(runfuncs.first_input, [path], grid="EPSG:3857")


def test_a_crs_and_a_resolution_are_not_a_grid(tmp_path):
    path, _ = make_raster(tmp_path / "in.tif", count=1)
    with pytest.raises(InputError, match=r"grid=\('EPSG:3857', 100\).*Grid.from_bounds"):
        rmd.map_windows(runfuncs.first_input, [path], grid=("EPSG:3857", 100))


def test_a_file_named_like_a_crs_is_still_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path, data = make_raster(tmp_path / "EPSG:32631", count=1)
    out = rmd.map_windows(runfuncs.first_input, [path], grid="EPSG:32631")
    assert np.array_equal(out.compute(scheduler="sync"), data)


# -- the command line -------------------------------------------------------------------


def _usage_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("options, grid", [
    (["--grid-res", "20", "--grid-bounds", "500203,4198777,501500.5,4199901"],
     Grid.from_bounds((500203, 4198777, 501500.5, 4199901), CRS, 20)),
    (["--grid-res", "10,20", "--grid-bounds=-3,4199000,501000,4199900"],
     Grid.from_bounds((-3, 4199000, 501000, 4199900), CRS, (10, 20))),
    (["--grid-res", "10", "--grid-bounds", "2.99,37.9,3.01,37.91",
      "--grid-bounds-crs", "EPSG:4326"],
     Grid.from_bounds((2.99, 37.9, 3.01, 37.91), CRS, 10, bounds_crs="EPSG:4326")),
])
def test_cli_grid_from_bounds(invoke, tmp_path, options, grid):
    path, _ = make_raster(tmp_path / "in.tif", count=1, nodata=7)
    out = tmp_path / "out.tif"
    result = invoke("run", "tests.runfuncs:first_input", path, out, "--grid-crs", CRS,
                    *options, "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert (src.crs, src.transform, src.width, src.height) == (
            grid.crs, grid.transform, grid.width, grid.height)
        assert src.nodata == 7  # the first input's, as with any --grid but 'first'


def test_cli_grid_from_bounds_equals_the_python_api(invoke, tmp_path):
    path, _ = make_raster(tmp_path / "in.tif", count=1)
    grid = Grid.from_bounds(LONLAT, "EPSG:3857", 7, bounds_crs="EPSG:4326")
    result = invoke("run", "tests.runfuncs:first_input", path, tmp_path / "cli.tif",
                    "--grid-crs", "EPSG:3857", "--grid-res", 7,
                    "--grid-bounds", ",".join(map(str, LONLAT)),
                    "--grid-bounds-crs", "EPSG:4326", "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    api = rmd.to_raster(rmd.map_windows(runfuncs.first_input, [path], grid=grid),
                        tmp_path / "api.tif", scheduler="sync")
    with rasterio.open(tmp_path / "cli.tif") as a, rasterio.open(api) as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        assert np.array_equal(a.read(), b.read())


@pytest.mark.parametrize("options, said", [
    (["--grid-crs", "EPSG:32631", "--grid-res", "10"], "need --grid-bounds"),
    (["--grid-crs", "EPSG:32631", "--grid-bounds", "0,0,1,1"], "also need --grid-res"),
    (["--grid-res", "10"], "needs --grid-crs and --grid-bounds"),
    (["--grid-bounds-crs", "EPSG:4326"], "needs --grid-crs, --grid-res and --grid-bounds"),
    (["--grid", "first", "--grid-crs", "EPSG:32631", "--grid-res", "10",
      "--grid-bounds", "0,0,1,1"], "--grid and --grid-crs exclude each other"),
    (["--grid", "union", "--grid-bounds-crs", "EPSG:4326"],
     "--grid and --grid-bounds-crs exclude each other"),
    (["--grid", "EPSG:3857"], "is a CRS, not a grid"),
])
def test_cli_grid_usage_errors(invoke, tmp_path, options, said):
    path, _ = make_raster(tmp_path / "in.tif", count=1)
    result = invoke("run", "tests.runfuncs:first_input", path, tmp_path / "out.tif",
                    *options)
    line = _usage_error(result)
    assert said in line
    if "CRS" in said:
        assert "--grid-crs, --grid-res and --grid-bounds" in line
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("option, value", [
    ("--grid-crs", "not a crs"),
    ("--grid-bounds-crs", "EPSG:99999"),
    ("--grid-res", "0"),
    ("--grid-res", "-10"),
    ("--grid-res", "ten"),
    ("--grid-res", "10,10,10"),
    ("--grid-res", "nan"),
    ("--grid-bounds", "0,0,1"),
    ("--grid-bounds", "0,0,1,x"),
    ("--grid-bounds", "1,0,0,1"),
    ("--grid-bounds", "0,0,inf,1"),
])
def test_cli_grid_bad_values(invoke, tmp_path, option, value):
    path, _ = make_raster(tmp_path / "in.tif", count=1)
    options = {"--grid-crs": "EPSG:32631", "--grid-res": "10", "--grid-bounds": "0,0,100,100"}
    options[option] = value
    result = invoke("run", "tests.runfuncs:first_input", path, tmp_path / "out.tif",
                    *[text for pair in options.items() for text in pair])
    line = _usage_error(result)
    assert f"Invalid value for '{option}'" in line and repr(value) in line


def test_cli_bounds_that_do_not_transform(invoke, tmp_path):
    path, _ = make_raster(tmp_path / "in.tif", count=1)
    result = invoke("run", "tests.runfuncs:first_input", path, tmp_path / "out.tif",
                    "--grid-crs", "EPSG:32631", "--grid-res", "10",
                    "--grid-bounds=-1e9,-1e9,1e9,1e9", "--grid-bounds-crs", "EPSG:4326")
    assert "Invalid value for '--grid-bounds'" in _usage_error(result)
