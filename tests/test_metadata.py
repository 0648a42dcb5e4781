"""The output's metadata (write/metadata.py): descriptions, tags, units, scale/offset,
colour table, written into the file by GDAL the same on every route.

Routes: GDAL's dataset (strips; and with ``encode-tiles`` off, a tiled GeoTIFF and a
COG through CreateCopy), tiles encoded in the tasks (tiled GeoTIFF, COG) and parts
uploaded from a cluster's workers.  Every output is read back by rasterio, its pixels
compared with the serial reference, its directory checked for side-car files.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
import rasterio.shutil
from click.testing import CliRunner
from rio_cogeo.cogeo import cog_validate

import riomucho_dask as rmd
from riomucho_dask.cli import mucho
from riomucho_dask.errors import ProfileError
from riomucho_dask.write.sinks import multipart
from riomucho_dask.write.tiff import ifd as tiff

from . import runfuncs
from .conftest import assert_same_raster, make_raster, serial_reference

#: Output layouts and the route each takes.
LAYOUTS = {
    "strips": {},  # GDAL's dataset
    "tiled": {"tiled": True, "blockxsize": 64, "blockysize": 64, "compress": "deflate"},
    "cog": {"driver": "COG", "blocksize": 64, "compress": "deflate"},
}

#: Everything, for a one-band uint8 output (the colour table needs one).
PALETTED = dict(
    descriptions=["land cover"],
    tags={"source": "in.tif", "TIFFTAG_SOFTWARE": "riomucho_dask tests"},
    band_tags=[{"legend": "0 water, 1 forest"}],
    units=["class"],
    scales=[0.5],
    offsets=[-1.0],
    colormap={0: (0, 0, 255, 255), 1: (0, 128, 0), 255: (255, 255, 255, 255)},
)

#: Everything but a colour table, for a three-band float32 output.
BANDS = dict(
    descriptions=["blue", None, "nir"],
    tags={"processing": "passthrough", "level": 2},
    band_tags=[{"wavelength": "490"}, None, {"wavelength": "842"}],
    units=["W m-2", "W m-2", ""],
    scales=[0.0001, 0.0001, 1.0],
    offsets=[0.0, -0.1, 0.0],
)


def assert_metadata(path, given: dict) -> None:
    """What rasterio reads back of ``path`` is what was ``given``."""
    with rasterio.open(path) as src:
        tags = src.tags()
        for key, value in given.get("tags", {}).items():
            assert tags[key] == str(value)
        for band, text in enumerate(given.get("descriptions", ()), 1):
            assert src.descriptions[band - 1] == text
        for band, tagged in enumerate(given.get("band_tags", ()), 1):
            assert src.tags(band) == {key: str(v) for key, v in (tagged or {}).items()}
        if "units" in given:
            assert src.units == tuple(unit or None for unit in given["units"]) or \
                src.units == tuple(given["units"])
        if "scales" in given:
            assert src.scales == tuple(given["scales"])
        if "offsets" in given:
            assert src.offsets == tuple(given["offsets"])
        if "colormap" in given:
            colormap = src.colormap(1)
            for value, color in given["colormap"].items():
                assert colormap[value] == tuple(color) + (255,) * (4 - len(color))
            assert src.colorinterp[0].name == "palette"


def only(directory, *names) -> None:
    """``directory`` holds ``names`` and nothing else: no ``.aux.xml``, no temporary."""
    assert sorted(p.name for p in Path(directory).iterdir()) == sorted(names)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_paletted_output_every_route(raster, tmp_path, scheduler, layout):
    path, _ = raster(count=1, height=150, width=170, block=32, dtype="uint8")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler,
                            **LAYOUTS[layout], **PALETTED)
    only(tmp_path, "in.tif", "out.tif")
    assert_metadata(written, PALETTED)
    assert_same_raster(written, serial_reference(runfuncs.passthrough, [path],
                                                 tmp_path / "ref.tif"))
    if layout == "cog":
        valid, errors, notes = cog_validate(written)
        assert valid and not errors, errors


@pytest.mark.parametrize("encode", [True, False], ids=["encoded", "gdal"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_band_metadata_every_route(raster, tmp_path, layout, encode):
    path, data = raster(count=3, height=130, width=100, block=32, dtype="float32")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    with dask.config.set({"riomucho_dask.encode-tiles": encode}):
        written = rmd.to_raster(out, tmp_path / "out.tif", like=path, **LAYOUTS[layout],
                                **BANDS)
    only(tmp_path, "in.tif", "out.tif")
    assert_metadata(written, BANDS)
    with rasterio.open(written) as src:
        assert src.units == ("W m-2", "W m-2", None)
        assert np.array_equal(src.read(), data)


def _gdal_cog(tmp_path, data: np.ndarray, profile: dict, metadata: dict, options: dict) -> str:
    """GDAL's COG driver on the same pixels and metadata (a GeoTIFF made with
    rasterio, then CreateCopy)."""
    source = tmp_path / "gdal-source.tif"
    with rasterio.open(source, "w", **profile) as dst:
        dst.update_tags(**{k: str(v) for k, v in metadata["tags"].items()})
        for band, tags in enumerate(metadata["band_tags"], 1):
            dst.update_tags(band, **(tags or {}))
        for band, text in enumerate(metadata["descriptions"], 1):
            if text is not None:
                dst.set_band_description(band, text)
        for band, unit in enumerate(metadata["units"], 1):
            dst.set_band_unit(band, unit)
        dst.scales, dst.offsets = metadata["scales"], metadata["offsets"]
        if "colormap" in metadata:
            dst.write_colormap(1, metadata["colormap"])
        dst.write(data)
    target = tmp_path / "gdal.tif"
    rasterio.shutil.copy(source, target, driver="COG", **options)
    os.remove(source)
    return str(target)


def _tags(path) -> list[dict]:
    """Each IFD's tags, values as numbers where the type differs (GDAL writes a
    SHORT where a LONG fits), without where the tiles are."""
    out = []
    for ifd in tiff.read_ifds(Path(path).read_bytes()):
        tags = {}
        for tag, entry in ifd.items():
            if tag in (tiff.TILE_OFFSETS, tiff.TILE_BYTE_COUNTS):
                continue
            if entry.type in (tiff.SHORT, tiff.LONG):
                tags[tag] = tuple(int(v) for v in entry.values())
            else:
                tags[tag] = entry
        out.append(tags)
    return out


@pytest.mark.parametrize("dtype, metadata", [("uint8", PALETTED), ("float32", BANDS)],
                         ids=["palette", "bands"])
def test_encoded_cog_tags_as_gdals_cog_driver(raster, tmp_path, dtype, metadata):
    """Every IFD of a COG of encoded tiles has the tags GDAL's COG driver writes for
    the same pixels and metadata (GDAL_METADATA, text tags and georeferencing on the
    full resolution only; the palette on every level), and the same layout."""
    count = len(metadata["descriptions"])
    path, data = raster(count=count, height=300, width=280, block=32, dtype=dtype)
    options = {"blocksize": 64, "compress": "deflate"}
    out = rmd.map_windows(runfuncs.passthrough, [path])
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, driver="COG", **options,
                            **metadata)
    with rasterio.open(path) as src:
        profile = src.profile
    gdal = _gdal_cog(tmp_path, data, profile, metadata, options)
    ours, theirs = _tags(written), _tags(gdal)
    assert len(ours) == len(theirs) == 4  # full resolution and 3 overviews
    assert ours == theirs
    assert tiff.GDAL_METADATA in ours[0] and tiff.GDAL_METADATA not in ours[1]
    valid, errors, notes = cog_validate(written)
    assert valid and not errors and not notes, (errors, notes)
    with rasterio.open(written) as got, rasterio.open(gdal) as want:
        assert got.tags() == want.tags() and got.tags(1) == want.tags(1)
        assert got.descriptions == want.descriptions and got.units == want.units
        assert got.scales == want.scales and got.offsets == want.offsets
        assert got.overviews(1) == want.overviews(1) == [2, 4, 8]
        assert np.array_equal(got.read(), want.read())
        if "colormap" in metadata:
            assert got.colormap(1) == want.colormap(1)
    only(tmp_path, "in.tif", "out.tif", "gdal.tif")


#: Every ``TIFFTAG_*`` item GDAL writes as a TIFF tag of its own.
TEXT_TAGS = {f"TIFFTAG_{key}": value for key, value in dict(
    DOCUMENTNAME="d", IMAGEDESCRIPTION="i", SOFTWARE="s", DATETIME="2024:01:01 00:00:00",
    ARTIST="a", HOSTCOMPUTER="h", COPYRIGHT="c", XRESOLUTION="72", YRESOLUTION="72",
    MINSAMPLEVALUE="0", MAXSAMPLEVALUE="200").items()}


def test_encoded_and_gdal_routes_write_the_same_tags(raster, tmp_path):
    """A tiled GeoTIFF and a COG from encoded tiles carry the tags GDAL's own route
    writes for them (a GDAL dataset; a tiled intermediate then CreateCopy): text
    tags on the full resolution only."""
    path, _ = raster(count=1, height=300, width=280, block=32, dtype="uint16")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    given = {**PALETTED, "tags": {**PALETTED["tags"], **TEXT_TAGS}}
    for layout in ("tiled", "cog"):
        paths = {}
        for encode in (True, False):
            with dask.config.set({"riomucho_dask.encode-tiles": encode}):
                paths[encode] = rmd.to_raster(out, tmp_path / f"{layout}-{encode}.tif",
                                              like=path, **LAYOUTS[layout], **given)
        ours, theirs = _tags(paths[True]), _tags(paths[False])
        assert ours == theirs, layout
        assert len(ours) == (4 if layout == "cog" else 1)
        assert all(tag not in ifd for ifd in ours[1:] for tag in tiff.TEXT_TAGS)
        assert_metadata(paths[True], given)


def test_like_brings_descriptions_units_and_colour_table(raster, tmp_path, scheduler):
    path, _ = raster(count=1, height=100, width=90, block=32, dtype="uint8")
    like = tmp_path / "like.tif"
    make_raster(like, count=1, height=100, width=90, block=32, dtype="uint8")
    with rasterio.open(like, "r+") as dst:
        dst.set_band_description(1, "classes")
        dst.set_band_unit(1, "class")
        dst.write_colormap(1, {0: (1, 2, 3, 255), 7: (9, 8, 7, 255)})
        dst.update_tags(mission="not brought")
        dst.scales = (2.0,)
    out = rmd.map_windows(runfuncs.passthrough, [path])
    for layout in ("tiled", "cog"):
        written = rmd.to_raster(out, tmp_path / f"{layout}.tif", like=like,
                                scheduler=scheduler, **LAYOUTS[layout])
        with rasterio.open(written) as src:
            assert src.descriptions == ("classes",) and src.units == ("class",)
            assert src.colormap(1)[7] == (9, 8, 7, 255)
            assert "mission" not in src.tags() and src.scales == (1.0,)  # (a new quantity)
    # explicit arguments win, each alone
    written = rmd.to_raster(out, tmp_path / "explicit.tif", like=like, descriptions=["mine"],
                            colormap={0: (0, 0, 0)})
    with rasterio.open(written) as src:
        assert src.descriptions == ("mine",) and src.units == ("class",)
        assert src.colormap(1)[7] == (0, 0, 0, 255)  # (entries not given: black)
    # another dtype: no palette; another band count: nothing
    written = rmd.to_raster(out.astype("float32"), tmp_path / "float.tif", like=like)
    with rasterio.open(written) as src:
        assert src.descriptions == ("classes",) and src.colorinterp[0].name != "palette"
    written = rmd.to_raster(da.concatenate([out, out]), tmp_path / "two.tif", like=like)
    with rasterio.open(written) as src:
        assert src.descriptions == (None, None) and src.units == (None, None)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".aux.xml")]


def _never(data, window, ij, g):
    raise AssertionError("computed")


@pytest.mark.parametrize("given, named", [
    ({"descriptions": ["a", "b"]}, "descriptions= has 2 values but the output has 3 bands"),
    ({"descriptions": "abc"}, "descriptions= needs a list of one value per band"),
    ({"descriptions": ["a", 2, "c"]}, "descriptions= needs texts"),
    ({"units": ["m"]}, "units= has 1 values"),
    ({"scales": [1, "x", 1]}, "scales= needs finite numbers"),
    ({"offsets": [0.0, 0.0, float("nan")]}, "offsets= needs finite numbers"),
    ({"tags": [("a", "1")]}, "tags= must be a dict"),
    ({"tags": {"a=b": 1}}, "tags= has the key 'a=b'"),
    ({"band_tags": [{}, {}]}, "band_tags= has 2 values"),
    ({"band_tags": [{}, ["x"], {}]}, r"band_tags=\[1\] must be a dict"),
    ({"colormap": {0: (0, 0, 0)}}, "colormap= needs a one-band uint8 or uint16 output"),
    ({"colormap": [(0, 0, 0)]}, "colormap= must be a dict"),
])
def test_bad_metadata_is_a_profile_error_before_computing(raster, tmp_path, given, named):
    path, _ = raster(count=3, height=40, width=40, block=16, dtype="float32")
    out = rmd.map_windows(_never, [path])
    with pytest.raises(ProfileError, match=named):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, **given)
    only(tmp_path, "in.tif")


@pytest.mark.parametrize("dtype, given, named", [
    ("float32", {"colormap": {0: (0, 0, 0)}}, "not 1 band of float32"),
    ("uint8", {"colormap": {256: (0, 0, 0)}}, "has the value 256: values are integers 0 to 255"),
    ("uint8", {"colormap": {0: (0, 0, 300)}}, r"colormap= has \(0, 0, 300\) for 0"),
    ("uint8", {"descriptions": ["x"], "driver": "HFA"}, "metadata is written into GeoTIFF"),
])
def test_bad_colour_table_or_driver(raster, tmp_path, dtype, given, named):
    path, _ = raster(count=1, height=40, width=40, block=16, dtype="uint8")
    out = rmd.map_windows(_never, [path], dtype=dtype)
    with pytest.raises(ProfileError, match=named):
        rmd.to_raster(out, tmp_path / "out.tif", like=path, **given)
    only(tmp_path, "in.tif")


def test_cog_uploaded_from_the_workers_has_the_metadata(raster, s3, tmp_path, cluster_client,
                                                       monkeypatch):
    """The parts uploaded by a cluster's workers make the same bytes, metadata
    included, as the COG written here."""
    def refuse(self, number, data):
        raise AssertionError(f"part {number} uploaded by the client")

    path, _ = raster(count=1, height=300, width=260, block=32, dtype="uint8")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    with monkeypatch.context() as patch:
        patch.setattr(multipart.Upload, "add", refuse)
        with s3.env():
            rmd.to_raster(out, f"s3://{s3.bucket}/out.tif", like=path, scheduler=cluster_client,
                          **LAYOUTS["cog"], **PALETTED)
    got = s3.get("out.tif", tmp_path / "got.tif")
    local = rmd.to_raster(out, tmp_path / "local.tif", like=path, **LAYOUTS["cog"], **PALETTED)
    assert Path(got).read_bytes() == Path(local).read_bytes()
    assert_metadata(got, PALETTED)
    assert s3.keys() == ["out.tif"]


# -- the shim and the command line ---------------------------------------------------


@pytest.mark.parametrize("windows", ["blocks", "subset"])
def test_shim_options_carry_metadata(raster, tmp_path, windows):
    path, data = raster(count=3, height=96, width=128, block=32, dtype="uint16")
    with rasterio.open(path) as src:
        options = dict(src.profile)
        chosen = [(w, ij) for ij, w in src.block_windows()]
    if windows == "subset":  # not a grid: one task a window, through RasterStore
        chosen = chosen[::2]
    options.update(descriptions=["b1", "b2", "b3"], tags={"by": "shim"},
                   units=["dn", "dn", "dn"], scales=[2.0, 2.0, 2.0])
    kept = dict(options)
    with rmd.RioMucho([path], str(tmp_path / "out.tif"), runfuncs.passthrough,
                      windows=chosen, options=options) as rm:
        rm.run(2)
    assert options == kept  # (not modified)
    assert_metadata(tmp_path / "out.tif", options)
    only(tmp_path, "in.tif", "out.tif")
    if windows == "blocks":
        assert_same_raster(tmp_path / "out.tif", serial_reference(
            runfuncs.passthrough, [path], tmp_path / "ref.tif"))


def test_shim_bad_metadata_is_a_profile_error(raster, tmp_path):
    path, _ = raster(count=3, height=64, width=64, block=32)
    with rasterio.open(path) as src:
        options = {**src.profile, "descriptions": ["only one"]}
    for windows in (None, [(rasterio.windows.Window(0, 0, 32, 32), (0, 0))]):
        with rmd.RioMucho([path], str(tmp_path / "out.tif"), _never, windows=windows,
                          options=options) as rm:
            with pytest.raises(ProfileError, match="descriptions= has 1 values"):
                rm.run(1)
    only(tmp_path, "in.tif")


def test_cli_description_and_tags(raster, tmp_path):
    path, _ = raster(count=2, height=64, width=64, block=32)
    target = tmp_path / "out.tif"
    result = CliRunner().invoke(mucho, [
        "run", "tests.runfuncs:passthrough", path, str(target), "--co", "tiled=true",
        "--co", "blockxsize=32", "--co", "blockysize=32",
        "--description", "first", "--description", "second band",
        "--tag", "source=in.tif", "--tag", "note=a = b",
    ])
    assert result.exit_code == 0, result.output
    assert_metadata(target, {"descriptions": ["first", "second band"],
                             "tags": {"source": "in.tif", "note": "a = b"}})
    only(tmp_path, "in.tif", "out.tif")
    result = CliRunner().invoke(mucho, ["run", "tests.runfuncs:passthrough", path,
                                        str(tmp_path / "bad.tif"), "--description", "one"])
    assert result.exit_code == 1
    assert "descriptions= has 1 values but the output has 2 bands" in result.output
    result = CliRunner().invoke(mucho, ["run", "tests.runfuncs:passthrough", path,
                                        str(tmp_path / "bad.tif"), "--tag", "novalue"])
    assert result.exit_code == 2 and "expected KEY=VALUE" in result.output
    only(tmp_path, "in.tif", "out.tif")


def test_open_dataset_and_resumable_write_get_the_metadata(raster, tmp_path):
    path, data = raster(count=3, height=64, width=64, block=32, dtype="float32")
    out = rmd.map_windows(runfuncs.passthrough, [path])
    with rasterio.open(path) as src:
        profile = src.profile
    with rasterio.open(tmp_path / "open.tif", "w", **profile) as dst:
        rmd.to_raster(out, dst, **BANDS)
    assert_metadata(tmp_path / "open.tif", BANDS)
    written = rmd.to_raster(out, tmp_path / "resumed.tif", like=path, resume=True,
                            **LAYOUTS["cog"], **BANDS)
    assert_metadata(written, BANDS)
    only(tmp_path, "in.tif", "open.tif", "resumed.tif")


# -- review fixes -----------------------------------------------------------------------
def _paletted16(tmp_path):
    import numpy as np
    from rasterio.transform import from_origin

    src = tmp_path / "classes16.tif"
    with rasterio.open(src, "w", driver="GTiff", width=64, height=64, count=1, dtype="uint16",
                       crs="EPSG:32631", transform=from_origin(0, 640, 10, 10)) as dst:
        dst.write(np.arange(64 * 64, dtype="uint16").reshape(1, 64, 64) % 300)
        dst.write_colormap(1, {0: (0, 0, 0, 255), 1: (255, 0, 0, 255), 299: (0, 255, 0, 255)})
    return str(src)


def test_like_a_uint16_palette_for_a_uint8_output_brings_none(tmp_path):
    """What like= brings never fails a write: a uint16 colour table (65536 entries) does
    not go to a uint8 output, of other classes."""
    import dask.array as da

    src = _paletted16(tmp_path)
    out = da.zeros((1, 64, 64), dtype="uint8", chunks=(1, 32, 32))
    written = rmd.to_raster(out, tmp_path / "out.tif", like=src, dtype="uint8")
    with rasterio.open(written) as dst:
        with pytest.raises(ValueError):
            dst.colormap(1)


def test_a_palette_with_a_lossy_codec_is_refused_before_computing(raster, tmp_path):
    from riomucho_dask.errors import ProfileError

    path, _ = raster(count=1, dtype="uint8")
    with pytest.raises(ProfileError, match="colour table cannot go with compress='jpeg'"):
        rmd.to_raster(rmd.open_raster(path), tmp_path / "o.tif", driver="COG",
                      compress="jpeg", colormap={0: (0, 0, 0), 1: (255, 0, 0)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_a_tiff_profile_without_gdal_metadata_is_refused(raster, tmp_path):
    from riomucho_dask.errors import ProfileError

    path, _ = raster(count=1, dtype="uint8")
    for extra in ({"tags": {"source": "a"}}, {"stats": True}):
        with pytest.raises(ProfileError, match="keeps no GDAL metadata"):
            rmd.to_raster(rmd.open_raster(path), tmp_path / "o.tif", like=path,
                          PROFILE="GeoTIFF", **extra)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_cli_co_keys_that_are_not_creation_options(raster, tmp_path):
    from click.testing import CliRunner

    from riomucho_dask import cli

    path, _ = raster()
    for key, says in (("stats=yes", "use --stats"), ("tags=x", "--description/--tag"),
                      ("profile=GeoTIFF", "not a creation option")):
        result = CliRunner().invoke(cli.mucho, ["run", "tests.runfuncs:passthrough", path,
                                                str(tmp_path / "o.tif"), "--co", key])
        assert result.exit_code == 2 and says in result.output, result.output
        assert "Traceback" not in result.output
