"""Outputs people rely on: COG, nodata and masks, BigTIFF, overwrite, and a property test."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.windows import Window
from rio_cogeo.cogeo import cog_validate

import riomucho_dask as rmd
from riomucho_dask.write.spec.profile import build_profile
from riomucho_dask.write.writers import cog

from . import runfuncs
from .conftest import assert_same_raster, make_raster, serial_reference


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_cog_output(raster, tmp_path, scheduler, dtype):
    path, data = raster(count=2, height=600, width=700, block=64, dtype=dtype)
    out = rmd.map_windows(runfuncs.passthrough, [path])
    target = tmp_path / "cog.tif"
    written = rmd.to_raster(out, target, like=path, driver="COG", compress="deflate",
                            blocksize=128, scheduler=scheduler)
    valid, errors, _warnings = cog_validate(written)
    assert valid, errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.tif", "in.tif"]  # no leftovers
    ref = serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif")
    assert_same_raster(written, ref)
    with rasterio.open(written) as src:
        assert src.overviews(1) == [2, 4, 8]  # down to one 128 px block
        assert src.block_shapes[0] == (128, 128)
        assert src.compression.value.lower() == "deflate"
        overview = src.read(1, out_shape=(300, 350))  # the 2x overview
    full = data[0]
    if dtype == "uint8":  # nearest: overview pixels are input pixels
        assert np.isin(overview, full).all()
    else:  # average of 2 x 2 blocks
        means = full.reshape(300, 2, 350, 2).astype("float64").mean(axis=(1, 3))
        assert np.allclose(overview, means, atol=1e-3)


def test_cog_resampling_selectable(raster, tmp_path):
    path, data = raster(count=1, height=512, width=512, block=64, dtype="uint16")
    target = rmd.to_raster(rmd.open_raster(path), tmp_path / "cog.tif", like=path, driver="COG",
                           blocksize=128, overview_resampling="average")
    with rasterio.open(target) as src:
        overview = src.read(1, out_shape=(256, 256))
    means = data[0].reshape(256, 2, 256, 2).astype("float64").mean(axis=(1, 3))
    assert np.abs(overview.astype("float64") - means).max() <= 1
    assert cog_validate(target)[0]


def test_masked_pixels_become_nodata(raster, tmp_path, scheduler):
    path, data = raster(dtype="int16", nodata=-9999)
    threshold = int(np.median(data[0]))
    out = rmd.map_windows(runfuncs.mask_low, [path], global_args={"threshold": threshold})
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    expected = np.where(data[:1] < threshold, -9999, data)
    with rasterio.open(written) as src:
        assert src.nodata == -9999
        assert np.array_equal(src.read(), expected)


def test_masked_pixels_without_nodata_go_to_internal_mask(raster, tmp_path, scheduler):
    path, data = raster(dtype="uint16", block=32)
    # only the right half is ever masked, so some windows arrive unmasked before
    # the first masked one (the mask must still say "valid" for them)
    threshold = int(np.percentile(data[0], 30))
    g = {"threshold": threshold}
    out = rmd.map_windows(runfuncs.mask_low, [path], global_args=g)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    masked = data[0] < threshold
    with rasterio.open(written) as src:
        assert src.nodata is None
        assert [flag.name for flag in src.mask_flag_enums[0]] == ["per_dataset"]
        assert np.array_equal(src.read_masks(1) == 0, masked)
        assert np.array_equal(src.read()[:, ~masked], data[:, ~masked])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]  # mask inside


def test_float_nan_written_as_is(raster, tmp_path):
    path, data = raster(dtype="float32", nodata=float("nan"))
    assert np.isnan(data).any()
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path)
    with rasterio.open(written) as src:
        assert np.isnan(src.nodata)
        assert np.array_equal(src.read(), data, equal_nan=True)


def test_bigtiff_defaults(raster, tmp_path):
    path, _ = raster()
    arr = rmd.open_raster(path)
    assert build_profile(arr, None, path, {"compress": "deflate"})["bigtiff"] == "if_safer"
    assert "bigtiff" not in build_profile(arr, None, path, {})
    small = rmd.to_raster(arr, tmp_path / "small.tif", like=path, compress="deflate")
    forced = rmd.to_raster(arr, tmp_path / "big.tif", like=path, compress="deflate",
                           BIGTIFF="YES")
    assert Path(small).read_bytes()[:4] == b"II*\x00"  # classic TIFF while it is safe
    assert Path(forced).read_bytes()[:4] == b"II+\x00"  # BigTIFF when asked


def test_overwrite_replaces_only_when_complete(raster, tmp_path, scheduler):
    path, data = raster()
    target = tmp_path / "out.tif"
    target.write_bytes(b"old")
    rmd.to_raster(rmd.open_raster(path), target, like=path, scheduler=scheduler)
    with rasterio.open(target) as src:
        assert np.array_equal(src.read(), data)
    bad = rmd.map_windows(runfuncs.fails_on_one, [path], global_args={"bad_ij": (0, 0)})
    with pytest.raises(rmd.errors.RunFunctionError):
        rmd.to_raster(bad, target, like=path, scheduler=scheduler)
    with rasterio.open(target) as src:  # the previous complete output is untouched
        assert np.array_equal(src.read(), data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


# -- property: any raster, any blocks, any windows: output == serial reference --

DTYPES = ["uint8", "uint16", "int16", "float32"]
MODES = [("simple_read", runfuncs.passthrough),
         ("array_read", runfuncs.array_mean),
         ("manual_read", runfuncs.manual_window_sum)]


@st.composite
def cases(draw):
    height = draw(st.integers(1, 90))
    width = draw(st.integers(1, 90))
    block = draw(st.sampled_from([16, 32, 48]))
    count = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(DTYPES))
    mode_index = draw(st.integers(0, len(MODES) - 1))
    kind = draw(st.sampled_from(["blocks", "grid", "subset"]))
    rows = draw(st.integers(1, height))
    cols = draw(st.integers(1, width))
    keep = draw(st.lists(st.booleans(), min_size=1, max_size=64))
    return height, width, block, count, dtype, mode_index, kind, rows, cols, keep


def _grid(height, width, rows, cols):
    return [(Window(c, r, min(cols, width - c), min(rows, height - r)), (r // rows, c // cols))
            for r in range(0, height, rows) for c in range(0, width, cols)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(case=cases())
def test_property_output_equals_serial(tmp_path_factory, case):
    height, width, block, count, dtype, mode_index, kind, rows, cols, keep = case
    mode, func = MODES[mode_index]
    tmp = tmp_path_factory.mktemp("prop")
    a, _ = make_raster(tmp / "a.tif", count=count, height=height, width=width, dtype=dtype,
                       block=block, seed=1)
    b, _ = make_raster(tmp / "b.tif", count=1, height=height, width=width, dtype=dtype,
                       block=block, seed=2)
    out_count = count if mode == "simple_read" else 1
    out_dtype = dtype if mode == "simple_read" else "float32"
    options = dict(rmd.utils.getOptions(a), count=out_count, dtype=out_dtype)
    if kind == "blocks":
        windows = None
    elif kind == "grid":
        windows = _grid(height, width, rows, cols)
    else:
        grid = _grid(height, width, rows, cols)
        windows = [w for w, k in zip(grid, keep * len(grid)) if k] or grid[:1]

    target = tmp / "out.tif"
    with rmd.RioMucho([a, b], str(target), func, mode=mode, windows=windows,
                      options=options) as rm:
        rm.run(1)
    ref = serial_reference(func, [a, b], tmp / "ref.tif", mode=mode, windows=windows,
                           count=out_count, dtype=out_dtype)
    assert_same_raster(target, ref)

    if kind != "subset":  # the lazy API covers grids
        lazy = rmd.map_windows(func, [a, b], mode=mode, count=out_count, dtype=out_dtype,
                               windows=windows)
        written = rmd.to_raster(lazy, tmp / "lazy.tif", like=a, scheduler="threads")
        assert_same_raster(written, ref)


def test_cog_failure_leaves_nothing(raster, tmp_path, monkeypatch, capsys):
    """GDAL's route (a tiled intermediate, then CreateCopy) failing at the end."""
    path, data = raster(count=1, height=300, width=300, block=64)
    target = tmp_path / "cog.tif"
    target.write_bytes(b"previous")

    def broken(intermediate, finished, options):
        raise RuntimeError("CreateCopy failed")

    monkeypatch.setattr(cog, "finish", broken)
    with dask.config.set({"riomucho_dask.encode-tiles": False}):
        with pytest.raises(RuntimeError, match="CreateCopy failed"):
            rmd.to_raster(rmd.open_raster(path), target, like=path, driver="COG", progress=True)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.tif", "in.tif"]
    assert "making the Cloud Optimized GeoTIFF" in capsys.readouterr().err


def test_encoded_cog_failure_in_layout_leaves_nothing(raster, tmp_path, monkeypatch, capsys):
    """Tiles encoded on the workers, the COG layout failing at the end."""
    from riomucho_dask.write.writers import tiled

    path, data = raster(count=1, height=300, width=300, block=64)
    target = tmp_path / "cog.tif"
    target.write_bytes(b"previous")

    def broken(spool, out, order):
        raise OSError("copy failed")

    monkeypatch.setattr(tiled, "_copy_tiles", broken)
    with pytest.raises(OSError, match="copy failed"):
        rmd.to_raster(rmd.open_raster(path), target, like=path, driver="COG", progress=True)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.tif", "in.tif"]
    assert "laying out the Cloud Optimized GeoTIFF" in capsys.readouterr().err
