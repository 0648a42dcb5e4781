"""Internal overviews of a tiled GeoTIFF, made in the same graph
(``to_raster(..., overviews=..., overview_resampling=...)``).

Every output is checked against GDAL itself: the full resolution read back
from our file is written again by rasterio into a tiled GeoTIFF of the same
layout, GDAL's ``BuildOverviews`` makes that file's overviews, and each of
our levels must equal GDAL's, size and pixels (NaN where NaN).  The run
function is counted: the overviews cost no second run, and the output is
never read back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.enums import Resampling
from rio_cogeo.cogeo import cog_validate

import riomucho_dask as rmd
from riomucho_dask.cli import mucho
from riomucho_dask.errors import ProfileError, StoreError
from riomucho_dask.write.kernels import resample, resample_gdal

from . import runfuncs

TILED = {"tiled": True, "blockxsize": 32, "blockysize": 32, "compress": "deflate"}


def levels_of(path) -> list[np.ndarray]:
    """Every level of ``path``, full resolution first."""
    with rasterio.open(path) as src:
        count = len(src.overviews(1))
    out = []
    for level in range(count + 1):
        options = {} if level == 0 else {"overview_level": level - 1}
        with rasterio.open(path, **options) as src:
            out.append(src.read())
    return out


def gdal_levels(path, tmp_path, factors, resampling) -> list[np.ndarray]:
    """GDAL's levels for ``path``'s full resolution: written again by rasterio,
    overviews by ``BuildOverviews``."""
    reference = tmp_path / "gdal-reference.tif"
    with rasterio.open(path) as src:
        profile = src.profile
        data = src.read()
    with rasterio.open(reference, "w", **profile) as dst:
        dst.write(data)
    with rasterio.open(reference, "r+") as dst:
        dst.build_overviews(list(factors), Resampling[resampling])
    levels = levels_of(reference)
    reference.unlink()
    return levels


def assert_gdal_levels(path, tmp_path, factors, resampling) -> None:
    ours = levels_of(path)
    theirs = gdal_levels(path, tmp_path, factors, resampling)
    assert len(ours) == len(theirs) == len(factors) + 1
    for level, (one, other) in enumerate(zip(ours, theirs)):
        assert one.shape == other.shape, level
        assert np.array_equal(one, other, equal_nan=one.dtype.kind == "f"), (
            f"level {level}: {int((one != other).sum())} pixels differ")


def assert_gdal_masked_levels(path, tmp_path, factors, resampling) -> None:
    """As :func:`assert_gdal_levels` for a file with an internal mask: the
    reference is written with the same pixels and mask; masks compared too."""
    reference = tmp_path / "reference.tif"
    with rasterio.open(path) as src:
        profile, data, mask = src.profile, src.read(), src.read_masks(1)
        count = len(src.overviews(1))
    assert count == len(factors)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(reference, "w", **profile) as dst:
            dst.write(data)
            dst.write_mask(mask)
        with rasterio.open(reference, "r+") as dst:
            dst.build_overviews(list(factors), Resampling[resampling])
    for level in range(count):
        with rasterio.open(path, overview_level=level) as one, \
                rasterio.open(reference, overview_level=level) as other:
            assert np.array_equal(one.read_masks(1), other.read_masks(1)), level
            assert np.array_equal(one.read(), other.read(), equal_nan=True), level
    reference.unlink()


@pytest.mark.parametrize("resampling", ["nearest", "average"])
def test_levels_equal_gdal_every_scheduler(raster, tmp_path, scheduler, resampling):
    """Odd sizes (GDAL rounds level sizes up, with fractional ratios), nodata,
    two bands; the run function runs once per window."""
    path, _ = raster(count=1, height=301, width=257, block=32, dtype="int16", nodata=-1000)
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, nodata=-1000,
                            scheduler=scheduler, overviews=[2, 4, 8],
                            overview_resampling=resampling, **TILED)
    per_window = runfuncs.calls_per_window(calls)
    assert len(per_window) == 10 * 9 and set(per_window.values()) == {1}
    with rasterio.open(written) as src:
        assert src.overviews(1) == [2, 4, 8]
        assert src.nodata == -1000 and src.dtypes == ("float32",)
        assert (src.read(1) == -1000).any()
    assert_gdal_levels(written, tmp_path, [2, 4, 8], resampling)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
@pytest.mark.parametrize("resampling", ["nearest", "average"])
def test_levels_equal_gdal_every_dtype(raster, tmp_path, dtype, resampling):
    path, _ = raster(count=2, height=97, width=131, block=32, dtype=dtype)
    out = rmd.map_windows(runfuncs.passthrough, [path])
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, overviews=[2, 4],
                            overview_resampling=resampling, **TILED)
    assert_gdal_levels(written, tmp_path, [2, 4], resampling)


def test_mode_on_a_class_raster(tmp_path):
    """Classes stay classes: the most frequent class, as GDAL picks it."""
    rng = np.random.default_rng(5)
    classes = rng.integers(0, 6, size=(1, 203, 187)).astype("uint8")
    classes[:, 40:120, 30:90] = 3  # a large patch: ties and runs both
    profile = {"driver": "GTiff", "crs": "EPSG:32631", "nodata": 0,
               "transform": rasterio.transform.from_origin(0, 0, 30, 30)}
    written = rmd.to_raster(_dask(classes), tmp_path / "c.tif", profile, overviews=[2, 4, 8],
                            overview_resampling="mode", **TILED)
    assert_gdal_levels(written, tmp_path, [2, 4, 8], "mode")
    assert set(np.unique(levels_of(written)[3])) <= set(range(6))


def _dask(data):
    import dask.array as da

    return da.from_array(data, chunks=(data.shape[0], 64, 64))


def test_float_nan_and_nodata(tmp_path):
    """NaN and nodata pixels in the average, as GDAL treats them."""
    rng = np.random.default_rng(2)
    data = rng.normal(size=(1, 150, 133)).astype("float32")
    data[:, 10:14, 20:60] = np.nan
    data[:, 50:90, 50:52] = -9999.0
    data[:, 100:104, 100:104] = -9999.0  # whole 2 x 2 blocks of nodata
    profile = {"driver": "GTiff", "crs": "EPSG:32631", "nodata": -9999.0,
               "transform": rasterio.transform.from_origin(0, 0, 30, 30)}
    written = rmd.to_raster(_dask(data), tmp_path / "f.tif", profile, overviews=[2, 4, 8],
                            overview_resampling="average", **TILED)
    assert_gdal_levels(written, tmp_path, [2, 4, 8], "average")


def test_auto_goes_down_to_one_tile(raster, tmp_path):
    path, _ = raster(count=1, height=300, width=170, block=32, dtype="uint16")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, overviews="auto", **TILED)
    factors = resample.auto_factors(300, 170, 32)
    assert factors == [2, 4, 8, 16]
    with rasterio.open(written) as src:
        assert len(src.overviews(1)) == 4
    last = levels_of(written)[-1]
    assert last.shape[1] <= 32 and last.shape[2] <= 32
    assert_gdal_levels(written, tmp_path, factors, "nearest")


def test_band_interleaved_and_uncompressed(raster, tmp_path):
    path, _ = raster(count=3, height=100, width=90, block=32, dtype="uint16")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, overviews=[2, 4],
                            overview_resampling="average", tiled=True, blockxsize=32,
                            blockysize=32, interleave="band")
    assert_gdal_levels(written, tmp_path, [2, 4], "average")


def test_cog_overview_choices(raster, tmp_path):
    """A COG takes the same keywords: 'none', a count as [2, 4], a resampling."""
    path, _ = raster(count=1, height=300, width=260, block=32, dtype="uint8")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    cog = {"driver": "COG", "blocksize": 64, "compress": "deflate"}
    none = rmd.to_raster(out, tmp_path / "none.tif", like=path, overviews="none", **cog)
    two = rmd.to_raster(out, tmp_path / "two.tif", like=path, overviews=[2, 4],
                        overview_resampling="average", **cog)
    for written, count in ((none, 0), (two, 2)):
        with rasterio.open(written) as src:
            assert len(src.overviews(1)) == count
        valid, errors, _ = cog_validate(written)
        assert valid and not errors
    with pytest.raises(ProfileError, match=r"\[2, 4, 8, \.\.\.\]"):
        rmd.to_raster(out, tmp_path / "bad.tif", like=path, overviews=[3, 9], **cog)


def test_refused_before_anything_runs(raster, tmp_path):
    """Strips, other drivers, unknown resamplings and bad factors: a
    ProfileError naming what is wrong, nothing computed, nothing written."""
    path, _ = raster(count=1, height=64, width=64, block=32)
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          dtype="float32")
    cases = [
        ({"overviews": [2, 4], "tiled": False}, "tiled=True"),  # strips
        ({"overviews": [2], "driver": "ENVI"}, "GeoTIFF or COG"),
        ({"overviews": [2], "overview_resampling": "gauss", **TILED}, "gauss"),
        ({"overviews": [4, 2], **TILED}, "increasing"),
        ({"overviews": [1], **TILED}, "at least 2"),
        ({"overviews": "some", **TILED}, "'auto', 'none'"),
    ]
    for options, message in cases:
        with pytest.raises(ProfileError, match=message):
            rmd.to_raster(out, tmp_path / "out.tif", like=path, **options)
    assert not list(calls.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls", "in.tif"]


def test_cli(raster, tmp_path):
    path, _ = raster(count=1, height=150, width=140, block=32, dtype="uint16")
    output = tmp_path / "out.tif"
    result = CliRunner().invoke(mucho, [
        "run", "tests.runfuncs:passthrough", path, str(output), "--co", "tiled=true",
        "--co", "blockxsize=32", "--co", "blockysize=32", "--overviews", "2,4",
        "--overview-resampling", "average"])
    assert result.exit_code == 0, result.output
    assert_gdal_levels(output, tmp_path, [2, 4], "average")
    result = CliRunner().invoke(mucho, ["run", "tests.runfuncs:passthrough", path,
                                        str(tmp_path / "x.tif"), "--overviews", "2,x"])
    assert result.exit_code == 2 and "factors such as 2,4,8" in result.output


def test_uploaded_from_the_workers(raster, s3, tmp_path, cluster_client):
    """A tiled GeoTIFF with overviews uploaded as parts by a cluster's workers
    is the file written locally, level for level."""
    path, _ = raster(count=1, height=300, width=260, block=32, dtype="uint16", nodata=0)
    out = rmd.map_windows(runfuncs.passthrough, [path])
    with s3.env():
        rmd.to_raster(out, f"s3://{s3.bucket}/out.tif", like=path, scheduler=cluster_client,
                      overviews=[2, 4, 8], overview_resampling="average", **TILED)
    got = s3.get("out.tif", tmp_path / "got.tif")
    local = rmd.to_raster(out, tmp_path / "local.tif", like=path, overviews=[2, 4, 8],
                          overview_resampling="average", **TILED)
    for one, other in zip(levels_of(got), levels_of(local)):
        assert np.array_equal(one, other)
    assert_gdal_levels(got, tmp_path, [2, 4, 8], "average")
    assert s3.keys() == ["out.tif"]
    assert Path(got).stat().st_size > 0


@pytest.mark.parametrize("resampling, interleave, declared", [
    *[(r, i, True) for r in ("nearest", "average", "mode") for i in ("pixel", "band")],
    # undeclared masks (a run function returning masked arrays): the same levels,
    # but for a band-interleaved file's average and mode, taken by GDAL from the
    # full resolution when it is masked, which the graph must know beforehand
    ("nearest", "pixel", False), ("average", "pixel", False), ("mode", "pixel", False),
    ("nearest", "band", False)])
def test_internal_mask_levels_equal_gdal(raster, tmp_path, resampling, interleave, declared):
    """Masked results without nodata: the levels' pixels and their masks as
    GDAL makes them for a GeoTIFF with an internal mask."""
    path, _ = raster(count=2, height=181, width=150, block=32, dtype="float32")
    out = rmd.map_windows(runfuncs.mask_low, [path], global_args={"threshold": 0.0},
                          masked=declared)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, overviews=[2, 4, 8],
                            overview_resampling=resampling, interleave=interleave, **TILED)
    with rasterio.open(written) as src:
        assert src.nodata is None and (src.read_masks(1) == 0).any()
    assert_gdal_masked_levels(written, tmp_path, [2, 4, 8], resampling)


@pytest.mark.parametrize("resampling", ["bilinear", "cubic", "cubic_spline", "lanczos"])
@pytest.mark.parametrize("dtype, nodata", [("float32", None), ("int16", None),
                                           ("float32", -9999.0), ("uint8", 0)])
@pytest.mark.parametrize("interleave", ["pixel", "band"])
def test_gdal_resamplings_chunk_by_chunk(tmp_path, resampling, dtype, nodata, interleave):
    """GDAL's own kernels, chunk by chunk from the pieces of the level above
    (odd sizes, fractional ratios): GDAL's BuildOverviews levels."""
    rng = np.random.default_rng(7)
    data = (rng.normal(100, 40, size=(2, 301, 257))).clip(1, 250).astype(dtype)
    if nodata is not None:
        data[:, 100:140, 60:63] = nodata
    profile = {"driver": "GTiff", "crs": "EPSG:32631", "nodata": nodata,
               "transform": rasterio.transform.from_origin(0, 0, 30, 30)}
    written = rmd.to_raster(_dask(data), tmp_path / "g.tif", profile, overviews=[2, 4, 8],
                            overview_resampling=resampling, interleave=interleave, **TILED)
    assert_gdal_levels(written, tmp_path, [2, 4, 8], resampling)


