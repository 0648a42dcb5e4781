"""The silent corners of issue 29: each one fixed, each one refused or written right."""

from __future__ import annotations

import numpy as np
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
