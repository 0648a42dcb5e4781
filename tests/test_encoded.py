"""Tiles encoded on the workers (write/encode.py) and placed by the writer (write/tiled.py).

Every output is compared with a serial rasterio reference (or numpy on the
whole raster), bit for bit, on every scheduler.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rio_cogeo.cogeo import cog_validate

import riomucho_dask as rmd
from riomucho_dask.errors import OutputPathError, StoreError
from riomucho_dask.write.graph import encode
from riomucho_dask.write.graph.encode import Encoding
from riomucho_dask.write.tiff import codec
from riomucho_dask.write.tiff import ifd as tiff
from riomucho_dask.write.writers.tiled import TiledWriter

from . import runfuncs
from .conftest import assert_same_raster, serial_reference, unaccounted_bytes

CODECS = ["none", "packbits", "deflate", "lzw", "zstd"]


def levels_of(full: np.ndarray, resampling: str, count: int, nodata=None) -> list:
    """Each overview level from the one above, on the whole raster with numpy:
    halved and rounded down as GDAL's COG driver sizes them, each pixel from
    the 2 x 2 pixels it covers (top-left one for nearest)."""
    levels = [full]
    for _ in range(count):
        above = levels[-1]
        h, w = (size // 2 * 2 for size in above.shape[-2:])
        if resampling == "nearest":
            levels.append(above[:, :h:2, :w:2])
            continue
        if above.dtype == np.float32 and nodata is None:
            levels.append(_float32_halved(above[:, :h, :w]))
            continue
        blocks = above[:, :h, :w].astype("float64")
        if nodata is not None:
            blocks[blocks == nodata] = np.nan
        blocks = blocks.reshape(above.shape[0], h // 2, 2, w // 2, 2)
        with warnings.catch_warnings():  # all-nodata blocks: a NaN mean, then nodata
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(blocks, axis=(2, 4))
        if above.dtype.kind not in "fc":  # half away from zero, as GDAL
            mean = np.copysign(np.floor(np.abs(mean) + 0.5), mean)
        if nodata is not None:
            mean[np.isnan(mean)] = nodata
        levels.append(mean.astype(above.dtype))
    return levels


def _float32_halved(above: np.ndarray) -> np.ndarray:
    """GDAL's exact 2 x 2 average of float32 without nodata: summed in float32,
    ``((a + c) + (b + d)) * 0.25`` (its SSE code, by groups of 4 pixels) and
    ``(((a + b) + c) + d) * 0.25`` for the last ``width % 4`` columns."""
    a, b = above[:, 0::2, 0::2], above[:, 0::2, 1::2]
    c, d = above[:, 1::2, 0::2], above[:, 1::2, 1::2]
    quarter = np.float32(0.25)
    out = ((a + c) + (b + d)) * quarter
    tail = out.shape[2] - out.shape[2] % 4
    out[:, :, tail:] = ((((a + b) + c) + d) * quarter)[:, :, tail:]
    return out


def read_level(path, level: int) -> np.ndarray:
    """Level 0 (full resolution) or overview ``level``, read by GDAL."""
    if level == 0:
        with rasterio.open(path) as src:
            return src.read()
    with rasterio.open(path, OVERVIEW_LEVEL=level - 1) as src:
        return src.read()


@pytest.mark.parametrize("dtype, codec, predictor, resampling", [
    ("uint16", "deflate", 2, "nearest"),
    ("float32", "zstd", 3, "average"),
    ("int16", "lzw", 2, "average"),
])
def test_cog_valid_exact_with_every_level(raster, tmp_path, scheduler, dtype, codec, predictor,
                                          resampling):
    path, data = raster(count=2, height=600, width=700, block=64, dtype=dtype)
    target = tmp_path / "cog.tif"
    written = rmd.to_raster(rmd.map_windows(runfuncs.passthrough, [path]), target, like=path,
                            driver="COG", compress=codec, predictor=predictor, blocksize=128,
                            overview_resampling=resampling, scheduler=scheduler)
    valid, errors, notes = cog_validate(written)
    assert valid and not notes, (errors, notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.tif", "in.tif"]
    assert_same_raster(written, serial_reference(runfuncs.passthrough, [path], tmp_path / "r.tif"))
    # GDAL's COG driver on the same pixels: same levels, codec, predictor, tiles
    gdal = tmp_path / "gdal.tif"
    rasterio.shutil.copy(path, gdal, driver="COG", compress=codec, predictor=predictor,
                         blocksize=128, overview_resampling=resampling)
    with rasterio.open(written) as got, rasterio.open(gdal) as want:
        assert got.overviews(1) == want.overviews(1) == [2, 4, 8]
        assert got.block_shapes == want.block_shapes == [(128, 128)] * 2
        assert got.compression == want.compression
        assert got.tags(ns="IMAGE_STRUCTURE") == want.tags(ns="IMAGE_STRUCTURE")
    levels = levels_of(data, resampling, 3)
    for level, expected in enumerate(levels):
        got = read_level(written, level)  # GDAL reads every level
        assert np.array_equal(got, expected), level
        if not level:
            continue
        theirs = read_level(gdal, level).astype("float64")
        if all(size % 2 == 0 for size in levels[level - 1].shape[1:]):
            # a factor of exactly 2: GDAL's own overview, bit for bit
            assert np.array_equal(got, theirs), level
        elif resampling == "nearest":  # GDAL's step drifts past 2: still input pixels
            assert np.isin(got, data).all()
        else:
            spread = float(data.max()) - float(data.min())
            assert np.abs(got - theirs).mean() <= 0.05 * spread, level


@pytest.mark.parametrize("codec", CODECS)
def test_geotiff_every_codec_exact(raster, tmp_path, scheduler, codec):
    path, data = raster(count=3, height=200, width=150, block=32, dtype="uint16")
    options = {"compress": codec}
    if codec in ("deflate", "lzw", "zstd"):
        options["predictor"] = 2
    written = rmd.to_raster(rmd.map_windows(runfuncs.passthrough, [path]), tmp_path / "out.tif",
                            like=path, scheduler=scheduler, **options)
    reference = serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif",
                                 profile=options)
    assert_same_raster(written, reference)
    with rasterio.open(written) as got, rasterio.open(reference) as want:
        assert got.compression == want.compression
        assert got.tags(ns="IMAGE_STRUCTURE") == want.tags(ns="IMAGE_STRUCTURE")
        assert got.block_shapes == want.block_shapes
    assert unaccounted_bytes(written) <= 9  # room kept for a BigTIFF header, IFD alignment


def test_geotiff_band_interleaved_float_predictor(raster, tmp_path):
    path, data = raster(count=3, height=100, width=90, block=16, dtype="float32", nodata=-1.0)
    options = {"compress": "deflate", "predictor": 3, "interleave": "band"}
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path, **options)
    reference = serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif",
                                 profile=options)
    assert_same_raster(written, reference)
    with rasterio.open(written) as src:
        assert src.interleaving.name == "band"
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "3"


def test_cog_with_internal_mask(raster, tmp_path, scheduler):
    path, data = raster(count=2, height=300, width=260, block=32, dtype="uint16")
    threshold = int(np.percentile(data[0], 30))
    out = rmd.map_windows(runfuncs.mask_low, [path], global_args={"threshold": threshold})
    written = rmd.to_raster(out, tmp_path / "cog.tif", like=path, driver="COG",
                            compress="deflate", blocksize=64, scheduler=scheduler)
    valid, errors, notes = cog_validate(written)
    assert valid and not notes, (errors, notes)
    masked = data[0] < threshold
    with rasterio.open(written) as src:
        assert src.nodata is None
        assert np.array_equal(src.dataset_mask() == 0, masked)
        assert np.array_equal(src.read()[:, ~masked], data[:, ~masked])
        assert src.overviews(1) == [2, 4, 8]
    with rasterio.open(written, OVERVIEW_LEVEL=0) as level:  # masks have overviews too
        mask = level.dataset_mask()
    assert mask.shape == (150, 130) and 0 < (mask == 0).mean() < 1


def test_cog_with_nodata_overviews_skip_nodata(raster, tmp_path):
    path, data = raster(count=1, height=256, width=256, block=32, dtype="float32", nodata=-9999)
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "cog.tif", like=path,
                            driver="COG", blocksize=64, compress="zstd")
    assert cog_validate(written)[0]
    for level, expected in enumerate(levels_of(data, "average", 2, nodata=-9999)):
        assert np.array_equal(read_level(written, level), expected), level
    with rasterio.open(written) as src:
        assert src.nodata == -9999


@pytest.mark.parametrize("driver", ["GTiff", "COG"])
def test_bigtiff_when_asked(raster, tmp_path, driver):
    path, data = raster(count=1, height=300, width=300, block=64, dtype="int16")
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path,
                            driver=driver, compress="deflate", bigtiff="yes")
    with open(written, "rb") as f:
        assert f.read(4) == b"II+\0"
    assert_same_raster(written, path)
    if driver == "COG":
        valid, errors, _ = cog_validate(written)
        assert valid, errors


def test_cog_runs_each_window_once(raster, tmp_path, scheduler):
    """Overviews are made from the full-resolution blocks in the same graph:
    the run function still runs once per window."""
    path, data = raster(count=1, height=256, width=256, block=32)
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [path], global_args={"calls": str(calls)},
                          count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "cog.tif", like=path, driver="COG", blocksize=64,
                            compress="deflate", scheduler=scheduler)
    per_window = runfuncs.calls_per_window(calls)
    assert len(per_window) == 64 and set(per_window.values()) == {1}
    assert cog_validate(written)[0]
    assert np.array_equal(read_level(written, 0), data[:1].astype("float32"))


@pytest.mark.parametrize("where", ["processes", "distributed"])
def test_tiles_are_encoded_on_the_workers(raster, tmp_path, monkeypatch, request, where):
    """With encoding broken in this process only, worker processes still encode:
    the client only places bytes."""
    path, data = raster(count=2, height=200, width=200, block=32)

    def broken(self, block, row, col, level=0):
        raise AssertionError("encoded in the client")

    scheduler = request.getfixturevalue("cluster_client") if where == "distributed" else where
    monkeypatch.setattr(codec, "encode", broken)
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "cog.tif", like=path,
                            driver="COG", blocksize=64, scheduler=scheduler)
    assert cog_validate(written)[0]
    assert np.array_equal(read_level(written, 0), data)
    with pytest.raises(AssertionError, match="encoded in the client"):  # the control
        rmd.to_raster(rmd.open_raster(path), tmp_path / "again.tif", like=path,
                      driver="COG", blocksize=64, scheduler="threads")


def test_client_memory_flat_on_a_cluster(cluster_client, tmp_path):
    """A 64 MB two-band COG (4096 x 4096 uint16 noise): blocks are made, encoded
    and reduced on the workers; the client only holds compressed tiles in
    flight, spooled to disk."""
    psutil = pytest.importorskip("psutil")
    from affine import Affine

    size = 4096
    array = da.random.default_rng(42).integers(0, 65535, size=(2, size, size),
                                               chunks=(2, 512, 512), dtype="uint16")
    profile = {"crs": "EPSG:32633", "transform": Affine(10, 0, 500000, 0, -10, 4200000)}
    process = psutil.Process()
    base = peak = process.memory_info().rss
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        written = rmd.to_raster(array, tmp_path / "big.tif", profile, driver="COG",
                                compress="zstd", scheduler=cluster_client)
    finally:
        done.set()
        sampler.join()
    assert os.path.getsize(written) > 64 * 2**20  # noise does not compress
    assert (peak - base) / 2**20 < 100, f"client grew by {(peak - base) / 2**20:.0f} MB"
    assert cog_validate(written)[0]
    with rasterio.open(written) as src:
        corner = src.read(window=((3584, 4096), (0, 512)))
    assert np.array_equal(corner, array[:, 3584:, :512].compute(scheduler=cluster_client))


@pytest.mark.parametrize("options", [
    {"tiled": False},  # strips
    {"compress": "jpeg", "dtype": "uint8"},  # tiles sharing a JPEG table
    {"driver": "COG", "overview_resampling": "cubic"},
    {"driver": "COG", "tiling_scheme": "GoogleMapsCompatible"},
    {"driver": "COG", "dtype": "complex64"},
], ids=["strips", "jpeg", "cog-cubic", "cog-tiling-scheme", "cog-complex"])
def test_gdal_writes_what_tiles_cannot(raster, tmp_path, options):
    """Outputs the encoder does not know go through a GDAL dataset, as before."""
    path, data = raster(count=3, height=100, width=120, block=32, dtype="uint8")
    write = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path,
                          compute=False, **options)
    assert write.write.store.encoding is None
    written = write.compute()
    with rasterio.open(written) as src:
        if options.get("compress") != "jpeg" and "tiling_scheme" not in options:
            assert np.array_equal(src.read(), data.astype(options.get("dtype", "uint8")))
        else:
            assert src.count in (3, 4)  # (the tiling scheme adds an alpha band)


def _tiles_of(encoding: Encoding, data: np.ndarray, chunk: int) -> list:
    _, height, width = data.shape
    return [codec.encode(encoding, data[:, r:r + chunk, c:c + chunk], r, c)
            for r in range(0, height, chunk) for c in range(0, width, chunk)]


@pytest.mark.parametrize("driver", ["GTiff", "COG"])
def test_writer_places_tiles_arriving_in_any_order(raster, tmp_path, driver):
    path, data = raster(count=2, height=150, width=140, block=32)
    with rasterio.open(path) as src:
        profile = dict(src.profile, driver=driver, compress="deflate")
    if driver == "COG":
        profile.update(blocksize=32, overview_count=0)
    encoding = encode.for_profile(profile)
    tiles = _tiles_of(encoding, data, 64)
    names = iter(range(10))
    writer = TiledWriter(profile, encoding, lambda: str(tmp_path / f"{next(names)}.part"))
    for t in reversed(tiles):
        writer.write(t)
    finished = writer.close()
    with rasterio.open(finished) as src:
        assert np.array_equal(src.read(), data)
        assert src.crs == profile["crs"] and src.transform == profile["transform"]


def test_writer_refuses_to_finish_with_tiles_missing(raster, tmp_path):
    path, data = raster(count=1, height=128, width=128, block=32)
    with rasterio.open(path) as src:
        profile = dict(src.profile, compress="deflate")
    encoding = encode.for_profile(profile)
    writer = TiledWriter(profile, encoding, lambda: str(tmp_path / "out.part"))
    for t in _tiles_of(encoding, data, 64)[:-1]:
        writer.write(t)
    with pytest.raises(StoreError, match="4 tiles of level 0 were never written"):
        writer.close()
    with pytest.raises(StoreError, match="not a ndarray"):
        writer.write(data)


def test_tiff_ifds_round_trip():
    tags = {256: tiff.Entry.of(300, tiff.LONG), 258: tiff.Entry.of([8, 8, 8], tiff.SHORT),
            324: tiff.Entry.of(np.arange(5) * 1000, tiff.LONG8)}
    for big in (False, True):
        at = tiff.HEADER_SIZE[big]
        data = tiff.header(big, at) + tiff.ifd_bytes(tags, at, big)
        assert len(data) == at + tiff.ifd_size(tags, big)
        (got,) = tiff.read_ifds(data)
        assert got == tags


def test_masked_cog_ifds_in_gdals_order(raster, tmp_path):
    """Full resolution, its mask, the overviews, their masks: as GDAL's COG driver."""
    path, data = raster(count=1, height=300, width=260, block=32, dtype="uint16")
    threshold = int(np.percentile(data[0], 30))
    out = rmd.map_windows(runfuncs.mask_low, [path], global_args={"threshold": threshold})
    written = rmd.to_raster(out, tmp_path / "cog.tif", like=path, driver="COG", blocksize=64)
    ifds = tiff.read_ifds(Path(written).read_bytes())
    kinds = [int(ifd[254].values()[0]) if 254 in ifd else 0 for ifd in ifds]
    assert kinds == [0, 4, 1, 1, 1, 5, 5, 5]
    assert cog_validate(written)[0]


