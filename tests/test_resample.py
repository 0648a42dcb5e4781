"""The overview kernels against GDAL's own GTiff BuildOverviews, bit for bit."""

from __future__ import annotations

import itertools
import math
import warnings
import zlib

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning

from riomucho_dask.write.kernels.resample import (
    auto_factors,
    level_sizes,
    mask_source_levels,
    resample,
    resample_mask,
    source_levels,
    source_range,
)

DTYPES = ["uint8", "uint16", "int16", "int32", "float32", "float64"]
METHODS = ["nearest", "average", "mode"]
SHAPES = [(301, 257), (97, 130), (5, 3), (1, 40), (40, 1), (61, 47), (64, 64), (37, 45)]
FACTORS = [[2, 4, 8], [3, 9], [2, 4]]
NODATA = {"uint8": 0, "uint16": 65535, "int16": -9999, "int32": 7, "float32": -9999.0,
          "float64": 1.5}


def gdal_overviews(path, data, factors, method, nodata=None, interleave="pixel", mask=None):
    """GDAL's overview levels (and their masks) of ``data`` written as a tiled GTiff."""
    count, height, width = data.shape
    profile = dict(driver="GTiff", count=count, height=height, width=width, dtype=data.dtype,
                   tiled=True, blockxsize=16, blockysize=16, interleave=interleave)
    if nodata is not None:
        profile["nodata"] = nodata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            with rasterio.open(path, "w", **profile) as ds:
                ds.write(data)
                if mask is not None:
                    ds.write_mask(mask)
            with rasterio.open(path, "r+") as ds:
                ds.build_overviews(factors, getattr(Resampling, method))
            with rasterio.open(path) as ds:
                n = len(ds.overviews(1))
            levels, masks = [], []
            for k in range(n):
                with rasterio.open(path, overview_level=k) as ds:
                    levels.append(ds.read())
                    masks.append(ds.read_masks(1) if mask is not None else None)
    return levels, masks


