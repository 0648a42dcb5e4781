"""Every GDAL format written as rasterio writes it: side-cars, CreateCopy, options.

Each output is compared with ``rasterio.open(ref, "w", driver=...)`` of the same
pixels (rasterio writes a CreateCopy-only driver through an in-memory dataset and
one CreateCopy): the same files, named after the output, the same pixels (lossy
JPEG and WEBP: the same driver's own encoding of the same pixels), CRS, transform
and nodata; and a failing run leaves the directory as it was.

The JP2OpenJPEG and WEBP cases are skipped where this GDAL was built without
that driver (nothing else is).
"""

from __future__ import annotations

import logging
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
import rasterio.drivers

import riomucho_dask as rmd
from riomucho_dask.errors import ProfileError, RunFunctionError

from . import runfuncs
from .conftest import CRS, TRANSFORM, make_raster


def _have(driver: str) -> bool:
    with rasterio.Env() as env:
        return driver in env.drivers()


def _needs(driver: str):
    return pytest.mark.skipif(not _have(driver), reason=f"this GDAL has no {driver} driver")


#: driver: (output name, to_raster keywords beyond the extension's choice)
FORMATS = {
    "PNG": ("out.png", {}),
    "JPEG": ("out.jpg", {}),
    "WEBP": ("out.webp", {}),
    "JP2OpenJPEG": ("out.jp2", {}),
    "ENVI": ("out.bin", {"driver": "ENVI"}),
    "GPKG": ("out.gpkg", {}),
}
DRIVERS = [pytest.param(name, marks=_needs(name)) if name in ("JP2OpenJPEG", "WEBP")
           else name for name in FORMATS]


@pytest.fixture
def source(tmp_path):
    """A 3-band uint8 tiled GeoTIFF in a folder of its own; (path, pixels)."""
    folder = tmp_path / "in"
    folder.mkdir()
    return make_raster(folder / "in.tif", count=3, height=97, width=131, dtype="uint8",
                       block=32)