def test_no_georeferencing_stays_none(tmp_path):
    array = da.arange(64 * 64, dtype="uint16").reshape(1, 64, 64).rechunk((1, 32, 32))
    profile = {"driver": "GTiff", "tiled": True, "blockxsize": 32, "blockysize": 32}
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):  # (reading it back)
        written = rmd.to_raster(array, tmp_path / "out.tif", profile, compress="deflate")
        with rasterio.open(written) as src:
            assert src.crs is None and src.transform.is_identity
            assert np.array_equal(src.read(), array.compute())


def test_overview_count_stops_at_one_pixel(raster, tmp_path):
    path, data = raster(count=1, height=40, width=40, block=16, dtype="uint8")
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "cog.tif", like=path,
                            driver="COG", blocksize=16, overview_count=9)
    with rasterio.open(written) as src:
        assert src.overviews(1) == [2, 4, 8, 20, 40]  # 20, 10, 5, 2, 1 pixels: no more


def test_gtiff_predictor_gdal_refuses_is_refused(raster, tmp_path):
    """PREDICTOR=YES is a COG option: GDAL's GTiff driver refuses it, and so does
    to_raster (through GDAL), leaving nothing behind."""
    path, _ = raster(count=1, height=64, width=64, block=32)
    with pytest.raises(OutputPathError, match="PREDICTOR=YES") as caught:
        rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path,
                      compress="deflate", predictor="YES")
    assert ".part" not in str(caught.value)  # (the output named, not its temporary file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


@pytest.mark.parametrize("interleave", ["pixel", "band"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float64"])
def test_uncompressed_tiles_laid_out_as_gdal(raster, tmp_path, interleave, dtype):
    """Uncompressed tiles are made with numpy alone: the same pixels as GDAL's."""
    path, data = raster(count=3, height=100, width=90, block=32, dtype=dtype)
    written = rmd.to_raster(rmd.open_raster(path), tmp_path / "out.tif", like=path,
                            interleave=interleave)
    reference = serial_reference(runfuncs.passthrough, [path], tmp_path / "ref.tif",
                                 profile={"interleave": interleave})
    assert_same_raster(written, reference)
    with rasterio.open(written) as src:
        assert src.interleaving.name == interleave and src.compression is None
    assert unaccounted_bytes(written) <= 9