@pytest.mark.parametrize("resampling", ["bilinear", "lanczos"])
def test_gdal_resamplings_of_one_pixel_chunks(tmp_path, resampling):
    """Chunks a pixel wide and high at a ratio below 2: the last row and column
    of 257 -> 129 -> 65 in tiles of 32, and every pixel alone of 37 x 45 -> 19 x 23
    and of 37 x 1 -> 19 x 1.  rasterio gives GDAL their window's integer size, the
    buffer's, for which GDAL's MEM driver copies a pixel instead of resampling:
    they are read widened."""
    rng = np.random.default_rng(3)
    data = rng.normal(100, 40, size=(2, 257, 257)).astype("float32")
    profile = {"driver": "GTiff", "crs": "EPSG:32631",
               "transform": rasterio.transform.from_origin(0, 0, 30, 30)}
    written = rmd.to_raster(_dask(data), tmp_path / "one.tif", profile, overviews=[2, 4],
                            overview_resampling=resampling, **TILED)
    assert_gdal_levels(written, tmp_path, [2, 4], resampling)
    for width, level_width in ((45, 23), (1, 1)):
        small, shape, level = data[:, :37, :width], (37, width), (19, level_width)
        whole = resample_gdal.resample(small, 0, 0, (0, 19), (0, level_width), shape, level,
                                       resampling)
        for i, j in np.ndindex(level):
            rows = resample_gdal.source_range(i, i + 1, 37, 19, resampling)
            cols = resample_gdal.source_range(j, j + 1, width, level_width, resampling)
            alone = resample_gdal.resample(small[:, slice(*rows), slice(*cols)], rows[0],
                                           cols[0], (i, i + 1), (j, j + 1), shape, level,
                                           resampling)
            assert np.array_equal(alone[:, 0, 0], whole[:, i, j]), (width, i, j)