def reference(folder: Path, name: str, driver: str, data: np.ndarray, **options) -> Path:
    """What rasterio writes: ``rasterio.open(path, "w")`` of the same pixels."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    with rasterio.open(path, "w", driver=driver, count=data.shape[0], height=data.shape[1],
                       width=data.shape[2], dtype=data.dtype.name, crs=CRS,
                       transform=TRANSFORM, **options) as dst:
        dst.write(data)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_as_rasterio(got: Path, want: Path) -> None:
    """The same files (side-cars named after each output), pixels, CRS, transform,
    nodata and tags; an ENVI header the same but for the path it names."""
    assert sorted(p.name for p in got.parent.iterdir()) == \
        sorted(p.name for p in want.parent.iterdir())
    with rasterio.open(got) as a, rasterio.open(want) as b:
        assert a.driver == b.driver
        assert (a.count, a.dtypes, a.crs, a.transform, a.nodata) == \
            (b.count, b.dtypes, b.crs, b.transform, b.nodata)
        assert a.crs is not None and a.crs == rasterio.crs.CRS.from_string(CRS)
        assert np.array_equal(a.read(), b.read())
        # (a copy of a GeoTIFF also says pixels are areas: GDAL's default meaning)
        tags = {k: v for k, v in a.tags().items() if k != "AREA_OR_POINT"}
        assert tags == {k: v for k, v in b.tags().items() if k != "AREA_OR_POINT"}
    for side in got.parent.iterdir():
        if side.suffix == ".hdr":  # ENVI's header names its file
            text = side.read_text().replace(str(got.parent), "DIR")
            assert text == (want.parent / side.name).read_text().replace(str(want.parent), "DIR")
            assert ".riomucho-" not in side.read_text()


@pytest.mark.parametrize("driver", DRIVERS)
def test_written_as_rasterio_writes_it(tmp_path, source, driver, scheduler):
    path, data = source
    name, options = FORMATS[driver]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    written = rmd.to_raster(rmd.open_raster(path), out_dir / name, scheduler=scheduler,
                            **options)
    assert written == str(out_dir / name)
    assert_as_rasterio(Path(written), reference(tmp_path / "ref", name, driver, data))
    if driver in ("PNG", "ENVI"):  # lossless: the source's pixels too (GPKG: JPEG tiles
        # where a tile is opaque, PNG where not, by default)
        with rasterio.open(written) as src:
            assert np.array_equal(src.read()[:3], data)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_failing_run_leaves_the_directory_as_it_was(tmp_path, source, driver,
                                                      local_scheduler):
    path, _ = source
    name, options = FORMATS[driver]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for attempt in ("new", "existing"):
        before = snapshot(out_dir)
        bad = rmd.map_windows(runfuncs.fails_on_one, [path], global_args={"bad_ij": (2, 3)})
        with pytest.raises(RunFunctionError, match="boom"):
            rmd.to_raster(bad, out_dir / name, scheduler=local_scheduler, **options)
        assert snapshot(out_dir) == before  # (no temporary directory, nothing replaced)
        if attempt == "new":  # then over an existing output, side-cars and all
            half = rmd.open_raster(path) // 2
            rmd.to_raster(half, out_dir / name, scheduler=local_scheduler, **options)
    assert name in snapshot(out_dir)


def test_lossy_outputs_keep_their_options(tmp_path, source, local_scheduler):
    path, data = source
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    written = rmd.to_raster(rmd.open_raster(path), out_dir / "out.jpg", quality=40,
                            worldfile=True, scheduler=local_scheduler)
    want = reference(tmp_path / "ref", "out.jpg", "JPEG", data, quality=40, worldfile=True)
    assert (out_dir / "out.wld").exists()  # the world file named after the output
    assert_as_rasterio(Path(written), want)
    assert Path(written).read_bytes() == want.read_bytes()  # (the same encoder, same pixels)


def test_options_a_driver_does_not_list_are_left_out(tmp_path, source, caplog):
    path, data = source
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with caplog.at_level(logging.WARNING):
        for name, options in (("out.png", {}), ("out.bin", {"driver": "ENVI"}),
                              ("out.gpkg", {})):
            written = rmd.to_raster(rmd.open_raster(path), out_dir / name, tiled=True,
                                    blockxsize=64, blockysize=64, compress="deflate",
                                    num_threads="all_cpus", scheduler="threads", **options)
            # (GPKG keeps its block size: then opaque tiles are JPEG, as rasterio's)
            kept = {"blockxsize": 64, "blockysize": 64} if name == "out.gpkg" else {}
            want = reference(tmp_path / "ref", name, options.get("driver") or
                             rasterio.drivers.driver_from_extension(name), data, **kept)
            assert_as_rasterio(Path(written), want)
    assert not [r for r in caplog.records if "creation option" in r.getMessage()]
    with rasterio.open(out_dir / "out.png") as src:
        assert np.array_equal(src.read(), data)


def test_a_pixel_type_the_driver_cannot_hold_is_refused_before_compute(tmp_path, source):
    path, _ = source
    with pytest.raises(ProfileError, match="PNG cannot hold float32"):
        rmd.to_raster(rmd.open_raster(path).astype("float32"), tmp_path / "out.png")
    assert not [p for p in tmp_path.iterdir() if p.name != "in"]


@pytest.mark.parametrize("name, bands, allowed, options", [
    ("out.jpg", 2, "1, 3, 4", {}), ("out.webp", 1, "3, 4", {}),
    ("out.png", 5, "1, 2, 3, 4", {}), ("out.gif", 3, "1", {"driver": "GIF"})])
def test_a_band_count_the_driver_cannot_hold_is_refused_before_compute(
        tmp_path, source, name, bands, allowed, options):
    """JPEG with 2 bands, WEBP with 1...: refused before anything is computed (GDAL's
    copy failed only once every window was written)."""
    path, _ = source
    image = rmd.open_raster(path)
    array = da.concatenate([image] * 2)[:bands]
    with pytest.raises(ProfileError, match=f"cannot hold {bands} band.*writes {allowed}"):
        rmd.to_raster(array.map_blocks(_never, dtype=array.dtype), tmp_path / name,
                      **options)
    assert not [p for p in tmp_path.iterdir() if p.name != "in"]


def _never(block):
    raise AssertionError("computed")


def test_a_replaced_output_leaves_no_stale_side_car(tmp_path, source):
    path, data = source
    out = tmp_path / "out.tif"
    # an earlier out.tif whose .aux.xml (written by another tool) says another CRS
    make_raster(out, count=1, dtype="uint8")
    Path(f"{out}.aux.xml").write_text("<PAMDataset><SRS>EPSG:4326</SRS></PAMDataset>")
    with rasterio.open(out) as src:
        assert src.crs == rasterio.crs.CRS.from_epsg(4326)
    rmd.to_raster(rmd.open_raster(path), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.tif"]  # as GDAL's Create
    with rasterio.open(out) as src:
        assert src.crs == rasterio.crs.CRS.from_string(CRS) and np.array_equal(src.read(), data)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_an_output_without_georeferencing_has_no_side_car(tmp_path):
    from affine import Affine

    data = np.arange(20 * 30, dtype="uint8").reshape(1, 20, 30)
    written = rmd.to_raster(data, tmp_path / "out.png", scheduler="sync",
                            profile={"transform": Affine.identity()})
    with rasterio.open(tmp_path / "ref.png", "w", driver="PNG", count=1, height=20, width=30,
                       dtype="uint8") as dst:
        dst.write(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "ref.png"]  # (as rasterio)
    assert Path(written).read_bytes() == (tmp_path / "ref.png").read_bytes()


def test_a_png_on_object_storage_with_its_side_car(source, s3, tmp_path):
    path, data = source
    target = f"s3://{s3.bucket}/out/out.png"
    with s3.env():
        assert rmd.to_raster(rmd.open_raster(path), target, scheduler="threads") == target
    assert s3.keys() == ["out/out.png", "out/out.png.aux.xml"]
    got = tmp_path / "got"
    got.mkdir()
    s3.get("out/out.png", got / "out.png")
    s3.get("out/out.png.aux.xml", got / "out.png.aux.xml")
    assert_as_rasterio(got / "out.png", reference(tmp_path / "ref", "out.png", "PNG", data))