def random_data(rng, dtype, shape, nodata=None):
    """Noise, or classes for some integer cases, with nodata pixels and
    some all-nodata 2 x 2 blocks."""
    if np.dtype(dtype).kind == "f":
        data = (rng.normal(size=shape) * 1000).astype(dtype)
    elif rng.random() < 0.5:  # classes: ties for mode
        data = rng.integers(0, 6, size=shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        data = rng.integers(max(info.min, -100_000), min(info.max, 100_000), size=shape,
                            endpoint=True).astype(dtype)
    if nodata is not None:
        data[rng.random(shape) < 0.2] = nodata
        data[:, :2, :2] = nodata
        data[:, 4:6, 6:8] = nodata
    return data


def pieces(size, n):
    """``n`` uneven ``[start, stop)`` ranges covering ``[0, size)``."""
    cuts = sorted({0, size, *[max(1, min(size - 1, int(size * f))) for f in (0.3, 0.55)][:n - 1]})
    return list(itertools.pairwise(cuts))


def computed(source, dst_shape, method, nodata=None):
    """The whole level from ``source``, in 3 x 2 uneven sub-rectangles, each
    from only its ``source_range``."""
    src_shape = source.shape[1:]
    out = None
    for (a, b), (c, d) in itertools.product(pieces(dst_shape[0], 3), pieces(dst_shape[1], 2)):
        r0, r1 = source_range(a, b, src_shape[0], dst_shape[0], method)
        c0, c1 = source_range(c, d, src_shape[1], dst_shape[1], method)
        part = resample(source[:, r0:r1, c0:c1], r0, c0, (a, b), (c, d), src_shape, dst_shape,
                        method, nodata)
        assert part.shape == (source.shape[0], b - a, d - c)
        assert part.dtype == source.dtype
        if out is None:
            out = (np.ma.masked_all if isinstance(part, np.ma.MaskedArray) else np.empty)(
                (source.shape[0], *dst_shape), source.dtype)
        out[:, a:b, c:d] = part
    return out


def assert_same(ours, gdal, where):
    if ours.dtype.kind == "f":
        same = np.array_equal(ours, gdal, equal_nan=True)
    else:
        same = np.array_equal(ours, gdal)
    if not same:
        bad = ~((ours == gdal) | (np.isnan(ours) & np.isnan(gdal))
                if ours.dtype.kind == "f" else ours == gdal)
        pytest.fail(f"{where}: {bad.sum()} pixels differ, first at "
                    f"{np.argwhere(bad)[:3].tolist()}: {ours[bad][:3]} vs {gdal[bad][:3]}")


def check_levels(tmp_path, data, factors, method, nodata=None, interleave="pixel"):
    height, width = data.shape[1:]
    gdal, _ = gdal_overviews(tmp_path / "o.tif", data, factors, method, nodata, interleave)
    sizes = level_sizes(height, width, factors)
    assert [level.shape[1:] for level in gdal] == sizes
    sources = source_levels(height, width, factors, method, interleave)
    ours: list[np.ndarray] = []
    for k, (size, source) in enumerate(zip(sizes, sources)):
        if source is None:  # GDAL makes this level but never fills it: nodata or 0
            empty = np.full(gdal[k].shape, 0 if nodata is None else nodata, data.dtype)
            assert_same(empty, gdal[k], f"unfilled level {k}")
            ours.append(gdal[k])
            continue
        src = data if source == -1 else ours[source]
        level = computed(src, size, method, nodata)
        assert_same(level, gdal[k], f"level {k} {size} from {source}")
        ours.append(level)


def cases():
    rng = np.random.default_rng(12345)
    shapes = itertools.cycle(SHAPES)
    factor_lists = itertools.cycle(FACTORS)
    out = []
    for dtype, method in itertools.product(DTYPES, METHODS):
        kinds = ["none", "value"] + (["nan"] if dtype.startswith("float") else [])
        for kind in kinds:
            count = 2 if rng.random() < 0.3 else 1
            out.append((dtype, method, kind, (count, *next(shapes)), next(factor_lists)))
    return out


@pytest.mark.parametrize("dtype, method, kind, shape, factors", cases())
def test_levels_equal_gdal(tmp_path, dtype, method, kind, shape, factors):
    rng = np.random.default_rng(zlib.crc32(repr((dtype, method, kind, shape)).encode()))
    nodata = {"none": None, "value": NODATA[dtype], "nan": math.nan}[kind]
    data = random_data(rng, dtype, shape, nodata)
    if kind == "none" and dtype.startswith("float"):
        data[rng.random(shape) < 0.05] = np.nan  # NaN without nodata: averaged in
    check_levels(tmp_path, data, factors, method, nodata)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("nodata", [None, -3000])
def test_band_interleaved(tmp_path, method, nodata):
    rng = np.random.default_rng(7)
    data = random_data(rng, "int16", (3, 45, 37), nodata)
    check_levels(tmp_path, data, [2, 4, 8], method, nodata, interleave="band")
    check_levels(tmp_path, data[:2, :5, :3], [2, 4, 8], method, nodata, interleave="band")


def computed_mask(mask, dst_shape, method):
    """A level's mask (True where masked) from ``mask``, in 3 x 2 uneven
    sub-rectangles, each from only its ``source_range``."""
    out = np.zeros(dst_shape, bool)
    for (a, b), (c, d) in itertools.product(pieces(dst_shape[0], 3), pieces(dst_shape[1], 2)):
        r0, r1 = source_range(a, b, mask.shape[0], dst_shape[0], method)
        c0, c1 = source_range(c, d, mask.shape[1], dst_shape[1], method)
        out[a:b, c:d] = resample_mask(mask[r0:r1, c0:c1], r0, c0, (a, b), (c, d), mask.shape,
                                      dst_shape, method)
    return out


MASK_SHAPES = [(37, 45), (61, 47), (32, 32), (181, 150), (45, 37), (97, 130)]
MASK_FACTORS = [[2, 4, 8], [3, 9], [2, 4], [2, 4, 8], [2, 5], [2, 4, 8, 16]]


def mask_cases():
    shapes = itertools.cycle(zip(MASK_SHAPES, MASK_FACTORS))
    counts = itertools.cycle([1, 2, 3, 2])
    out = []
    for method, interleave, dtype in itertools.product(
            METHODS, ["pixel", "band"], ["uint8", "uint16", "int16", "float32"]):
        shape, factors = next(shapes)
        out.append((method, interleave, dtype, (next(counts), *shape), factors))
    return out


@pytest.mark.parametrize("method, interleave, dtype, shape, factors", mask_cases())
def test_internal_mask(tmp_path, method, interleave, dtype, shape, factors):
    """Pixels from ``source_levels(masked=True)`` with that level's mask, the
    mask from ``mask_source_levels``; masked pixels hold data (not 0), some
    windows are all masked."""
    rng = np.random.default_rng(zlib.crc32(repr((method, interleave, dtype, shape)).encode()))
    if dtype == "float32":
        data = (rng.normal(size=shape) * 1000).astype(dtype)
    else:
        data = rng.integers(0, 5 if rng.random() < 0.5 else 200, size=shape).astype(dtype)
    mask = np.where(rng.random(shape[1:]) < rng.choice([0.3, 0.6]), 0, 255).astype("uint8")
    mask[:2, :2] = 0
    mask[4:12, 4:12] = 0  # all masked windows up to factor 8
    gdal, gdal_masks = gdal_overviews(tmp_path / "m.tif", data, factors, method,
                                      interleave=interleave, mask=mask)
    height, width = shape[1:]
    sizes = level_sizes(height, width, factors)
    assert [level.shape[1:] for level in gdal] == sizes
    sources = source_levels(height, width, factors, method, interleave, masked=True)
    mask_sources = mask_source_levels(height, width, factors, method)
    full = np.ma.MaskedArray(data, np.broadcast_to(mask == 0, shape))
    ours: list[np.ma.MaskedArray] = []
    for k, (size, source, mask_source) in enumerate(zip(sizes, sources, mask_sources)):
        assert source is not None and mask_source is not None
        flags_from = (full if mask_source == -1 else ours[mask_source]).mask[0]
        flags = computed_mask(flags_from, size, method)
        assert np.array_equal(flags, gdal_masks[k] == 0), \
            f"mask of level {k}: {(flags != (gdal_masks[k] == 0)).sum()} pixels differ"
        level = computed(full if source == -1 else ours[source], size, method)
        assert_same(np.ma.getdata(level), gdal[k], f"level {k} {size} from {source}")
        if source == mask_source:  # resample's own mask is GDAL's
            assert np.array_equal(np.ma.getmaskarray(level)[0], flags)
        ours.append(np.ma.MaskedArray(np.ma.getdata(level), np.broadcast_to(flags, level.shape)))


def test_mode_masked_windows():
    """Masked pixels left out of a non-byte mode (0 where all are); uint8
    takes them (GDAL's byte mode looks at nodata only)."""
    data = np.array([[[7, 7, 1, 2], [7, 3, 7, 7]]])
    mask = np.array([[[True, True, True, True], [True, False, True, True]]])
    for dtype, expected in [("int16", [3, 0]), ("float32", [3, 0]), ("uint8", [7, 7])]:
        piece = np.ma.MaskedArray(data.astype(dtype), mask)
        out = resample(piece, 0, 0, (0, 1), (0, 2), (2, 4), (1, 2), "mode")
        assert np.ma.getdata(out).tolist() == [[expected]], dtype
        assert np.ma.getmaskarray(out).tolist() == [[[True, True]]]


def test_level_sizes_round_up_and_skip_levels_gdal_takes_for_others(tmp_path):
    data = np.zeros((1, 7, 7), "uint8")
    gdal, _ = gdal_overviews(tmp_path / "s.tif", data, [2, 3, 5], "nearest")
    assert [level.shape[1:] for level in gdal] == level_sizes(7, 7, [2, 3, 5]) == [(4, 4), (2, 2)]
    assert level_sizes(1, 1000, [2, 4, 8]) == [(1, 500), (1, 250), (1, 125)]
    assert level_sizes(301, 257, [3, 9]) == [(101, 86), (34, 29)]


def test_auto_factors():
    assert auto_factors(301, 257, 16) == [2, 4, 8, 16, 32]
    assert auto_factors(16, 16, 16) == []
    assert auto_factors(17, 3, 16) == [2]
    assert auto_factors(100, 40, (16, 64)) == [2, 4, 8]


def test_source_range_is_enough_and_clipped():
    for src, dst in [(301, 151), (97, 49), (1000, 334), (5, 3), (40, 5)]:
        for method in METHODS:
            lo, hi = source_range(0, dst, src, dst, method)
            assert 0 <= lo < hi <= src
            assert source_range(dst - 1, dst, src, dst, method)[1] <= src


def test_piece_too_small_raises():
    data = np.zeros((1, 4, 8), "uint8")
    with pytest.raises(ValueError):
        resample(data, 0, 0, (0, 4), (0, 4), (8, 8), (4, 4), "average")


def test_speed_ratio_2_average_is_vectorized():
    data = np.ones((1, 512, 512), "float32")
    out = resample(data, 0, 0, (0, 256), (0, 256), (512, 512), (256, 256), "average")
    assert out.shape == (1, 256, 256) and out.dtype == np.float32 and (out == 1).all()
