"""Band statistics written in the same pass (``to_raster(..., stats=True)``,
write/statistics.py).

Each output is read back by rasterio and its ``STATISTICS_*`` band tags
compared with numpy's statistics of the pixels GDAL reads from the file (valid
where ``read_masks`` says so, NaN left out): minimum and maximum exactly, mean
and population standard deviation to float64 rounding.  Routes: GDAL's
dataset (strips; a COG through CreateCopy), tiles encoded in the tasks (tiled
GeoTIFF, COG) and parts uploaded from a cluster's workers; the run function
is counted so it runs once per window; no side-car file is left.
"""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rio_cogeo.cogeo import cog_validate

import riomucho_dask as rmd
from riomucho_dask.cli import mucho
from riomucho_dask.errors import ProfileError
from riomucho_dask.write.kernels.statistics import measure

from . import runfuncs

#: Output layouts and the route each takes.
LAYOUTS = {
    "strips": {},  # GDAL's dataset
    "tiled": {"tiled": True, "blockxsize": 64, "blockysize": 64, "compress": "deflate"},
    "cog": {"driver": "COG", "blocksize": 64, "compress": "deflate"},
}


def nan_where_low(data, window, ij, g):
    """Band 1 as float32, NaN where it is below 0 (no nodata)."""
    band = data[0][:1].astype("float32")
    return np.where(band < 0, np.float32(np.nan), band)


def assert_stats(path) -> list[np.ndarray]:
    """``path``'s STATISTICS_* band tags are numpy's statistics of its valid
    pixels, as GDAL reads them; returns each band's valid pixels."""
    found = []
    with rasterio.open(path) as src:
        for band in range(1, src.count + 1):
            pixels = src.read(band)
            valid = src.read_masks(band) > 0
            if pixels.dtype.kind == "f":
                valid &= ~np.isnan(pixels)
            values = pixels[valid]
            found.append(values)
            tags = src.tags(band)
            percent = "%.4g" % (100.0 * values.size / pixels.size)
            if not values.size:
                assert tags == {"STATISTICS_VALID_PERCENT": "0"}
                continue
            wide = values.astype("float64")
            assert float(tags["STATISTICS_MINIMUM"]) == values.min()
            assert float(tags["STATISTICS_MAXIMUM"]) == values.max()
            assert float(tags["STATISTICS_MEAN"]) == pytest.approx(wide.mean(), rel=1e-12)
            assert float(tags["STATISTICS_STDDEV"]) == pytest.approx(wide.std(), rel=1e-12)
            assert tags["STATISTICS_VALID_PERCENT"] == percent
            # GDAL's own GetStatistics reads them as they are (nothing computed)
            (stats,) = src.stats(indexes=band, approx=False)
            assert (stats.min, stats.max) == (values.min(), values.max())
            assert stats.mean == pytest.approx(wide.mean(), rel=1e-12)
    return found


def only(directory, *names) -> None:
    """``directory`` holds ``names`` and nothing else: no ``.aux.xml``, no temporary."""
    assert sorted(p.name for p in Path(directory).iterdir()) == sorted(names)


def check_route(written, layout) -> None:
    if layout == "cog":
        valid, errors, _ = cog_validate(written)
        assert valid and not errors, errors


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_stats_with_nodata_every_route(raster, tmp_path, scheduler, layout):
    """Nodata pixels left out; the run function runs once per window."""
    path, data = raster(count=1, height=150, width=170, block=32, dtype="uint16", nodata=0)
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    # (a float32 result keeps no uint16 nodata of like's: given here)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, nodata=0,
                            scheduler=scheduler, stats=True, **LAYOUTS[layout])
    per_window = runfuncs.calls_per_window(calls)
    assert len(per_window) == 5 * 6 and set(per_window.values()) == {1}
    (values,) = assert_stats(written)
    expected = data[0][data[0] != 0].astype("float32")
    assert values.size == expected.size < data[0].size - 14
    with rasterio.open(written) as src:
        assert float(src.tags(1)["STATISTICS_MINIMUM"]) == expected.min()
        assert float(src.tags(1)["STATISTICS_MAXIMUM"]) == expected.max()
        assert src.nodata == 0
    only(tmp_path, "in.tif", "out.tif", "calls")
    check_route(written, layout)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_stats_with_an_internal_mask_every_route(raster, tmp_path, scheduler, layout):
    """Masked results without nodata: the pixels under the internal mask are left out."""
    path, _ = raster(count=1, height=150, width=170, block=32, dtype="float32")
    out = rmd.map_windows(runfuncs.masks_high, [path], global_args={"above": 0.5})
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler,
                            stats=True, **LAYOUTS[layout])
    with rasterio.open(written) as src:
        assert src.nodata is None
        assert (src.read_masks(1) == 0).any()  # (there is a mask)
    (values,) = assert_stats(written)
    assert values.max() <= 0.5
    only(tmp_path, "in.tif", "out.tif")
    check_route(written, layout)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_stats_of_floats_leave_nan_out_every_route(raster, tmp_path, scheduler, layout):
    path, data = raster(count=1, height=150, width=170, block=32, dtype="float32")
    out = rmd.map_windows(nan_where_low, [path])
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler,
                            stats=True, **LAYOUTS[layout])
    (values,) = assert_stats(written)
    kept = data[0][data[0] >= 0]
    assert values.size == kept.size and 0 < kept.size < data[0].size
    assert values.min() == kept.min()
    only(tmp_path, "in.tif", "out.tif")
    check_route(written, layout)


