"""Inputs on other grids, mosaics, masks, and outputs laid out for themselves."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.shutil import copy as gdal_copy
from rasterio.transform import from_origin
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

import riomucho_dask as rmd
from riomucho_dask.errors import InputError, InputMismatchError, OverlapError, ProfileError
from riomucho_dask.read.handles import EXACT_TOLERANCE

from . import runfuncs
from .conftest import CRS, TRANSFORM, assert_same_raster, make_raster

FINE = TRANSFORM  # 10 m
COARSE = from_origin(500000.0, 4200000.0, 20.0, 20.0)


def counted(calls_dir):
    return len(os.listdir(calls_dir))


@pytest.fixture
def fine_coarse(tmp_path):
    """A 10 m raster (96 x 128, 32-px tiles) and a 20 m one over the same extent."""
    fine, fine_data = make_raster(tmp_path / "b10.tif", count=1, height=96, width=128,
                                  transform=FINE)
    coarse, coarse_data = make_raster(tmp_path / "b20.tif", count=1, height=48, width=64,
                                      transform=COARSE, block=16, seed=3)
    return fine, fine_data, coarse, coarse_data


def test_nearest_onto_a_finer_grid_is_a_repeat(fine_coarse, tmp_path, scheduler):
    fine, fine_data, coarse, coarse_data = fine_coarse
    g = {"calls": str(tmp_path / "calls")}
    os.mkdir(g["calls"])
    out = rmd.map_windows(runfuncs.second_counted, [fine, coarse], grid="first",
                          global_args=g)
    written = rmd.to_raster(out, tmp_path / "out.tif", scheduler=scheduler)  # no like=
    with rasterio.open(written) as src:
        assert src.crs == CRS and src.transform == FINE and src.shape == (96, 128)
        assert np.array_equal(src.read(), np.repeat(np.repeat(coarse_data, 2, 1), 2, 2))
    assert counted(g["calls"]) == out.npartitions == 12


def _windowed_reference(path, transform, width, height, resampling, block=32):
    """What a user writes by hand: one WarpedVRT on the whole grid, read window by
    window, with an exact transformer (GDAL's default linearises it per window)."""
    with rasterio.open(path) as src, WarpedVRT(src, crs=CRS, transform=transform, width=width,
                                               height=height, resampling=resampling,
                                               tolerance=EXACT_TOLERANCE) as vrt:
        out = np.zeros((vrt.count, height, width), vrt.dtypes[0])
        for row in range(0, height, block):
            for col in range(0, width, block):
                window = Window(col, row, min(block, width - col), min(block, height - row))
                out[:, row:row + window.height, col:col + window.width] = vrt.read(
                    window=window)
    return out


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_another_crs_equals_a_warped_vrt_loop(fine_coarse, tmp_path, scheduler, resampling):
    fine, _, _, _ = fine_coarse
    geo, _ = make_raster(tmp_path / "geo.tif", count=2, height=60, width=80, dtype="float32",
                         crs="EPSG:4326", transform=from_origin(2.9990, 37.9460, 0.0002,
                                                                0.00017), seed=4)
    out = rmd.map_windows(runfuncs.second_input, [fine, geo], grid="first",
                          resampling=resampling, count=2, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", scheduler=scheduler)
    want = _windowed_reference(geo, FINE, 128, 96, Resampling[resampling])
    assert 0.5 < (want != 0).mean() < 1  # the inputs overlap, in part
    with rasterio.open(written) as src:
        assert np.array_equal(src.read(), want)
        assert src.crs == CRS and src.transform == FINE


def test_resampling_per_input_and_grid_from_a_raster(fine_coarse, tmp_path):
    fine, fine_data, coarse, coarse_data = fine_coarse
    out = rmd.map_windows(runfuncs.stack_inputs, [coarse, fine], grid=fine,
                          resampling=["bilinear", "nearest"], count=2, dtype="uint16")
    assert out.chunksize == (2, 32, 32)  # the grid raster's windows
    got = out.compute()
    assert np.array_equal(got[1], fine_data[0])  # on the grid: read as it is
    assert np.array_equal(got[0], _windowed_reference(coarse, FINE, 128, 96,
                                                      Resampling.bilinear)[0])
    with pytest.raises(InputError, match="resampling has 1 items for 2 inputs"):
        rmd.map_windows(runfuncs.stack_inputs, [coarse, fine], grid=fine,
                        resampling=["nearest"])
    with pytest.raises(InputError, match="'cubicc' is not a resampling"):
        rmd.map_windows(runfuncs.stack_inputs, [coarse, fine], grid=fine, resampling="cubicc")
    with pytest.raises(InputError, match="grid must be"):
        rmd.map_windows(runfuncs.stack_inputs, [coarse, fine], grid=42)


def test_a_grid_object(fine_coarse, tmp_path):
    fine, _, coarse, coarse_data = fine_coarse
    grid = rmd.Grid(CRS, COARSE, width=64, height=48)
    assert grid == rmd.Grid.from_raster(coarse)
    assert grid.res == (20.0, 20.0) and grid.bounds == (500000.0, 4199040.0, 501280.0,
                                                          4200000.0)
    out = rmd.map_windows(runfuncs.first_input, [coarse, fine], grid=grid,
                          resampling="average")
    assert out.shape == (1, 48, 64)
    assert np.array_equal(out.compute(), coarse_data)


def test_misaligned_inputs_name_what_differs(fine_coarse, tmp_path):
    fine, _, coarse, _ = fine_coarse
    with pytest.raises(InputMismatchError) as info:
        rmd.map_windows(runfuncs.first_input, [fine, coarse])
    message = str(info.value)
    assert "b20.tif" in message and "resolution (20.0, 20.0), not (10.0, 10.0)" in message
    assert "size 48 x 64" in message and "grid='first'" in message
    other_crs, _ = make_raster(tmp_path / "utm32.tif", count=1, height=96, width=128,
                               crs="EPSG:32632")
    with pytest.raises(InputMismatchError, match="CRS EPSG:32632, not EPSG:32631"):
        rmd.map_windows(runfuncs.first_input, [fine, other_crs])


def test_arrays_are_not_resampled(fine_coarse):
    fine, _, coarse, _ = fine_coarse
    with pytest.raises(InputMismatchError, match="arrays are not resampled"):
        rmd.map_windows(runfuncs.first_input, [fine, rmd.open_raster(coarse)], grid="first")
    # an array already on the grid is taken as it is
    out = rmd.map_windows(runfuncs.second_input, [coarse, rmd.open_raster(fine) * 2],
                          grid=fine)
    assert out.shape == (1, 96, 128)


def test_union_and_intersection_of_shifted_inputs(tmp_path, scheduler):
    a, a_data = make_raster(tmp_path / "a.tif", count=1, height=40, width=50, nodata=7)
    b, b_data = make_raster(tmp_path / "b.tif", count=1, height=40, width=50, seed=5,
                            transform=from_origin(500100.0, 4199900.0, 10.0, 10.0))
    out = rmd.map_windows(runfuncs.stack_inputs, [a, b], grid="union", count=2)
    written = rmd.to_raster(out, tmp_path / "union.tif", scheduler=scheduler)
    with rasterio.open(written) as src:
        assert src.bounds == (500000.0, 4199500.0, 500600.0, 4200000.0)
        got = src.read()
    want_a = np.full((50, 60), 7, "uint16")  # a's nodata outside a
    want_a[:40, :50] = a_data[0]
    want_b = np.zeros((50, 60), "uint16")  # 0 outside b, which has no nodata
    want_b[10:, 10:] = b_data[0]
    assert np.array_equal(got[0], want_a) and np.array_equal(got[1], want_b)

    out = rmd.map_windows(runfuncs.stack_inputs, [a, b], grid="intersection", count=2,
                          masked=True)
    written = rmd.to_raster(out, tmp_path / "inter.tif", scheduler=scheduler)
    with rasterio.open(written) as src:
        assert src.bounds == (500100.0, 4199600.0, 500500.0, 4199900.0)
        got = src.read(masked=True)
    assert np.array_equal(got[0].filled(7), a_data[0, 10:, 10:])
    assert np.array_equal(got[1], b_data[0, :30, :40])


def _cut(path, tmp_path, pieces):
    """Cut ``path`` into files, one per ``(row, col, height, width)``."""
    files = []
    with rasterio.open(path) as src:
        for n, (row, col, height, width) in enumerate(pieces):
            window = Window(col, row, width, height)
            profile = dict(src.profile, height=height, width=width,
                           transform=src.window_transform(window))
            files.append(str(tmp_path / f"tile{n}.tif"))
            with rasterio.open(files[-1], "w", **profile) as dst:
                dst.write(src.read(window=window))
    return files


def test_a_mosaic_equals_the_file_it_was_cut_from(tmp_path, scheduler):
    whole, data = make_raster(tmp_path / "whole.tif", count=2, nodata=0)
    tiles = _cut(whole, tmp_path, [(0, 0, 50, 70), (0, 70, 50, 61), (50, 0, 47, 70),
                                   (50, 70, 47, 61)])
    out = rmd.map_windows(runfuncs.first_input, [tiles[::-1], whole], count=2)
    written = rmd.to_raster(out, tmp_path / "mosaic.tif", scheduler=scheduler)
    assert_same_raster(written, whole)  # nodata comes along with the grid
    assert np.array_equal(rmd.open_raster(tuple(tiles)).compute(), data)


def test_a_mosaic_first_valid_pixel_wins(tmp_path):
    a, a_data = make_raster(tmp_path / "a.tif", count=1, height=32, width=32, nodata=0)
    b, b_data = make_raster(tmp_path / "b.tif", count=1, height=32, width=32, seed=9,
                            transform=from_origin(500160.0, 4200000.0, 10.0, 10.0))
    got = rmd.open_raster([a, b]).compute()
    with rasterio.open(a) as first, rasterio.open(b) as second:
        from rasterio.merge import merge
        want, transform = merge([first, second])
    assert got.shape == want.shape == (1, 32, 48)
    assert np.array_equal(got, want)
    assert np.array_equal(got[0, :3, :5], b_data[0, :3, :5] * 0)  # a's nodata: nothing there
    with pytest.raises(InputError, match="mosaic"):
        rmd.map_windows(runfuncs.manual_first, [[a, b]], mode="manual_read")


def test_masked_reads_equal_read_masked(tmp_path, scheduler):
    path = _rgb_with_mask(tmp_path / "rgb.tif")
    got = rmd.open_raster(path, masked=True).compute()
    with rasterio.open(path) as src:
        want = src.read(masked=True)
    assert isinstance(got, np.ma.MaskedArray)
    assert np.array_equal(got.mask, want.mask) and np.array_equal(got.data, want.data)
    out = rmd.map_windows(runfuncs.first_input, [path], masked=True)
    for driver in ("GTiff", "COG"):  # the mask survives an identity copy
        written = rmd.to_raster(out, tmp_path / f"copy-{driver}.tif", driver=driver,
                                compress="deflate", scheduler=scheduler)
        with rasterio.open(written) as src:
            assert src.mask_flag_enums[0] == [rasterio.enums.MaskFlags.per_dataset]
            assert np.array_equal(src.read(masked=True).mask, want.mask)
            assert np.array_equal(src.read(), want.filled(0))  # 0 under the mask


def _rgb_with_mask(path):
    profile = dict(driver="GTiff", count=3, height=70, width=90, dtype="uint8", crs=CRS,
                   transform=TRANSFORM, tiled=True, blockxsize=32, blockysize=32)
    rng = np.random.default_rng(1)
    mask = np.full((70, 90), 255, "uint8")
    mask[:20, :30] = 0
    mask[50:, 60:] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(rng.integers(1, 255, (3, 70, 90), dtype="uint8"))
        dst.write_mask(mask)
    return str(path)


def test_masked_array_read_mode_and_overlap(tmp_path):
    path = _rgb_with_mask(tmp_path / "rgb.tif")
    seen = {}

    def look(data, window, ij, g):
        seen[ij] = data
        return data[:1] if isinstance(data, np.ndarray) else data[0][:1]

    rmd.map_windows(look, [path, path], mode="array_read", masked=True, count=1).compute(
        scheduler="sync")
    assert all(isinstance(d, np.ma.MaskedArray) and d.shape[0] == 6 for d in seen.values())
    assert seen[(0, 0)].mask[:, :20, :30].all() and not seen[(0, 0)].mask[:, 25:, :].any()
    seen.clear()
    rmd.map_windows(look, [path], masked=True, overlap=2, count=1).compute(scheduler="sync")
    corner = seen[(0, 0)][0]
    assert corner.shape == (3, 36, 36)
    assert corner.mask[:, :2].all() and corner.mask[:, 2:22, 2:32].all()  # outside: masked
    assert not corner.mask[:, 22:, 32:].any()


def test_output_driver_from_the_extension_not_from_like(tmp_path, raster):
    path, data = raster("in.tif", count=1)
    vrt, img = str(tmp_path / "in.vrt"), str(tmp_path / "in.img")
    gdal_copy(path, vrt, driver="VRT")
    gdal_copy(path, img, driver="HFA")
    for first in (vrt, img):
        out = rmd.map_windows(runfuncs.first_input, [first])
        written = rmd.to_raster(out, tmp_path / "out.tif", like=first)
        with rasterio.open(written) as src:
            assert src.driver == "GTiff" and np.array_equal(src.read(), data)
        os.remove(written)
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.img")
    with rasterio.open(written) as src:
        assert src.driver == "HFA" and src.transform == TRANSFORM
    for name in ("out.vrt", "out.nc"):  # no driver chosen for them silently (.png: PNG)
        with pytest.raises(ProfileError, match="driver for this extension"):
            rmd.to_raster(rmd.open_raster(path), tmp_path / name)
    with pytest.raises(ProfileError, match="VRT holds no pixels"):
        rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", driver="VRT")
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".out")
                or name.endswith((".vrt", ".nc")) and name.startswith("out")]
    # like= gives its GeoTIFF layout to a GeoTIFF only
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "tiled.tif", like=path)
    with rasterio.open(written) as src:
        assert src.block_shapes == [(32, 32)]


