"""Fixtures: small generated rasters and a serial rasterio reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin

from riomucho_dask import cli
from riomucho_dask.map.contract import array_stack

TRANSFORM = from_origin(500000.0, 4200000.0, 10.0, 10.0)
CRS = "EPSG:32631"


def make_raster(path, *, count=3, height=97, width=131, dtype="uint16", tiled=True,
                block=32, nodata=None, crs=CRS, transform=TRANSFORM, seed=0,
                compress=None):
    """Write a deterministic raster with smooth fields plus noise; return (path, data)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    bands = []
    for band in range(count):
        field = np.sin(rows / (7.0 + band)) + np.cos(cols / (11.0 + band))
        bands.append(field + rng.normal(0, 0.2, size=(height, width)))
    data = np.stack(bands)
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        low, high = max(info.min, -1000), min(info.max, 60000)
        data = low + (data - data.min()) / (np.ptp(data) or 1) * (high - low)
        data = np.clip(np.round(data), info.min, info.max)
    data = data.astype(dtype)
    if nodata is not None:
        data[:, :3, :5] = nodata
    profile = dict(driver="GTiff", count=count, height=height, width=width, dtype=dtype.name,
                   crs=crs, transform=transform)
    if tiled:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    else:
        profile.update(tiled=False, blockysize=max(1, block // 4))
    if nodata is not None:
        profile["nodata"] = nodata
    if compress:
        profile["compress"] = compress
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return str(path), data


@pytest.fixture
def raster(tmp_path):
    """Factory: ``raster(name, **options)`` writes a raster in tmp_path."""
    def factory(name="in.tif", **options):
        return make_raster(tmp_path / name, **options)
    return factory


def block_windows(path):
    with rasterio.open(path) as src:
        return [(window, ij) for ij, window in src.block_windows()]


def serial_reference(run_function, inputs, out_path, *, mode="simple_read", windows=None,
                     global_args=None, profile=None, count=None, dtype=None):
    """The plain rasterio loop every output is compared with."""
    windows = windows if windows is not None else block_windows(inputs[0])
    global_args = {} if global_args is None else global_args
    srcs = [rasterio.open(p) for p in inputs]
    try:
        out_profile = dict(srcs[0].profile)
        out_profile.update(profile or {})
        if count is not None:
            out_profile["count"] = count
        if dtype is not None:
            out_profile["dtype"] = np.dtype(dtype).name
            if out_profile["dtype"] != srcs[0].dtypes[0] and "nodata" not in (profile or {}):
                # as to_raster: an input's nodata is no value of another dtype's
                out_profile["nodata"] = None
        with rasterio.open(out_path, "w", **out_profile) as dst:
            for window, ij in windows:
                if mode == "manual_read":
                    data = srcs
                elif mode == "array_read":
                    data = array_stack([s.read(window=window) for s in srcs])
                else:
                    data = [s.read(window=window) for s in srcs]
                dst.write(run_function(data, window, ij, global_args), window=window)
    finally:
        for s in srcs:
            s.close()
    return str(out_path)


def assert_same_raster(path, reference):
    """Pixels bit for bit, plus dtype, count, CRS, transform and nodata."""
    with rasterio.open(path) as got, rasterio.open(reference) as want:
        assert got.dtypes == want.dtypes
        assert got.count == want.count
        assert got.crs == want.crs
        assert got.transform == want.transform
        assert got.nodata == want.nodata or (
            np.isnan(got.nodata) and np.isnan(want.nodata)
        )
        assert np.array_equal(got.read(), want.read(), equal_nan=got.dtypes[0].startswith("f"))


@pytest.fixture(scope="session")
def cluster_client():
    """One 2-worker LocalCluster of processes for the whole session.

    The client is not set as default: tests pass it as ``scheduler=``
    (or make it current) so other tests keep their own schedulers.
    """
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        with Client(cluster, set_as_default=False) as client:
            yield client


@pytest.fixture(params=["sync", "threads", "processes", "distributed"])
def scheduler(request):
    """Each pipeline test runs on every scheduler."""
    if request.param == "distributed":
        return request.getfixturevalue("cluster_client")
    return request.param


@pytest.fixture(params=["sync", "threads"])
def local_scheduler(request):
    """Schedulers that run in this process (where compute=False graphs run)."""
    return request.param


# -- a full disk, for real where mounting is allowed --------------------------------------


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 256 kB file system (a tmpfs, mounted as root, as on the development machines
    and CI).  Where mounting is not allowed, the same folder on the normal disk with the
    writes failing as on a full disk (GDAL's "Write failed", no room left)."""
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                                  str(folder)], capture_output=True).returncode == 0
    except OSError:  # no mount command
        mounted = False
    if not mounted:
        import shutil as shutil_module
        from collections import namedtuple

        from rasterio.errors import RasterioIOError

        from riomucho_dask.write.writers.gdal import GDALWriter

        usage = namedtuple("usage", "total used free")
        real = shutil_module.disk_usage
        monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(1, 1, 0)
                            if str(path).startswith(str(folder)) else real(path))

        def full(self, block, window):
            self._open()  # the temporary file is made, then the disk is full
            raise RasterioIOError("Write failed. See previous exception for details.")

        monkeypatch.setattr(GDALWriter, "write", full)
    try:
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