@pytest.mark.parametrize("layout", ["tiled", "cog"])
def test_gdal_route_of_tiled_outputs(raster, tmp_path, layout):
    """With encode-tiles off (GDAL writes a tiled GeoTIFF, or copies a COG from
    one), the statistics are the same, and in the file."""
    path, _ = raster(count=3, height=130, width=100, block=32, dtype="int16", nodata=-1000)
    out = rmd.map_windows(runfuncs.passthrough, [path])
    with dask.config.set({"riomucho_dask.encode-tiles": False}):
        gdal = rmd.to_raster(out, tmp_path / "gdal.tif", like=path, stats=True,
                             **LAYOUTS[layout])
    encoded = rmd.to_raster(out, tmp_path / "encoded.tif", like=path, stats=True,
                            **LAYOUTS[layout])
    for one, other in zip(assert_stats(gdal), assert_stats(encoded)):
        assert np.array_equal(one, other)
    only(tmp_path, "in.tif", "gdal.tif", "encoded.tif")
    check_route(gdal, layout)


def test_same_statistics_on_every_scheduler(raster, tmp_path, scheduler):
    """The statistics are added up in the blocks' order, not as they arrive: the
    same to the last digit whatever the scheduler (a COG, whose layout is fixed,
    the same to the last byte)."""
    path, _ = raster(count=2, height=150, width=170, block=32, dtype="float32")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    for layout in LAYOUTS:
        here = rmd.to_raster(out, tmp_path / f"{layout}-sync.tif", like=path, stats=True,
                             scheduler="sync", **LAYOUTS[layout])
        there = rmd.to_raster(out, tmp_path / f"{layout}.tif", like=path, stats=True,
                              scheduler=scheduler, **LAYOUTS[layout])
        with rasterio.open(here) as one, rasterio.open(there) as other:
            assert one.tags(1) == other.tags(1) and one.tags(2) == other.tags(2)
        if layout == "cog":
            assert Path(here).read_bytes() == Path(there).read_bytes()


def test_exact_against_numpy():
    """Blocks added pairwise (Chan et al.): as numpy on the whole array."""
    rng = np.random.default_rng(3)
    data = (rng.normal(1e6, 3.0, size=(2, 300, 200))).astype("float64")
    data[1, :50] = -9999.0
    parts = [measure(data[:, r:r + 37, c:c + 23], None, -9999.0)
             for r in range(0, 300, 37) for c in range(0, 200, 23)]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    for band in range(2):
        values = data[band][data[band] != -9999.0]
        assert total.count[band] == values.size
        assert (total.minimum[band], total.maximum[band]) == (values.min(), values.max())
        assert total.mean[band] == pytest.approx(values.mean(), rel=1e-14)
        std = float(total.band_tags()[band]["STATISTICS_STDDEV"])
        assert std == pytest.approx(values.std(), rel=1e-10)


def test_integers_keep_their_digits_and_empty_bands(raster, tmp_path):
    """int32 extremes written as integers; a band without a valid pixel gets
    only STATISTICS_VALID_PERCENT=0, as GDAL writes it."""
    path, _ = raster(count=1, height=64, width=64, block=32, dtype="uint8")
    big = np.full((2, 64, 64), 2**31 - 1, "int32")
    big[0, 0, 0] = -(2**31)
    big[1] = -1
    profile = {"driver": "GTiff", "count": 2, "dtype": "int32", "width": 64, "height": 64,
               "nodata": -1}
    written = rmd.to_raster(big, tmp_path / "out.tif", profile, like=path, stats=True)
    with rasterio.open(written) as src:
        assert src.tags(1)["STATISTICS_MINIMUM"] == str(-(2**31))
        assert src.tags(1)["STATISTICS_MAXIMUM"] == str(2**31 - 1)
        assert src.tags(2) == {"STATISTICS_VALID_PERCENT": "0"}
    assert_stats(written)