def test_a_cog_from_a_striped_input_and_any_shape(tmp_path):
    from rio_cogeo.cogeo import cog_validate

    striped, data = make_raster(tmp_path / "striped.tif", count=1, height=300, width=700,
                                tiled=False, block=4)  # 1-row strips
    out = rmd.map_windows(runfuncs.first_input, [striped])
    written = rmd.to_raster(out, tmp_path / "cog.tif", like=striped, driver="COG",
                            compress="deflate")
    assert cog_validate(written) == (True, [], [])
    with rasterio.open(written) as src:
        assert src.block_shapes == [(512, 512)] and np.array_equal(src.read(), data)
    import dask.array as da

    long = da.arange(100000, dtype="uint16").reshape(1, 1, 100000).rechunk((1, 1, 4096))
    profile = {"crs": "EPSG:4326", "transform": from_origin(0, 1, 0.001, 0.001)}
    for options in ({"driver": "COG"}, {"tiled": True, "blockxsize": 512, "blockysize": 512}):
        written = rmd.to_raster(long, tmp_path / "long.tif", profile, compress="deflate",
                                **options)
        with rasterio.open(written) as src:
            assert np.array_equal(src.read(), long.compute())
        os.remove(written)


def test_derived_arrays_carry_their_grid(fine_coarse, tmp_path):
    fine, fine_data, coarse, _ = fine_coarse
    out = rmd.map_windows(runfuncs.first_input, [fine, coarse], grid="first")
    derived = (out.astype("float32") - out.mean()) / out.std()
    written = rmd.to_raster(derived, tmp_path / "z.tif")
    with rasterio.open(written) as src:
        assert src.crs == CRS and src.transform == FINE and src.nodata is None
    manual = rmd.map_windows(runfuncs.manual_first, [coarse, fine], mode="manual_read",
                             grid=fine)
    assert np.array_equal(manual.compute(), _windowed_reference(coarse, FINE, 128, 96,
                                                               Resampling.nearest))
    written = rmd.to_raster(manual, tmp_path / "manual.tif")
    with rasterio.open(written) as src:
        assert src.transform == FINE


