"""Outputs on S3 uploaded from a cluster's workers, as parts of one multipart upload."""

from __future__ import annotations

import os
import pickle

import dask
import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

import riomucho_dask as rmd
from riomucho_dask.errors import RunFunctionError
from riomucho_dask.write.sinks import multipart

from . import runfuncs
from .conftest import assert_same_raster, make_raster, serial_reference

MiB = 2**20
COG = {"driver": "COG", "blocksize": 256, "compress": "deflate", "predictor": 3}
GTIFF = {"tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    """A 2048 x 2048 float32 field with noise: about 14 MB once compressed, so
    several 5 MiB parts."""
    path = tmp_path_factory.mktemp("upload") / "noise.tif"
    return make_raster(path, count=1, height=2048, width=2048, dtype="float32", block=256)[0]


@pytest.fixture
def small_parts(small_disk):
    """Parts of S3's least size, and scratch space too small for any output."""
    with dask.config.set({"riomucho_dask.scratch": str(small_disk),
                          "riomucho_dask.part-bytes": 5 * MiB}):
        yield small_disk


@pytest.fixture
def received(cluster_client, monkeypatch):
    """Bytes the client received from the cluster (results gathered), pickled."""
    counted = []
    gather = cluster_client.gather

    def spy(futures, *args, **kwargs):
        results = gather(futures, *args, **kwargs)
        counted.append(len(pickle.dumps(results)))
        return results

    monkeypatch.setattr(cluster_client, "gather", spy)
    return counted


@pytest.fixture
def no_upload_here(monkeypatch):
    """Parts uploaded in this process (the client) fail: the workers upload them."""
    def refuse(self, number, data):
        raise AssertionError(f"part {number} uploaded by the client")

    monkeypatch.setattr(multipart.Upload, "add", refuse)


def _parts(s3, key) -> int:
    """How many parts the object was uploaded in (its ETag's suffix)."""
    etag = s3.client.head_object(Bucket=s3.bucket, Key=key)["ETag"].strip('"')
    return int(etag.rsplit("-", 1)[1]) if "-" in etag else 1


def open_bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _open_uploads(s3) -> list:
    return s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])


def test_cog_uploaded_from_the_workers(noise, s3, tmp_path, cluster_client, small_parts,
                                       received, no_upload_here):
    out = rmd.map_windows(runfuncs.passthrough, [noise])
    with s3.env():
        report = rmd.to_raster(out, f"s3://{s3.bucket}/out.tif", like=noise,
                               scheduler=cluster_client, report=True, **COG)
    got = s3.get("out.tif", tmp_path / "got.tif")
    # the same bytes as a COG written here on threads (GDAL's layout, overviews included)
    local = rmd.to_raster(out, tmp_path / "local.tif", like=noise, scheduler="threads", **COG)
    assert open_bytes(got) == open_bytes(local)
    valid, errors, _ = cog_validate(got)
    assert valid and not errors
    with rasterio.open(got) as written, rasterio.open(noise) as source:
        assert np.array_equal(written.read(), source.read())
        assert written.overviews(1) == [2, 4, 8]
    size = os.path.getsize(got)
    assert _parts(s3, "out.tif") >= 3
    assert sum(received) < 0.01 * size  # no tile through the client
    assert report.total("upload") > 0
    assert os.listdir(small_parts) == [] and _open_uploads(s3) == []


@pytest.mark.parametrize("masked", [False, True])
def test_gtiff_uploaded_from_the_workers(noise, s3, tmp_path, cluster_client, small_parts,
                                         received, no_upload_here, masked):
    run = runfuncs.masks_high if masked else runfuncs.passthrough
    out = rmd.map_windows(run, [noise])
    with s3.env():
        rmd.to_raster(out, f"s3://{s3.bucket}/out.tif", like=noise, scheduler=cluster_client,
                      **GTIFF)
    got = s3.get("out.tif", tmp_path / "got.tif")
    if masked:  # an internal mask, as written here on threads
        local = rmd.to_raster(out, tmp_path / "local.tif", like=noise, scheduler="threads",
                              **GTIFF)
        with rasterio.open(got) as written, rasterio.open(local) as want:
            assert np.array_equal(written.read_masks(1), want.read_masks(1))
            assert (written.read_masks(1) == 0).any()
            assert np.array_equal(written.read(), want.read())
    else:
        reference = serial_reference(run, [noise], tmp_path / "ref.tif", profile=GTIFF)
        assert_same_raster(got, reference)
    assert _parts(s3, "out.tif") >= 2
    assert sum(received) < 0.01 * os.path.getsize(got)
    assert os.listdir(small_parts) == [] and _open_uploads(s3) == []