# -- real servers on 127.0.0.1: an S3-compatible store (moto) and an HTTP server ------------

#: The S3 test credentials; the secret must never show in a repr, an error or a log.
S3_KEY_ID = "AKIDRIOMUCHOTEST"
S3_SECRET = "riomucho-secret-never-shown-8c1f"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(args: list[str], port: int, cwd=None):
    """Start a server process (``python ARGS``) and wait until it accepts on ``port``.

    A process of its own, not a thread: GDAL may hold this process's GIL while it
    waits for an answer, which would starve a server thread of this process.
    """
    import socket
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"server {args} did not start on port {port}") from None
            time.sleep(0.1)


def _stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except Exception:
        process.kill()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server (its own process) on a free port of 127.0.0.1: ``host:port``."""
    port = _free_port()
    process = _serve(["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _stop(process)


class S3:
    """A fresh bucket, a boto3 client to check objects, and the rasterio.Env to reach it."""

    def __init__(self, endpoint: str, bucket: str):
        import boto3
        from rasterio.session import AWSSession

        self.bucket = bucket
        self.client = boto3.client(
            "s3", endpoint_url=f"http://{endpoint}", aws_access_key_id=S3_KEY_ID,
            aws_secret_access_key=S3_SECRET, region_name="us-east-1")
        self.client.create_bucket(Bucket=bucket)
        self.session = AWSSession(aws_access_key_id=S3_KEY_ID, aws_secret_access_key=S3_SECRET,
                                  endpoint_url=endpoint)

    def env(self):
        return rasterio.Env(self.session, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE")

    def put(self, local, key) -> str:
        self.client.upload_file(str(local), self.bucket, key)
        return f"s3://{self.bucket}/{key}"

    def keys(self) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def get(self, key, local) -> str:
        self.client.download_file(self.bucket, key, str(local))
        return str(local)


@pytest.fixture
def s3(s3_endpoint, request):
    import re

    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    return S3(s3_endpoint, f"rmd-{bucket}")


#: An HTTP server answering range requests, for the files of the working directory.
HTTP_SERVER = """
import functools, sys
from http.server import ThreadingHTTPServer
from RangeHTTPServer import RangeRequestHandler

