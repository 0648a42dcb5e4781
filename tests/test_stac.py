"""STAC items read as a series onto a grid: a catalog of two UTM zones, two
resolutions and three scenes a day, served by a local HTTP server that counts
requests and fails them on demand (tests/stac_catalog.py, tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio

import riomucho_dask as rmd
from riomucho_dask.errors import InputError, InputReadError
from tests import runfuncs
from tests.stac_catalog import (
    aoi_grid,
    group_by_solar_day,
    group_by_time,
    make_catalog,
    serial_reference,
    solar_day_items,
    write_item_collection,
)

ASSETS = ["red", "swir"]
#: GDAL lists a file's folder on open unless told not to: requests the counts
#: would see, and none a STAC reader needs.
NO_LISTING = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


def grid(resolution=10.0, crs="EPSG:32631") -> rmd.Grid:
    g = aoi_grid(crs, resolution)
    return rmd.Grid(g.crs, g.transform, g.width, g.height)


@pytest.fixture
def catalog(stac_server, tmp_path):
    """Three days of three scenes (9 items), served over HTTP from a folder of this
    test's own (GDAL caches what it read for the whole process)."""
    folder = stac_server.root / tmp_path.name
    return make_catalog(folder, f"{stac_server.url}/{tmp_path.name}", days=3)


def steps_of(groups):
    return [list(group.items) for group in groups]


def test_grouping_by_solar_day_time_and_none(catalog):
    by_day = rmd.stac_series(catalog, ASSETS)
    want = group_by_solar_day(catalog)
    assert len(by_day) == 3 == len(want)
    assert by_day.times == tuple(group.time for group in want)
    assert by_day.bands == ("red", "swir")
    by_time = rmd.stac_series(catalog, ASSETS, groupby="time")
    assert by_time.times == tuple(group.time for group in group_by_time(catalog))
    assert len(by_time) == 6  # A and B at one time, C ten minutes later, each day
    each = rmd.stac_series(catalog, "red", groupby=None)
    assert len(each) == 9 and each.bands == ("red",)


def test_solar_day_crosses_midnight_utc(stac_server, tmp_path):
    items = solar_day_items(stac_server.root / tmp_path.name,
                            f"{stac_server.url}/{tmp_path.name}")
    series = rmd.stac_series(items, ["red"])
    want = group_by_solar_day(items)
    assert [group.time for group in want] == list(series.times)
    # the scene at 23:50 UTC at 100 E is on the next solar day, with the 01:00 one
    assert series.times == (dt.datetime(2024, 6, 1, 23, 20, tzinfo=dt.timezone.utc),
                            dt.datetime(2024, 6, 1, 23, 50, tzinfo=dt.timezone.utc))
    assert len(rmd.stac_series(items, ["red"], groupby="time")) == 3