@pytest.mark.parametrize("options", [COG, GTIFF], ids=["COG", "GTiff"])
def test_failure_aborts_the_upload(noise, s3, tmp_path, cluster_client, small_parts, options):
    s3.client.put_object(Bucket=s3.bucket, Key="kept.tif", Body=b"an object already there")
    with s3.env():
        # (two graphs: the same keys resubmitted at once after a cancel can be reported
        # cancelled by distributed, a known race)
        for key, ij in (("kept.tif", (7, 7)), ("new.tif", (7, 6))):
            bad = rmd.map_windows(runfuncs.fails_on_one, [noise], global_args={"bad_ij": ij})
            with pytest.raises(RunFunctionError):
                rmd.to_raster(bad, f"s3://{s3.bucket}/{key}", like=noise,
                              scheduler=cluster_client, **options)
    assert s3.keys() == ["kept.tif"]
    body = s3.client.get_object(Bucket=s3.bucket, Key="kept.tif")["Body"].read()
    assert body == b"an object already there"
    assert _open_uploads(s3) == []  # every multipart upload aborted
    assert os.listdir(small_parts) == []


@pytest.mark.parametrize("how", ["da.ma", "map_windows(masked=True)"])
def test_masked_cog_without_nodata_goes_through_scratch(raster, s3, tmp_path, cluster_client,
                                                        how):
    """A COG whose internal mask is not known before its tiles are (masked blocks,
    no nodata) is written in scratch space and uploaded whole, as before."""
    import dask.array as da

    path, data = raster(count=1, height=300, width=200, dtype="float32")
    if how == "da.ma":
        arr = da.ma.masked_greater(rmd.open_raster(path), 0.5)
    else:
        arr = rmd.map_windows(runfuncs.masks_high, [path], masked=True)
    assert isinstance(arr._meta, np.ma.MaskedArray)
    with s3.env():
        rmd.to_raster(arr, f"s3://{s3.bucket}/a.tif", like=path, scheduler=cluster_client,
                      driver="COG", blocksize=64)
    got = s3.get("a.tif", tmp_path / "a.tif")
    assert cog_validate(got)[0]
    with rasterio.open(got) as written:
        assert np.array_equal(written.read_masks(1) == 0, data[0] > 0.5)
    assert _parts(s3, "a.tif") == 1  # (GDAL's upload of the finished file: small, one part)


def test_processes_and_threads_keep_the_scratch_route(noise, s3, tmp_path):
    """Only a cluster uploads from its workers: elsewhere the output is written in
    scratch space and uploaded by GDAL, as before."""
    out = rmd.map_windows(runfuncs.passthrough, [noise])
    with s3.env(), dask.config.set({"riomucho_dask.part-bytes": 5 * MiB}):
        rmd.to_raster(out, f"s3://{s3.bucket}/t.tif", like=noise, scheduler="threads",
                      **GTIFF)
    reference = serial_reference(runfuncs.passthrough, [noise], tmp_path / "ref.tif",
                                 profile=GTIFF)
    assert_same_raster(s3.get("t.tif", tmp_path / "t.tif"), reference)


def test_masked_blocks_unforeseen_in_a_cog_are_a_clear_error(noise, s3, cluster_client):
    """Masked blocks from a plain array (the run function masks), no nodata: the COG's
    mask tiles would belong in parts already uploaded.  A StoreError says what to do,
    and the upload is aborted."""
    from riomucho_dask.errors import StoreError

    out = rmd.map_windows(runfuncs.masks_high, [noise])
    with s3.env(), pytest.raises(StoreError, match="nodata"):
        rmd.to_raster(out, f"s3://{s3.bucket}/m.tif", like=noise, scheduler=cluster_client,
                      **COG)
    assert s3.keys() == [] and _open_uploads(s3) == []
    with s3.env(), dask.config.set({"riomucho_dask.upload-parts": False}):
        rmd.to_raster(out, f"s3://{s3.bucket}/m.tif", like=noise, scheduler=cluster_client,
                      **COG)
    assert s3.keys() == ["m.tif"]