def test_striped_inputs_run_few_tasks(tmp_path, scheduler):
    striped, data = make_raster(tmp_path / "striped.tif", count=1, height=600, width=200,
                                tiled=False, block=4, compress="deflate")  # 600 strips
    with rasterio.open(striped) as src:
        assert src.block_shapes == [(1, 200)]
    g = {"calls": str(tmp_path / "calls")}
    os.mkdir(g["calls"])
    out = rmd.map_windows(runfuncs.first_counted, [striped], global_args=g)
    assert out.chunks[1] == (256, 256, 88)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=striped, scheduler=scheduler)
    with rasterio.open(written) as src:
        assert np.array_equal(src.read(), data)
    assert counted(g["calls"]) == 3 <= 600 // 10
    assert rmd.open_raster(striped, chunks=100).chunks[1:] == ((100,) * 6, (100, 100))


def test_overlap_on_a_grid(fine_coarse):
    fine, _, coarse, coarse_data = fine_coarse
    out = rmd.map_windows(runfuncs.second_input, [fine, coarse], grid="first", overlap=1)
    assert np.array_equal(out.compute(), np.repeat(np.repeat(coarse_data, 2, 1), 2, 2))
    with pytest.raises(OverlapError, match="not read straight from a file"):
        rmd.map_windows(runfuncs.first_input, [rmd.open_raster(fine) * 2], overlap=1)