def test_gdal_resampling_of_an_internal_mask_is_refused(raster, tmp_path):
    """GDAL's own kernels are not given masks: a masked output without nodata
    says to give it one, and nothing is left at the output path."""
    path, _ = raster(count=1, height=100, width=90, block=32, dtype="float32")
    out = rmd.map_windows(runfuncs.mask_low, [path], global_args={"threshold": 0.0})
    with pytest.raises(StoreError, match="nodata="):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, overviews=[2],
                      overview_resampling="cubic", **TILED)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_tiles_asked_of_a_striped_like(raster, tmp_path):
    """like= a striped GeoTIFF (GDAL's default layout) and tiled=True: GDAL's
    default tiles, not the like's strips as tiles (999 x 1 failed after computing)."""
    path, _ = raster(count=1, height=300, width=270, tiled=False, dtype="uint16", nodata=0)
    out = rmd.map_windows(runfuncs.passthrough, [path])
    plain = rmd.to_raster(out, tmp_path / "plain.tif", like=path, tiled=True)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, tiled=True,
                            compress="deflate", overviews="auto")
    for one in (plain, written):
        with rasterio.open(one) as src:
            assert src.block_shapes == [(256, 256)] and src.nodata == 0
    assert_gdal_levels(written, tmp_path, [2], "nearest")