def test_a_cog_head_larger_than_a_part_is_cut_into_parts(noise, s3, tmp_path, cluster_client,
                                                        small_parts, monkeypatch):
    """The head of a COG (header, overview levels, the first full-resolution tiles) is
    uploaded last as parts 1 .. k, each no larger than the store's largest part: here a
    largest part of 4 MiB (S3's is 5 GiB) cuts its 5 MiB of overviews in two."""
    from dataclasses import replace

    from riomucho_dask.write.writers import upload

    start = multipart.start
    monkeypatch.setattr(multipart, "start",
                        lambda path, env: replace(start(path, env), max_part=4 * MiB))
    heads = []
    submit_head = upload.MultipartWriter._submit_head

    def spy(self, run, head, parts, tail=b""):
        heads.append(parts)
        return submit_head(self, run, head, parts, tail)

    monkeypatch.setattr(upload.MultipartWriter, "_submit_head", spy)
    out = rmd.map_windows(runfuncs.passthrough, [noise])
    with s3.env():
        rmd.to_raster(out, f"s3://{s3.bucket}/out.tif", like=noise, scheduler=cluster_client,
                      **COG)
    got = s3.get("out.tif", tmp_path / "got.tif")
    local = rmd.to_raster(out, tmp_path / "local.tif", like=noise, scheduler="threads", **COG)
    assert open_bytes(got) == open_bytes(local)
    assert heads == [2] and _parts(s3, "out.tif") >= 3
    assert _open_uploads(s3) == []


@pytest.mark.parametrize("options", [COG, GTIFF], ids=["COG", "GTiff"])
def test_one_array_to_s3_and_to_a_local_file(noise, s3, tmp_path, cluster_client, options):
    """Two outputs of one array with the same options: each encodes its own tiles (one
    keeps them on the workers, the other takes them back)."""
    out = rmd.map_windows(runfuncs.passthrough, [noise])
    with s3.env():
        w1 = rmd.to_raster(out, f"s3://{s3.bucket}/a.tif", like=noise, compute=False,
                           **options)
        w2 = rmd.to_raster(out, tmp_path / "b.tif", like=noise, compute=False, **options)
        rmd.compute(w1, w2, scheduler=cluster_client)
    got = s3.get("a.tif", tmp_path / "a.tif")
    assert_same_raster(got, tmp_path / "b.tif")
    if options is COG:
        assert open_bytes(got) == open_bytes(tmp_path / "b.tif")


def test_tiles_computed_again_with_other_sizes_fail_the_upload(noise, s3, tmp_path,
                                                               cluster_client, monkeypatch,
                                                               small_parts):
    """The header is laid out from the sizes the tiles had: a worker lost before its
    tiles were uploaded, and a run function that draws other pixels when computed
    again, would give a corrupt file.  The upload fails and is aborted instead."""
    from riomucho_dask.errors import StoreError
    from riomucho_dask.write.writers import upload

    close = upload.MultipartWriter.close

    def kill_a_holder_then_close(self):
        future = self._first.pieces[0][0].part.future  # (held for part 1)
        import time

        holder = cluster_client.who_has([future])[future.key]
        cluster_client.run(runfuncs.exit_soon, workers=list(holder))
        deadline = time.monotonic() + 30
        while set(holder) & set(cluster_client.scheduler_info()["workers"]):
            assert time.monotonic() < deadline, "the worker did not exit"
            time.sleep(0.05)
        return close(self)

    monkeypatch.setattr(upload.MultipartWriter, "close", kill_a_holder_then_close)
    out = rmd.map_windows(runfuncs.unseeded_noise, [noise])
    try:
        with s3.env(), pytest.raises(StoreError, match="computed again"):
            rmd.to_raster(out, f"s3://{s3.bucket}/d.tif", like=noise,
                          scheduler=cluster_client, **GTIFF)
        assert s3.keys() == [] and _open_uploads(s3) == []
    finally:
        cluster_client.wait_for_workers(2, timeout=60)