def test_open_handles_are_bounded(tmp_path):
    import dask

    from riomucho_dask.read import handles

    whole, data = make_raster(tmp_path / "whole.tif", count=1, height=64, width=64)
    tiles = _cut(whole, tmp_path, [(r, c, 16, 16) for r in range(0, 64, 16)
                                   for c in range(0, 64, 16)])
    with dask.config.set({"riomucho_dask.open-datasets": 3}):
        got = rmd.open_raster(tiles, chunks=64).compute(scheduler="sync")
        assert len(handles._cache().datasets) == 3
    assert np.array_equal(got, data)


def test_cli_grid_resampling_masked(fine_coarse, tmp_path):
    from click.testing import CliRunner

    from riomucho_dask.cli import mucho

    fine, _, coarse, coarse_data = fine_coarse
    out = str(tmp_path / "out.tif")
    result = CliRunner().invoke(mucho, [
        "run", "tests.runfuncs:first_input", coarse, fine, out, "--grid", fine,
        "--resampling", "nearest", "--masked"])
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.driver == "GTiff" and src.transform == FINE
        assert np.array_equal(src.read(), np.repeat(np.repeat(coarse_data, 2, 1), 2, 2))
    result = CliRunner().invoke(mucho, ["run", "tests.runfuncs:first_input", coarse, fine,
                                        out, "--overwrite"])
    assert result.exit_code == 1 and "grid='first'" in result.output


