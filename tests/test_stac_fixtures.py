"""The STAC test infrastructure itself: the counting, flaky HTTP server and the catalog."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import date, datetime, timezone

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.features import geometry_mask
from rasterio.warp import transform_geom

from tests.conftest import make_raster, vsicurl_clear_cache
from tests.stac_catalog import (
    ASSETS,
    PROJECTION_V1,
    PROJECTION_V2,
    aoi_grid,
    group_by_solar_day,
    group_by_time,
    item_grid,
    local_path,
    make_catalog,
    serial_reference,
    solar_day_items,
    write_item_collection,
)

NO_LISTING = dict(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR")


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_range_requests_and_counts(stac_server, tmp_path):
    data = bytes(range(256)) * 4
    (stac_server.root / f"{tmp_path.name}.bin").write_bytes(data)
    url = f"{stac_server.url}/{tmp_path.name}.bin"
    status, headers, body = _get(url, {"Range": "bytes=10-19"})
    assert (status, body) == (206, data[10:20])
    assert headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert _get(url, {"Range": "bytes=1000-"})[2] == data[1000:]
    assert _get(url, {"Range": "bytes=-4"})[2] == data[-4:]
    assert _get(url, {"Range": "bytes=0-0"})[2] == data[:1]
    assert _get(url, {"Range": f"bytes={len(data)}-"})[0] == 416
    status, _, body = _get(url)
    assert (status, body) == (200, data)
    head = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(head, timeout=10) as response:
        assert response.headers["Content-Length"] == str(len(data))
    assert _get(f"{stac_server.url}/missing-{tmp_path.name}")[0] == 404
    assert stac_server.requests(tmp_path.name) == 8
    assert stac_server.requests(f"{tmp_path.name}.bin") == 7
    assert stac_server.requests() == 8  # control requests are not counted
    assert stac_server.counts(tmp_path.name)[f"/{tmp_path.name}.bin"] == 7
    stac_server.reset()
    assert stac_server.requests() == 0


def test_fail_times_then_answers(stac_server, tmp_path):
    (stac_server.root / f"{tmp_path.name}.bin").write_bytes(b"abc")
    url = f"{stac_server.url}/{tmp_path.name}.bin"
    stac_server.fail(tmp_path.name, times=2)
    assert [_get(url)[0] for _ in range(3)] == [503, 503, 200]
    stac_server.fail(".bin", status=404)  # every time, until reset
    assert [_get(url)[0] for _ in range(3)] == [404, 404, 404]
    assert stac_server.requests(tmp_path.name) == 6
    stac_server.reset()
    assert _get(url)[0] == 200
    # control by POST, answered as JSON
    request = urllib.request.Request(f"{stac_server.url}/__control/fail?pattern=x&times=1",
                                     method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["failures"] == [["x", 1, 503]]


def test_rasterio_reads_over_http_and_is_counted(stac_server, tmp_path):
    path, data = make_raster(stac_server.root / f"{tmp_path.name}.tif", count=1)
    url = f"{stac_server.url}/{tmp_path.name}.tif"
    for name in (url, f"/vsicurl/{url}"):
        vsicurl_clear_cache()
        stac_server.reset()
        with rasterio.Env(**NO_LISTING), rasterio.open(name) as src:
            assert np.array_equal(src.read(), data)
        assert stac_server.requests(tmp_path.name) > 0
        assert set(stac_server.counts()) == {f"/{tmp_path.name}.tif"}  # no probes
    # GDAL's cache: the same URL again makes no request ...
    stac_server.reset()
    with rasterio.Env(**NO_LISTING), rasterio.open(url) as src:
        src.read()
    assert stac_server.requests() == 0
    # ... unless the URL is not cached
    with rasterio.Env(**NO_LISTING, CPL_VSIL_CURL_NON_CACHED=f"/vsicurl/{stac_server.url}"):
        with rasterio.open(url) as src:
            src.read()
    assert stac_server.requests() > 0


def test_failing_path_makes_rasterio_fail(stac_server, tmp_path):
    make_raster(stac_server.root / f"{tmp_path.name}.tif", count=1)
    url = f"{stac_server.url}/{tmp_path.name}.tif"
    stac_server.fail(tmp_path.name)
    with rasterio.Env(**NO_LISTING), pytest.raises(rasterio.errors.RasterioIOError, match="503"):
        rasterio.open(url)
    assert stac_server.requests() >= 1
    # GDAL retries a 503 when told to
    stac_server.reset()
    vsicurl_clear_cache()  # GDAL remembers the failure too
    stac_server.fail(tmp_path.name, times=2)
    with rasterio.Env(**NO_LISTING, GDAL_HTTP_MAX_RETRY=2, GDAL_HTTP_RETRY_DELAY=0.01):
        with rasterio.open(url) as src:
            assert src.read().shape == (1, 97, 131)
    assert stac_server.requests() > 2
    # failing after the open: the read fails
    make_raster(stac_server.root / f"{tmp_path.name}-b.tif", count=1, height=300, width=300)
    with rasterio.Env(**NO_LISTING), rasterio.open(f"{url[:-4]}-b.tif") as src:
        stac_server.fail(f"{tmp_path.name}-b.tif")
        with pytest.raises(rasterio.errors.RasterioIOError, match="Read failed"):
            src.read()


# -- the catalog -------------------------------------------------------------------------


@pytest.mark.parametrize("projection, proj_level", [("v2", "asset"), ("v1", "asset"),
                                                    ("v2", "mixed"), (None, "asset")])
def test_catalog_metadata_is_the_files(tmp_path, projection, proj_level):
    items = make_catalog(tmp_path, "http://example.test/cat", days=2, projection=projection,
                         proj_level=proj_level)
    assert [item["id"] for item in items] == [
        "S31_20240601_A", "S32_20240601_B", "S31_20240601_C",
        "S31_20240602_A", "S32_20240602_B", "S31_20240602_C"]
    crss = set()
    for item in items:
        assert item["type"] == "Feature" and item["stac_version"] == "1.0.0"
        assert item["properties"]["datetime"].endswith("Z")
        ring = item["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and len(ring) == 5
        west, south, east, north = item["bbox"]
        assert all(west <= lon <= east and south <= lat <= north for lon, lat in ring)
        assert 5.9 < west < east < 6.1 and 44.9 < south < north < 45.1
        assert (PROJECTION_V2 in item["stac_extensions"]) == (projection == "v2")
        assert (PROJECTION_V1 in item["stac_extensions"]) == (projection == "v1")
        for key, asset in item["assets"].items():
            assert asset["href"] == f"http://example.test/cat/{item['id']}_{key}.tif"
            assert asset["type"] == "image/tiff; application=geotiff"
            assert asset["raster:bands"] == [{"data_type": "uint16", "nodata": 0,
                                              "spatial_resolution": ASSETS[key][0]}]
            crs, transform, width, height = item_grid(item, key)
            crss.add(crs.to_string())
            with rasterio.open(local_path(asset["href"])) as src:
                assert src.nodata == 0 and src.dtypes == ("uint16",)
                assert src.block_shapes == [(16, 16)]
                data = src.read(1)
                assert (data == 0).any() and (data > 0).mean() > 0.5
            if projection is None:
                assert not [k for k in {**asset, **item["properties"]} if k.startswith("proj")]
                continue
            where = asset if proj_level == "asset" else item["properties"]
            if projection == "v2":
                assert where["proj:code"] == crs.to_string()
                assert "proj:epsg" not in where
            else:
                assert where["proj:epsg"] == crs.to_epsg()
                assert "proj:code" not in where
            assert Affine(*asset["proj:transform"]) == transform
            assert len(asset["proj:transform"]) == 6
            assert asset["proj:shape"] == [height, width]
            assert (width, transform.a) == (ASSETS[key][1], ASSETS[key][0])
    assert crss == {"EPSG:32631", "EPSG:32632"}


def test_catalog_served_over_http(stac_server, tmp_path):
    items = make_catalog(stac_server.root / tmp_path.name,
                         f"{stac_server.url}/{tmp_path.name}", days=1, scenes="B")
    href = items[0]["assets"]["swir"]["href"]
    with rasterio.Env(**NO_LISTING), rasterio.open(href) as src:
        remote = src.read(1)
    with rasterio.open(local_path(href)) as src:
        assert np.array_equal(remote, src.read(1))
    assert set(stac_server.counts()) == {f"/{tmp_path.name}/S32_20240601_B_swir.tif"}


def test_scenes_of_both_zones_overlap_the_aoi(tmp_path):
    a, b, c = make_catalog(tmp_path, "http://example.test", days=1)
    grid = aoi_grid()
    alone = {item["id"][-1]: serial_reference([[item]], ["red"], grid, masked=True)
             for item in (a, b, c)}
    valid = {k: ~v.mask[0, 0] for k, v in alone.items()}
    assert all(0.05 < v.mean() < 0.5 for v in valid.values())
    assert (valid["A"] & valid["B"] & valid["C"]).sum() > 500
    for level, key in enumerate("ABC"):  # a pixel's value tells its scene
        assert (alone[key].compressed() // 3000 == level).all()
    # the edges of the grid are covered by no scene
    anyone = valid["A"] | valid["B"] | valid["C"]
    assert not anyone[0].any() and not anyone[-1].any()
    assert not anyone[:, 0].any() and not anyone[:, -1].any()


def test_solar_day_grouping(tmp_path):
    items = solar_day_items(tmp_path, "http://example.test")
    ids = [[item["id"] for item in group.items] for group in group_by_solar_day(items)]
    assert ids == [["solar_west_2320"], ["solar_east_2350", "solar_east_0100"]]
    groups = group_by_solar_day(items)
    assert [g.key for g in groups] == [date(2024, 6, 1), date(2024, 6, 2)]
    assert groups[1].time == datetime(2024, 6, 1, 23, 50, tzinfo=timezone.utc)
    assert [len(g.items) for g in group_by_time(items)] == [1, 1, 1]
    # order within a group is the order given
    flipped = group_by_solar_day(items[::-1])
    assert [i["id"] for i in flipped[1].items] == ["solar_east_0100", "solar_east_2350"]
    # the catalog's days: one solar day each, A and B at one time
    catalog = make_catalog(tmp_path / "cat", "http://example.test", days=2)
    assert [len(g.items) for g in group_by_solar_day(catalog)] == [3, 3]
    assert [[i["id"][-1] for i in g.items] for g in group_by_time(catalog)] == [
        ["A", "B"], ["C"], ["A", "B"], ["C"]]


def test_serial_reference_first_valid_wins(tmp_path):
    a, b, c = make_catalog(tmp_path, "http://example.test", days=1)
    grid = aoi_grid()
    assets = ["red", "swir"]
    got = serial_reference([[a, b], [b, a]], assets, grid)
    assert got.shape == (2, 2, grid.height, grid.width) and got.dtype == np.uint16
    masked = serial_reference([[a, b], [b, a]], assets, grid, masked=True)
    assert isinstance(masked, np.ma.MaskedArray)
    assert np.array_equal(masked.filled(0), got) and masked.mask.any()
    assert (got[masked.mask] == 0).all() and (got[~masked.mask] > 0).all()
    only_a = serial_reference([[a]], assets, grid, masked=True)[0]
    only_b = serial_reference([[b]], assets, grid, masked=True)[0]
    # inside A's footprint, in its nodata corner, where B is valid: B's pixels
    footprint = geometry_mask([transform_geom("EPSG:4326", grid.crs, a["geometry"])],
                              (grid.height, grid.width), grid.transform, invert=True)
    corner = footprint & only_a.mask[0] & ~only_b.mask[0]
    assert corner.sum() > 500
    for step in (0, 1):
        assert np.array_equal(got[step, 0][corner], only_b.data[0][corner])
    # where both are valid, the first of the step wins
    both = ~only_a.mask & ~only_b.mask
    assert both[0].sum() > 1000 and (only_a.data[both] != only_b.data[both]).all()
    assert np.array_equal(got[0][both], only_a.data[both])
    assert np.array_equal(got[1][both], only_b.data[both])
    assert set(np.unique(got[0, 0] // 3000)) == {0, 1}  # 0: A, 1: B (and 0 for nodata)
    # another dtype and nodata
    floats = serial_reference([[a, b]], ["red"], grid, dtype="float32", nodata=-1)
    assert floats.dtype == np.float32 and (floats == -1).any()
    assert np.array_equal(floats[floats != -1], got[0, 0][got[0, 0] > 0])


def test_write_item_collection(tmp_path):
    items = make_catalog(tmp_path, "http://example.test", days=1, projection="v1")
    path = write_item_collection(items, tmp_path / "items.json")
    loaded = json.loads(path.read_text())
    assert loaded["type"] == "FeatureCollection" and loaded["features"] == items