def test_with_other_metadata_and_compute_false(raster, tmp_path, scheduler):
    """Two writes computed together with rmd.compute: each with its own statistics
    (and band tags kept beside them); the run function once per window."""
    path, _ = raster(count=1, height=96, width=128, block=32, dtype="uint16")
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    w1 = rmd.to_raster(out, tmp_path / "a.tif", like=path, stats=True, compute=False,
                       band_tags=[{"kind": "copy"}], **LAYOUTS["cog"])
    w2 = rmd.to_raster(out * 2, tmp_path / "b.tif", like=path, stats=True, compute=False)
    rmd.compute(w1, w2, scheduler=scheduler)
    assert set(runfuncs.calls_per_window(calls).values()) == {1}
    (a,), (b,) = assert_stats(tmp_path / "a.tif"), assert_stats(tmp_path / "b.tif")
    assert np.array_equal(a * 2, b)
    with rasterio.open(tmp_path / "a.tif") as src:
        assert src.tags(1)["kind"] == "copy"


def test_open_dataset(raster, tmp_path):
    path, _ = raster(count=2, height=64, width=64, block=32, dtype="float32", nodata=-5)
    with rasterio.open(path) as src:
        profile = src.profile
    with rasterio.open(tmp_path / "open.tif", "w", **profile) as dst:
        rmd.to_raster(rmd.open_raster(path), dst, stats=True)
    assert_stats(tmp_path / "open.tif")
    only(tmp_path, "in.tif", "open.tif")


def test_uploaded_from_the_workers(raster, s3, tmp_path, cluster_client):
    """A COG uploaded by a cluster's workers as parts carries the statistics too."""
    path, _ = raster(count=1, height=300, width=260, block=32, dtype="uint8", nodata=0)
    out = rmd.map_windows(runfuncs.passthrough, [path])
    with s3.env():
        rmd.to_raster(out, f"s3://{s3.bucket}/out.tif", like=path, scheduler=cluster_client,
                      stats=True, **LAYOUTS["cog"])
    got = s3.get("out.tif", tmp_path / "got.tif")
    local = rmd.to_raster(out, tmp_path / "local.tif", like=path, stats=True, **LAYOUTS["cog"])
    assert Path(got).read_bytes() == Path(local).read_bytes()
    assert_stats(got)
    assert s3.keys() == ["out.tif"]


def _never(data, window, ij, g):
    raise AssertionError("computed")


def test_refused_before_computing(raster, tmp_path):
    path, _ = raster(count=1, height=64, width=64, block=32)
    out = rmd.map_windows(_never, [path])
    with pytest.raises(ProfileError, match="stats=True.*GeoTIFF and COG.*HFA"):
        rmd.to_raster(out, tmp_path / "out.img", like=path, stats=True)
    with pytest.raises(ProfileError, match="stats=True cannot be combined with resume"):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, stats=True, resume=True,
                      **LAYOUTS["tiled"])
    with pytest.raises(ProfileError, match="real numbers"):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, stats=True, dtype="complex64")
    only(tmp_path, "in.tif")


@pytest.mark.parametrize("windows", ["blocks", "subset"])
def test_shim_option(raster, tmp_path, windows):
    path, _ = raster(count=2, height=96, width=128, block=32, dtype="uint16")
    with rasterio.open(path) as src:
        options = dict(src.profile, stats=True)
        chosen = [(w, ij) for ij, w in src.block_windows()]
    kept = dict(options)
    if windows == "subset":
        with rmd.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.passthrough,
                          windows=chosen[::2], options=options) as rm:
            with pytest.raises(ProfileError, match="stats.*windows that form a grid"):
                rm.run(1)
        only(tmp_path, "in.tif")
        return
    with rmd.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.passthrough,
                      windows=chosen, options=options) as rm:
        rm.run(2)
    assert options == kept
    assert len(assert_stats(tmp_path / "out.tif")) == 2
    only(tmp_path, "in.tif", "out.tif")


def test_cli_stats(raster, tmp_path):
    path, data = raster(count=2, height=64, width=64, block=32, nodata=0)
    target = tmp_path / "out.tif"
    result = CliRunner().invoke(mucho, ["run", "tests.runfuncs:passthrough", path, str(target),
                                        "--driver", "COG", "--stats"])
    assert result.exit_code == 0, result.output
    assert [values.size for values in assert_stats(target)] == [(b != 0).sum() for b in data]
    only(tmp_path, "in.tif", "out.tif")