def test_open_raster_of_a_catalog_equals_the_serial_reference(catalog, stac_server):
    with rasterio.Env(**NO_LISTING):
        series = rmd.stac_series(catalog, ASSETS)
        cube = rmd.open_raster(series, grid=grid(), chunks=64)
        median = rmd.map_windows(runfuncs.series_median, [series], grid=grid(),
                                 dtype="float32")
        rmd.to_xarray(median)
        assert stac_server.requests() == 0  # nothing read before compute
        assert cube.shape == (3, 2, 200, 200) and cube.dtype == np.uint16
        got = cube.compute(scheduler="threads")
    assert stac_server.requests() > 0
    want = serial_reference(steps_of(group_by_solar_day(catalog)), ASSETS, grid())
    assert np.array_equal(got, want)
    scenes = set(np.unique(got[got > 0] // 3000))
    assert scenes == {0, 1, 2}  # every scene gives pixels: a mosaic of two zones


def test_masked_catalog(catalog):
    with rasterio.Env(**NO_LISTING):
        cube = rmd.open_raster(rmd.stac_series(catalog, ASSETS), grid=grid(20.0),
                               masked=True).compute()
    want = serial_reference(steps_of(group_by_solar_day(catalog)), ASSETS, grid(20.0),
                            masked=True)
    assert np.array_equal(np.ma.getmaskarray(cube), want.mask)
    assert np.array_equal(cube.filled(0), want.filled(0))
    assert want.mask.any() and not want.mask.all()


def test_map_windows_median_on_a_cluster(catalog, tmp_path, cluster_client):
    calls = tmp_path / "calls"
    calls.mkdir()
    with rasterio.Env(**NO_LISTING):
        series = rmd.stac_series(catalog, ASSETS)
        out = rmd.map_windows(runfuncs.series_median, [series], grid=grid(),
                              windows=_windows(200, 80), dtype="float32",
                              global_args={"calls": str(calls)})
        written = rmd.to_raster(out, tmp_path / "median.tif", scheduler=cluster_client)
    want = serial_reference(steps_of(group_by_solar_day(catalog)), ASSETS, grid())
    with rasterio.open(written) as src:
        assert np.array_equal(src.read(), np.median(want.astype("float64"), axis=0)
                              .astype("float32"))
        assert src.crs == grid().crs and src.transform == grid().transform
    assert runfuncs.calls_per_window(calls) == {(i, j): 1 for i in range(3) for j in range(3)}


def _windows(size, step):
    return [rasterio.windows.Window(c, r, min(step, size - c), min(step, size - r))
            for r in range(0, size, step) for c in range(0, size, step)]


def test_series_beside_a_plain_raster_and_to_xarray(catalog, tmp_path):
    pytest.importorskip("rioxarray")
    g = grid(20.0)
    dem = tmp_path / "dem.tif"
    with rasterio.open(dem, "w", driver="GTiff", count=1, height=g.height, width=g.width,
                       dtype="int16", crs=g.crs, transform=g.transform) as dst:
        dst.write(np.arange(g.height * g.width, dtype="int16").reshape(1, g.height, g.width))
    with rasterio.Env(**NO_LISTING):
        series = rmd.stac_series(catalog, ASSETS)
        out = rmd.map_windows(runfuncs.series_minus_dem, [series, str(dem)], grid=g,
                              count=1, dtype="float32").compute()
        cube = rmd.to_xarray(rmd.open_raster(series, grid=g))
    want = serial_reference(steps_of(group_by_solar_day(catalog)), ASSETS, g)
    with rasterio.open(dem) as src:
        assert np.array_equal(out[0], want[0, 0].astype("float32") - src.read(1))
    assert list(cube.band.values) == ASSETS
    assert [str(t)[:16] for t in cube.time.values] == [
        f"2024-06-0{d}T10:06" for d in (1, 2, 3)]
    assert cube.rio.crs == g.crs and cube.rio.transform() == g.transform
    assert np.array_equal(cube.sel(band="swir").isel(time=1).values, want[1, 1])


def test_a_window_no_item_touches_reads_nothing(catalog, stac_server):
    with rasterio.Env(**NO_LISTING):
        cube = rmd.open_raster(rmd.stac_series(catalog, ASSETS), grid=grid(), chunks=32)
        corner = cube[:, :, :16, :16].compute()  # the grid's edge: no scene there
        assert stac_server.requests() == 0
        assert not corner.any()
        middle = cube[:, :, 96:112, 96:112].compute()  # the middle: scenes overlap
    read = {path.rsplit("/", 1)[-1] for path in stac_server.counts()}
    assert read and read <= _files(catalog) and middle.all()
    # a mosaic stops at its first file that fills the window: A, each day
    assert all("_A_" in name for name in read)


def test_a_slice_reads_only_the_items_it_touches(catalog, stac_server):
    g = grid()
    with rasterio.Env(**NO_LISTING):
        series = rmd.stac_series(catalog, ["red"])
        cube = rmd.open_raster(series, grid=g, chunks=16)
        # where scene A alone has pixels: the grid row and col of its top-left corner
        # region, south-west of B and south-east of C
        reference = serial_reference(steps_of(group_by_solar_day(catalog)), ["red"], g)
        only_a = np.argwhere((reference[0, 0] // 3000 == 0) & (reference[0, 0] > 0))
        row, col = (int(v) // 16 * 16 for v in only_a[len(only_a) // 2])
        cube[:, :, row:row + 16, col:col + 16].compute()
    touched = {path.rsplit("/", 1)[-1] for path in stac_server.counts()}
    assert touched and all(name.split("_")[-2] == "A" or _touches(catalog, name, g, row, col)
                           for name in touched)
    assert len(touched) < len(_files(catalog, ["red"]))


def _files(catalog, assets=ASSETS):
    return {item["assets"][key]["href"].rsplit("/", 1)[-1] for item in catalog
            for key in assets}


def _touches(catalog, name, g, row, col) -> bool:
    """Whether the file's footprint (with 4 pixels of kernel margin) reaches the
    16 x 16 window at (row, col) of the grid."""
    from rasterio.warp import transform_bounds

    for item in catalog:
        for asset in item["assets"].values():
            if asset["href"].endswith("/" + name):
                with rasterio.open(asset["href"]) as src:
                    left, bottom, right, top = transform_bounds(src.crs, g.crs, *src.bounds)
    x0, y0 = g.transform * (col - 4, row - 4)
    x1, y1 = g.transform * (col + 20, row + 20)
    return left < x1 and x0 < right and y1 < top and bottom < y0


def _graph_size(array) -> int:
    return len(dict(array.__dask_graph__()))


def test_the_graph_grows_with_windows_not_items(catalog):
    """6 items or 120 (the same scenes on 40 days): the same number of tasks."""
    few = [item for item in catalog if item["id"].split("_")[1] <= "20240602"
           and not item["id"].endswith("_C")]
    assert len(few) == 4
    many = []
    for day in range(40):
        for item in catalog[:3]:
            copy = json.loads(json.dumps(item))
            when = dt.datetime(2024, 1, 1, 10, 6, tzinfo=dt.timezone.utc) + dt.timedelta(
                days=day)
            copy["properties"]["datetime"] = when.isoformat()
            many.append(copy)
    assert len(many) == 120
    sizes = []
    for items in (catalog[:6], many):
        series = rmd.stac_series(items, ASSETS)
        out = rmd.map_windows(runfuncs.series_median, [series], grid=grid(), windows=None,
                              dtype="float32")
        cube = rmd.open_raster(series, grid=grid(), chunks=50)
        sizes.append((_graph_size(out), _graph_size(cube)))
    # one task (and the source, and its read), 16 chunks (and the source)
    assert sizes[0] == sizes[1] == (3, 17)


def test_items_without_projection_are_opened_when_the_graph_is_built(stac_server, tmp_path):
    folder, url = stac_server.root / tmp_path.name, f"{stac_server.url}/{tmp_path.name}"
    items = make_catalog(folder, url, days=1, projection=None, raster_ext=False)
    assert not any(key.startswith("proj:") for item in items for asset in
                   item["assets"].values() for key in asset)
    with rasterio.Env(**NO_LISTING):
        series = rmd.stac_series(items, ASSETS)
        assert stac_server.requests() == 0  # a Series opens nothing
        cube = rmd.open_raster(series, grid=grid())
        assert stac_server.requests() > 0  # headers, when the graph is built
        got = cube.compute()
    want = serial_reference([items], ASSETS, grid())
    assert np.array_equal(got, want)


@pytest.mark.parametrize("version", ["v1", "mixed"])
def test_projection_v1_and_crs_on_the_item(stac_server, tmp_path, version):
    folder, url = stac_server.root / tmp_path.name, f"{stac_server.url}/{tmp_path.name}"
    if version == "v1":
        items = make_catalog(folder, url, days=1, projection="v1")
    else:
        items = make_catalog(folder, url, days=1, proj_level="mixed")
    with rasterio.Env(**NO_LISTING):
        cube = rmd.open_raster(rmd.stac_series(items, ASSETS), grid=grid(20.0))
        assert stac_server.requests() == 0
        got = cube.compute()
    assert np.array_equal(got, serial_reference([items], ASSETS, grid(20.0)))


def test_pystac_objects_and_a_json_file(catalog, tmp_path):
    pystac = pytest.importorskip("pystac")
    g = grid(20.0)
    want = rmd.open_raster(rmd.stac_series(catalog, ASSETS), grid=g).compute()
    items = [pystac.Item.from_dict(item) for item in catalog]
    collection = pystac.ItemCollection(items)
    path = write_item_collection(catalog, tmp_path / "items.json")
    for given in (items, collection, str(path), path):
        with rasterio.Env(**NO_LISTING):
            series = rmd.stac_series(given, ASSETS)
            got = rmd.open_raster(series, grid=g).compute()
        assert np.array_equal(got, want), type(given)


def test_relative_hrefs_start_from_the_json_file(tmp_path):
    items = make_catalog(tmp_path / "data", "http://unused", days=1, scenes="A")
    for item in items:
        for asset in item["assets"].values():
            asset["href"] = "data/" + asset["href"].rsplit("/", 1)[-1]
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    got = rmd.open_raster(rmd.stac_series(str(path), ["red"]), grid=grid()).compute()
    with rasterio.open(tmp_path / "data" / items[0]["assets"]["red"]["href"][5:]) as src:
        assert src.read(1).max() == got.max()


def test_503s_are_retried(catalog, stac_server):
    red = catalog[0]["assets"]["red"]["href"].rsplit("/", 1)[-1]
    stac_server.fail(red, times=2)
    with rasterio.Env(**NO_LISTING):
        got = rmd.open_raster(rmd.stac_series(catalog, ASSETS), grid=grid()).compute()
    assert stac_server.requests(red) >= 3  # two 503s, then answers
    want = serial_reference(steps_of(group_by_solar_day(catalog)), ASSETS, grid())
    assert np.array_equal(got, want)


def test_a_broken_asset_is_named_with_its_date_and_window(catalog, stac_server, tmp_path):
    broken = catalog[4]["assets"]["swir"]["href"]  # day 2, scene B
    stac_server.fail(broken.rsplit("/", 1)[-1])
    out = tmp_path / "median.tif"
    with rasterio.Env(**NO_LISTING), dask_retries(1), pytest.raises(InputReadError) as err:
        series = rmd.stac_series(catalog, ASSETS)
        median = rmd.map_windows(runfuncs.series_median, [series], grid=grid(),
                                 dtype="float32")
        rmd.to_raster(median, out, scheduler="threads")
    message = str(err.value)
    assert broken.rsplit("/", 1)[-1] in message
    assert "2024-06-02T10:06:00+00:00" in message and "window" in message
    assert not out.exists() and list(tmp_path.iterdir()) == []


def dask_retries(count):
    import dask

    return dask.config.set({"riomucho_dask.http-retries": count,
                            "riomucho_dask.http-retry-delay": 0.01})


def test_unknown_asset_and_bad_items(catalog, stac_server):
    with pytest.raises(InputError, match="has no asset 'nir'"):
        rmd.stac_series(catalog, ["red", "nir"])
    with pytest.raises(InputError, match="groupby"):
        rmd.stac_series(catalog, ASSETS, groupby="day")
    with pytest.raises(InputError, match="not a STAC Item"):
        rmd.stac_series([{"type": "Feature"}], ASSETS)
    with pytest.raises(InputError, match="no properties.datetime"):
        rmd.stac_series([{"id": "x", "assets": {"red": {"href": "a.tif"}},
                          "properties": {}}], ["red"])
    with pytest.raises(InputError, match="does not exist"):
        rmd.stac_series("no-such-items.json", ASSETS)
    assert stac_server.requests() == 0


def test_cli_median_of_a_catalog(catalog, tmp_path):
    from click.testing import CliRunner

    from riomucho_dask import cli

    items = write_item_collection(catalog, tmp_path / "items.json")
    out = tmp_path / "median.tif"
    g = grid(20.0)
    left, bottom, right, top = g.bounds
    args = ["run", "tests.runfuncs:series_median", "--stac", items, "--assets", "red,swir",
            "--grid-crs", "EPSG:32631", "--grid-res", "20",
            "--grid-bounds", f"{left},{bottom},{right},{top}", "--dtype", "float32", out]
    with rasterio.Env(**NO_LISTING):
        result = CliRunner().invoke(cli.mucho, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    want = serial_reference(steps_of(group_by_solar_day(catalog)), ASSETS, g)
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(), np.median(want.astype("float64"), axis=0)
                              .astype("float32"))
        assert src.crs == g.crs and src.transform == g.transform
    result = CliRunner().invoke(cli.mucho, ["run", "tests.runfuncs:series_median", "--stac",
                                            str(items), "--assets", "red", str(out) + "2"])
    assert result.exit_code != 0 and "grid" in result.output
    result = CliRunner().invoke(cli.mucho, ["run", "tests.runfuncs:series_median", "--stac",
                                            str(items), str(out) + "3"])
    assert result.exit_code == 2 and "--stac and --assets go together" in result.output


def test_retries_are_the_users_to_turn_off(catalog, stac_server):
    """With GDAL_HTTP_MAX_RETRY=0 in the rasterio.Env the graph is built in, the
    same two 503s are an error naming the file."""
    red = catalog[0]["assets"]["red"]["href"].rsplit("/", 1)[-1]
    stac_server.fail(red, times=2)
    with rasterio.Env(GDAL_HTTP_MAX_RETRY=0, **NO_LISTING):
        cube = rmd.open_raster(rmd.stac_series(catalog, ASSETS), grid=grid())
    with pytest.raises(InputReadError, match=red):
        cube.compute(scheduler="sync")


def test_a_signed_urls_query_never_shows(catalog, stac_server, tmp_path):
    """Signed URLs (SAS tokens, presigned S3) carry their credential in the query."""
    secret = "sig=SUPERSECRETSIG%3D"
    for item in catalog:
        for asset in item["assets"].values():
            asset["href"] += f"?st=2024&sp=rl&{secret}"
    broken = catalog[4]["assets"]["swir"]["href"].split("?")[0].rsplit("/", 1)[-1]
    stac_server.fail(broken)
    with rasterio.Env(**NO_LISTING), dask_retries(0), pytest.raises(InputReadError) as err:
        series = rmd.stac_series(catalog, ASSETS)
        assert "SUPERSECRET" not in repr(series)
        rmd.to_raster(rmd.map_windows(runfuncs.series_median, [series], grid=grid(),
                                      dtype="float32"), tmp_path / "out.tif")
    assert broken in str(err.value) and "SUPERSECRET" not in str(err.value)
    assert "<query hidden>" in str(err.value)


def test_relative_hrefs_with_projection_are_absolute_in_the_graph(tmp_path, monkeypatch):
    items = make_catalog(tmp_path / "data", "http://unused", days=1, scenes="A")
    for item in items:
        for asset in item["assets"].values():
            asset["href"] = "data/" + asset["href"].rsplit("/", 1)[-1]
    monkeypatch.chdir(tmp_path)
    cube = rmd.open_raster(rmd.stac_series(items, ["red"]), grid=grid())
    monkeypatch.chdir("/")
    assert cube.compute().max() > 0


def test_assets_without_a_data_type_open_one_file_per_key(catalog, stac_server):
    for item in catalog:
        for asset in item["assets"].values():
            del asset["raster:bands"]
    with rasterio.Env(**NO_LISTING):
        series = rmd.stac_series(catalog, ASSETS)
        cube = rmd.open_raster(series, grid=grid())
        # the first file of each asset key, headers only
        opened = {path.rsplit("/", 1)[-1] for path in stac_server.counts()}
        assert opened == {catalog[0]["assets"][key]["href"].rsplit("/", 1)[-1]
                          for key in ASSETS}
        assert cube.dtype == np.uint16
        got = cube.compute()
    assert np.array_equal(got, serial_reference(steps_of(group_by_solar_day(catalog)),
                                                ASSETS, grid()))


def test_bands_of_different_nodata_declare_none(catalog):
    pytest.importorskip("rioxarray")
    for item in catalog:
        item["assets"]["swir"]["raster:bands"][0]["nodata"] = 65535
    cube = rmd.open_raster(rmd.stac_series(catalog, ASSETS), grid=grid())
    assert rmd.to_xarray(cube).rio.nodata is None
    same = rmd.open_raster(rmd.stac_series(catalog, ["red"]), grid=grid())
    assert rmd.to_xarray(same).rio.nodata == 0


def test_open_raster_grid_refusals(catalog):
    series = rmd.stac_series(catalog, ASSETS)
    with pytest.raises(InputError, match="is a CRS, not a grid.*from_bounds"):
        rmd.open_raster(series, grid="EPSG:3857")
    with pytest.raises(InputError, match="from_bounds"):
        rmd.open_raster(series, grid=("EPSG:3857", 10))
