"""The STAC test infrastructure itself: the counting, flaky HTTP server and the catalog."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import rasterio

from tests.conftest import make_raster, vsicurl_clear_cache

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