class Quiet(RangeRequestHandler):
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Quiet).serve_forever()
"""


@pytest.fixture(scope="session")
def http_root(tmp_path_factory):
    """An HTTP server (its own process) answering range requests for the files of a
    folder: ``(folder, "http://127.0.0.1:port")``."""
    folder = tmp_path_factory.mktemp("http")
    port = _free_port()
    process = _serve(["-c", HTTP_SERVER, str(port)], port, cwd=folder)
    try:
        yield folder, f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def unaccounted_bytes(path) -> int:
    """Bytes of a TIFF that are neither header, IFD (with its values) nor a tile
    it points to: a tile written twice would show here."""
    from riomucho_dask.write.tiff import ifd as tiff

    data = Path(path).read_bytes()
    big = data[2] == 43
    ifds = tiff.read_ifds(data)
    used = tiff.HEADER_SIZE[big] + sum(tiff.ifd_size(ifd, big) for ifd in ifds)
    used += sum(int(ifd[tiff.TILE_BYTE_COUNTS].values().sum()) for ifd in ifds)
    return len(data) - used


# -- a counting, flaky HTTP server for the STAC tests -------------------------------------

#: Serves the files of its working directory with range requests (GET, HEAD), counts the
#: requests per path and fails them on demand.  Control (not counted), answered as JSON,
#: by GET or POST:
#:   /__control/count?pattern=P   {"count": n, "paths": {path: n}} of paths containing P
#:   /__control/fail?pattern=P&times=N&status=S   the next N (no times: all) requests whose
#:                                path contains P answer S (503 unless given)
#:   /__control/reset             counts to zero, failures cleared
STAC_HTTP_SERVER = r'''
import json, os, re, sys, threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LOCK = threading.Lock()
COUNTS = {}    # path -> requests
FAILURES = []  # [pattern, remaining (None: always), status]
RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self._handle(body=True)

    def do_HEAD(self):
        self._handle(body=False)

    def do_POST(self):
        if self._path().startswith("/__control/"):
            self._control()
        else:
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    def _path(self):
        return unquote(urlsplit(self.path).path)

    def _handle(self, body):
        path = self._path()
        if path.startswith("/__control/"):
            return self._control()
        with LOCK:
            COUNTS[path] = COUNTS.get(path, 0) + 1
            status = None
            for rule in FAILURES:
                if rule[0] in path and rule[1] != 0:
                    if rule[1] is not None:
                        rule[1] -= 1
                    status = rule[2]
                    break
        if status is not None:
            return self.send_error(status)
        local = self.translate_path(self.path)
        if not os.path.isfile(local):  # folders: the standard listing (or 404)
            return super().do_GET() if body else super().do_HEAD()
        size = os.path.getsize(local)
        first, last, match = 0, size - 1, RANGE.match(self.headers.get("Range", "").strip())
        if match and match.group(1) + match.group(2):
            if match.group(1):
                first = int(match.group(1))
                last = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:  # bytes=-N: the last N bytes
                first = max(0, size - int(match.group(2)))
            if first >= size or last < first:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", self.guess_type(local))
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", self.date_time_string(os.path.getmtime(local)))
        self.end_headers()
        if body:
            with open(local, "rb") as f:
                f.seek(first)
                self.wfile.write(f.read(last - first + 1))

    def _control(self):
        action = self._path()[len("/__control/"):]
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        pattern = query.get("pattern", "")
        with LOCK:
            if action == "count":
                paths = {p: n for p, n in sorted(COUNTS.items()) if pattern in p}
                answer = {"count": sum(paths.values()), "paths": paths}
            elif action == "fail":
                times = int(query["times"]) if query.get("times") not in (None, "") else None
                FAILURES.append([pattern, times, int(query.get("status", 503))])
                answer = {"failures": FAILURES}
            elif action == "reset":
                COUNTS.clear()
                FAILURES.clear()
                answer = {"reset": True}
            else:
                return self.send_error(HTTPStatus.NOT_FOUND, f"no control {action!r}")
        data = json.dumps(answer).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
server.serve_forever()
'''


class StacHTTP:
    """Client of the counting, flaky HTTP server (see :data:`STAC_HTTP_SERVER`).

    ``root`` is the folder served at ``url``: a file ``root / "a.tif"`` is
    ``f"{url}/a.tif"``.  ``requests(pattern)`` counts the GET and HEAD requests since the
    last reset whose path contains ``pattern``; ``fail(pattern, times, status)`` makes
    the next ``times`` of them (``None``: all, until reset) answer ``status``.

    GDAL caches what it read over HTTP for the whole process, past a file's close:
    file sizes, data (16 kB chunks), directory listings, and failures too (an open that
    got a 503 fails again, without a request, until the cache is cleared).  Checked on
    GDAL 3.10: a second read of the same URL makes no request at all, and
    ``rasterio.Env(CPL_VSIL_CURL_CACHE_SIZE=0)`` changes nothing.  So that counts and
    failures see every read, a test

    * reads files no other test reads (a folder of its own: ``stac_server.root /
      tmp_path.name`` at ``f"{stac_server.url}/{tmp_path.name}"``), or calls
      :func:`vsicurl_clear_cache` before what it counts, or reads under
      ``rasterio.Env(CPL_VSIL_CURL_NON_CACHED=f"/vsicurl/{stac_server.url}")`` (a prefix;
      nothing under it is cached, every read is a request; in this process only: the
      workers of the processes and distributed schedulers have caches of their own);
    * reads under ``rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR")``: otherwise
      opening ``a.tif`` also lists the folder and probes ``a.tif.aux.xml``, ``a.aux``,
      ``a.tif.msk`` ... (which a pattern ``"a.tif"`` counts too);
    * compares counts loosely (zero or not, more or fewer): GDAL merges neighbouring
      blocks into one range request and reads ahead, so exact numbers are GDAL's.

    Retries (GDAL 3.10, as measured): opening a file does not retry a 503 unless
    ``GDAL_HTTP_MAX_RETRY`` is set (then it does, after ``GDAL_HTTP_RETRY_DELAY``
    seconds: ``fail(p, times=2)`` and ``GDAL_HTTP_MAX_RETRY=2`` open fine); reading
    an open file's data got through ``fail(p, times=2)`` even without it (and failed
    with ``times=3``, "Read failed"): to make a read fail, fail every request
    (``times=None``).
    """

    def __init__(self, root: Path, url: str):
        self.root = Path(root)
        self.url = url

    def _control(self, action: str, **query) -> dict:
        import json
        from urllib.parse import urlencode
        from urllib.request import urlopen

        query = {k: v for k, v in query.items() if v is not None}
        with urlopen(f"{self.url}/__control/{action}?{urlencode(query)}", timeout=10) as r:
            return json.loads(r.read())

    def requests(self, pattern: str = "") -> int:
        return self._control("count", pattern=pattern)["count"]

    def counts(self, pattern: str = "") -> dict[str, int]:
        """Requests per path (of the paths containing ``pattern``)."""
        return self._control("count", pattern=pattern)["paths"]

    def fail(self, pattern: str, times: int | None = None, status: int = 503) -> None:
        self._control("fail", pattern=pattern, times=times, status=status)

    def reset(self) -> None:
        self._control("reset")

    def __repr__(self):
        return f"StacHTTP({str(self.root)!r}, {self.url!r})"


def vsicurl_clear_cache() -> None:
    """Empty GDAL's /vsicurl/ caches of this process (``VSICurlClearCache``, which
    rasterio does not wrap: called in the libgdal rasterio is linked with)."""
    from riomucho_dask.gdal_c import library

    library().VSICurlClearCache()


@pytest.fixture(scope="session")
def stac_http(tmp_path_factory):
    """The counting, flaky HTTP server (its own process) for the session:
    a :class:`StacHTTP` (``.root``, ``.url``, ``.requests``, ``.fail``, ``.reset``)."""
    folder = tmp_path_factory.mktemp("stac-http")
    port = _free_port()
    process = _serve(["-c", STAC_HTTP_SERVER, str(port)], port, cwd=folder)
    try:
        yield StacHTTP(folder, f"http://127.0.0.1:{port}")
    finally:
        _stop(process)


@pytest.fixture
def stac_server(stac_http):
    """:func:`stac_http`, reset: no counts, no failures."""
    stac_http.reset()
    yield stac_http
    stac_http.reset()


@pytest.fixture
def invoke():
    """The command line, in this process: ``invoke("run", ...)`` -> click's Result."""
    runner = CliRunner()

    def call(*args):
        return runner.invoke(cli.mucho, [str(arg) for arg in args])
    return call