@pytest.mark.parametrize("shape, factors, resampling", [
    ((300, 300), [2, 4, 8], "nearest"), ((200, 3), [2, 4, 8, 16], "average"),
    ((200, 3), [2, 4, 8, 16], "mode"), ((200, 3), [2, 4, 8, 16], "cubic")])
def test_one_band_takes_gdals_band_by_band_rules(tmp_path, shape, factors, resampling):
    """A one-band file's levels come from where GDAL's band-by-band path takes
    them (nearest: the full resolution), even pixel-interleaved."""
    rng = np.random.default_rng(11)
    data = rng.normal(100, 40, size=(1, *shape)).astype("float32")
    profile = {"driver": "GTiff", "crs": "EPSG:32631",
               "transform": rasterio.transform.from_origin(0, 0, 30, 30)}
    written = rmd.to_raster(_dask(data), tmp_path / "one.tif", profile, overviews=factors,
                            overview_resampling=resampling, interleave="pixel", **TILED)
    assert_gdal_levels(written, tmp_path, factors, resampling)


@pytest.mark.parametrize("count", [1, 3])
def test_masked_float_average_in_small_chunks(tmp_path, count):
    """A declared masked output: its chunks without a masked pixel are averaged
    as GDAL averages around a mask (float64 weights, not its 2 x 2 float32
    sums), so the level does not depend on the chunks."""
    import dask.array as da

    rng = np.random.default_rng(3)
    data = (rng.random((count, 300, 300)) * 100).astype("float32")
    mask = np.zeros(data.shape, bool)
    mask[:, 75:150, 60:150] = True
    mask[:, :, -7:] = True
    array = da.from_array(np.ma.MaskedArray(data, mask), chunks=(count, 32, 32))
    profile = {"driver": "GTiff", "crs": "EPSG:32631",
               "transform": rasterio.transform.from_origin(0, 0, 30, 30)}
    written = rmd.to_raster(array, tmp_path / "m.tif", profile, overviews=[2, 4, 8],
                            overview_resampling="average", **TILED)
    assert_gdal_masked_levels(written, tmp_path, [2, 4, 8], "average")