def test_errors_for_bad_grids(fine_coarse, tmp_path):
    fine, _, coarse, _ = fine_coarse
    far, _ = make_raster(tmp_path / "far.tif", count=1, height=10, width=10,
                         transform=from_origin(0.0, 10.0, 10.0, 10.0))
    with pytest.raises(InputError, match="do not overlap"):
        rmd.map_windows(runfuncs.first_input, [fine, far], grid="intersection")
    import dask.array as da

    with pytest.raises(InputError, match="needs a first input with georeferencing"):
        rmd.map_windows(runfuncs.first_input, [da.zeros((1, 96, 128)), fine], grid="first")
    with pytest.raises(ProfileError, match="like="):
        rmd.to_raster(da.zeros((1, 8, 8), chunks=4), tmp_path / "x.tif")


def test_the_shim_writes_the_outputs_own_driver(tmp_path, raster):
    path, data = raster("in.tif", count=1)
    vrt = str(tmp_path / "in.vrt")
    gdal_copy(path, vrt, driver="VRT")
    with rmd.RioMucho([vrt], str(tmp_path / "out.tif"), runfuncs.first_input) as rm:
        rm.run(2)
    with rasterio.open(tmp_path / "out.tif") as src:
        assert src.driver == "GTiff" and src.transform == TRANSFORM
        assert np.array_equal(src.read(), data)