def test_options_elsewhere(raster, tmp_path):
    """The COG driver's own OVERVIEWS values pass through; a profile's (the
    shim's options) are taken as the keywords; a resampling without overviews
    on a GeoTIFF is refused; the CLI takes GDAL's resamplings."""
    path, _ = raster(count=1, height=150, width=140, block=32, dtype="uint16")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    cog = rmd.to_raster(out, tmp_path / "cog.tif", like=path, driver="COG", blocksize=64,
                        overviews="ignore_existing")
    with rasterio.open(cog) as src:
        assert len(src.overviews(1)) == 2
    with pytest.raises(ProfileError, match="without overviews="):
        rmd.to_raster(out, tmp_path / "x.tif", like=path, overview_resampling="average",
                      **TILED)
    with rasterio.open(path) as src:
        options = dict(src.profile, overviews=[2, 4], overview_resampling="average",
                       compress="deflate")
    with rmd.RioMucho([path], str(tmp_path / "shim.tif"), runfuncs.passthrough,
                      options=options) as rm:
        rm.run(2)
    assert_gdal_levels(tmp_path / "shim.tif", tmp_path, [2, 4], "average")
    result = CliRunner().invoke(mucho, [
        "run", "tests.runfuncs:passthrough", path, str(tmp_path / "cli.tif"),
        "--co", "tiled=true", "--co", "blockxsize=32", "--co", "blockysize=32",
        "--overviews", "auto", "--overview-resampling", "cubic"])
    assert result.exit_code == 0, result.output
    assert_gdal_levels(tmp_path / "cli.tif", tmp_path, [2, 4, 8], "cubic")