def _rgba(path, transform=TRANSFORM):
    profile = dict(driver="GTiff", count=4, height=40, width=50, dtype="uint8", crs=CRS,
                   transform=transform, photometric="RGB", alpha="YES")
    data = np.random.default_rng(2).integers(1, 255, (4, 40, 50), dtype="uint8")
    data[3] = 255
    data[3, :10, :10] = 0
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return str(path), data


def test_alpha_bands_on_another_grid_and_in_mosaics(tmp_path):
    a, a_data = _rgba(tmp_path / "a.tif")
    b, b_data = _rgba(tmp_path / "b.tif", from_origin(500500.0, 4200000.0, 10.0, 10.0))
    finer = rmd.Grid(CRS, from_origin(500000.0, 4200000.0, 5.0, 5.0), width=100, height=80)
    got = rmd.open_raster(a, masked=True).compute()
    with rasterio.open(a) as src:
        assert np.array_equal(got.mask, src.read(masked=True).mask)
    out = rmd.map_windows(runfuncs.first_input, [a], grid=finer, masked=True)
    got = out.compute()
    assert got.mask[:3, :20, :20].all() and not got.mask[:3, 20:, 20:].any()
    mosaic = rmd.open_raster([a, b]).compute()
    assert mosaic.shape == (4, 40, 100)
    assert np.array_equal(mosaic[:, :, 50:], np.where(b_data[3] > 0, b_data, 0))  # alpha 0
    assert np.array_equal(mosaic[:, 10:, :50], a_data[:, 10:])


def test_manual_read_of_more_inputs_than_open_handles(tmp_path):
    import dask

    paths = [make_raster(tmp_path / f"m{n}.tif", count=1, seed=n)[0] for n in range(4)]
    with dask.config.set({"riomucho_dask.open-datasets": 2}):
        out = rmd.map_windows(runfuncs.manual_sum, paths, mode="manual_read", count=1,
                              dtype="float64")
        got = out.compute(scheduler="sync")
    want = sum(rasterio.open(p).read(1).astype("float64") for p in paths)
    assert np.array_equal(got[0], want)


def test_nan_nodata_travels_with_the_grid(tmp_path):
    a, _ = make_raster(tmp_path / "a.tif", count=1, dtype="float32", nodata=float("nan"))
    b, _ = make_raster(tmp_path / "b.tif", count=1, dtype="float32", nodata=float("nan"),
                       seed=2)
    out = rmd.map_windows(runfuncs.first_input, [a, b])
    with rasterio.open(rmd.to_raster(out, tmp_path / "out.tif")) as src:
        assert np.isnan(src.nodata)


def test_striped_input_onto_a_wider_grid_keeps_few_windows(tmp_path):
    striped, _ = make_raster(tmp_path / "striped.tif", count=1, height=600, width=200,
                             tiled=False, block=4)
    finer = rmd.Grid(CRS, from_origin(500000.0, 4200000.0, 5.0, 5.0), width=400, height=1200)
    out = rmd.map_windows(runfuncs.first_input, [striped], grid=finer)
    assert out.numblocks == (1, 3, 1)  # a grid from no file: windows of 512 x 512


def test_overlap_keeps_an_arrays_mask(tmp_path):
    path, _ = make_raster(tmp_path / "n.tif", count=1, nodata=0)
    seen = []

    def look(data, window, ij, g):
        seen.append(data[0])
        return data[0]

    rmd.map_windows(look, [rmd.open_raster(path, masked=True)], overlap=1).compute(
        scheduler="sync")
    assert all(isinstance(d, np.ma.MaskedArray) for d in seen)
    assert sum(int(d.mask.sum()) for d in seen) > 0


def test_warped_vrts_are_bounded(tmp_path):
    import dask

    from riomucho_dask.read import handles

    path, _ = make_raster(tmp_path / "a.tif", count=1)
    with dask.config.set({"riomucho_dask.open-datasets": 3}):
        for k in range(10):
            grid = rmd.Grid(CRS, from_origin(500000.0, 4200000.0, 5.0 + k, 5.0 + k), 20, 20)
            handles.get_warped(path, grid, Resampling.nearest)
        assert len(handles._cache().warped) == 3