def test_declared_mask_with_nothing_masked(raster, tmp_path):
    """An output said to be masked whose pixels all turn out valid still has
    its (all-valid) internal mask: its levels were made as GDAL makes a masked
    file's, and a file without a mask would get others."""
    path, _ = raster(count=1, height=300, width=260, block=64, dtype="float32")
    out = rmd.map_windows(runfuncs.passthrough, [path], masked=True)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, overviews="auto",
                            overview_resampling="average", **TILED)
    with rasterio.open(written) as src:
        assert src.mask_flag_enums == ([rasterio.enums.MaskFlags.per_dataset],)
        assert src.read_masks(1).all()
    assert_gdal_masked_levels(written, tmp_path, resample.auto_factors(300, 260, 32),
                              "average")


def test_keywords_and_profiles(raster, tmp_path):
    """Keywords win over a profile's keys; a COG's list in a profile sets its
    count; GDAL's and rasterio's names of cubic spline; a COG's OVERVIEWS only
    takes the driver's values; a non-grid shim run refuses overviews."""
    path, _ = raster(count=1, height=150, width=140, block=32, dtype="uint16")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    won = rmd.to_raster(out, tmp_path / "won.tif", {"overviews": [2]}, like=path,
                        overviews=[2, 4], **TILED)
    cog = rmd.to_raster(out, tmp_path / "cog.tif", {"overviews": [2]}, like=path,
                        driver="COG", blocksize=32)
    spline = rmd.to_raster(out, tmp_path / "spline.tif", like=path, driver="COG",
                           blocksize=32, overviews="auto", overview_resampling="cubic_spline")
    for written, count in ((won, 2), (cog, 1), (spline, 3)):
        with rasterio.open(written) as src:
            assert len(src.overviews(1)) == count
    with pytest.raises(ProfileError, match="'auto', 'none'"):
        rmd.to_raster(out, tmp_path / "bad.tif", like=path, driver="COG", overviews="2,4")
    with rasterio.open(path) as src:
        options = dict(src.profile, overviews="auto")
        chosen = [(w, ij) for ij, w in src.block_windows()][::2]
    with rmd.RioMucho([path], str(tmp_path / "shim.tif"), runfuncs.passthrough,
                      windows=chosen, options=options) as rm:
        with pytest.raises(ProfileError, match="windows that form a grid"):
            rm.run(1)


def test_deep_nearest_levels_hold_no_full_resolution_chunk():
    """A one-band file's nearest levels all come from the full resolution (as
    GDAL takes them): the deeper ones are made from the few pixels each chunk
    gives, so the deepest level (one tile, over the whole raster) does not keep
    every full-resolution chunk in memory."""
    import dask.array as da

    from riomucho_dask.write.graph import encode
    from riomucho_dask.write.spec import layout

    array = da.zeros((1, 512, 512), "uint16", chunks=(1, 64, 64))
    profile = {"driver": "GTiff", "count": 1, "dtype": "uint16", "width": 512,
               "height": 512, "tiled": True, "blockxsize": 32, "blockysize": 32}
    levels = encode._gdal_levels(array, layout.for_profile(profile, [2, 4, 8, 16]))
    assert [level.shape[1:] for level in levels] == [(256, 256), (128, 128), (64, 64),
                                                     (32, 32)]
    assert levels[0].dask.dependencies[levels[0].name] == {array.name}  # (ratio 2)
    for level in levels[1:]:
        (picked,) = level.dask.dependencies[level.name]
        assert picked.startswith("overview-picked-")
        assert level.dask.dependencies[picked] == {array.name}
        assert len(level.dask.layers[picked]) == 64  # one small task a chunk
