"""Inputs and outputs on object storage (a moto S3 server) and over HTTP (range requests)."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

import riomucho_dask as rmd
from riomucho_dask.errors import InputNotFoundError, OutputPathError, RunFunctionError

from . import runfuncs
from .conftest import S3_SECRET, assert_same_raster, make_raster, serial_reference


@pytest.fixture
def pair(raster):
    a, _ = raster("a.tif", count=3, block=16, nodata=0)
    b, _ = raster("b.tif", count=2, block=16, seed=7, nodata=0)
    return a, b


def test_s3_inputs_to_a_local_output(pair, s3, tmp_path, scheduler):
    a, b = pair
    urls = [s3.put(a, "scenes/a.tif"), "/vsis3/" + s3.put(b, "scenes/b.tif")[5:]]
    with s3.env():
        out = rmd.map_windows(runfuncs.ndvi, urls, count=1, dtype="float32")
        written = rmd.to_raster(out, tmp_path / "out.tif", like=urls[0], compress="deflate",
                                scheduler=scheduler)
    reference = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1,
                                 dtype="float32")
    assert_same_raster(written, reference)


def test_s3_open_raster_on_a_cluster(pair, s3, cluster_client):
    a, _ = pair
    url = s3.put(a, "a.tif")
    with s3.env():
        arr = rmd.open_raster(url)
    with rasterio.open(a) as src:  # computed outside the Env: the options travel with the graph
        assert np.array_equal(arr.compute(scheduler=cluster_client), src.read())


@pytest.mark.parametrize("driver", ["GTiff", "COG"])
def test_s3_output(pair, s3, tmp_path, driver):
    a, b = pair
    urls = [s3.put(a, "in/a.tif"), s3.put(b, "in/b.tif")]
    target = f"s3://{s3.bucket}/out/ndvi.tif"
    with s3.env():
        out = rmd.map_windows(runfuncs.ndvi, urls, count=1, dtype="float32")
        assert rmd.to_raster(out, target, like=urls[0], driver=driver, compress="deflate",
                             predictor=3, scheduler="threads") == target
    assert s3.keys() == ["in/a.tif", "in/b.tif", "out/ndvi.tif"]
    got = s3.get("out/ndvi.tif", tmp_path / "got.tif")
    reference = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1,
                                 dtype="float32")
    assert_same_raster(got, reference)
    if driver == "COG":
        valid, errors, _ = cog_validate(got)
        assert valid, errors


def test_s3_output_through_vsis3_and_scratch_space(pair, s3, tmp_path):
    import dask

    a, _ = pair
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with s3.env(), dask.config.set({"riomucho_dask.scratch": str(scratch)}):
        rmd.to_raster(rmd.open_raster(a), f"/vsis3/{s3.bucket}/copy.tif", like=a,
                      scheduler="sync")
    assert s3.keys() == ["copy.tif"]
    assert list(scratch.iterdir()) == []  # the scratch copy is gone
    with rasterio.open(a) as want, rasterio.open(s3.get("copy.tif", tmp_path / "c.tif")) as got:
        assert np.array_equal(got.read(), want.read())


def test_failing_run_leaves_no_object_and_keeps_an_existing_one(pair, s3, tmp_path):
    a, _ = pair
    url = s3.put(a, "a.tif")
    s3.client.put_object(Bucket=s3.bucket, Key="out.tif", Body=b"previous")
    with s3.env():
        bad = rmd.map_windows(runfuncs.fails_on_one, [url], global_args={"bad_ij": (2, 3)})
        with pytest.raises(RunFunctionError):
            rmd.to_raster(bad, f"s3://{s3.bucket}/out.tif", like=url, scheduler="threads")
        with pytest.raises(RunFunctionError):
            rmd.to_raster(bad, f"s3://{s3.bucket}/new.tif", like=url, scheduler="threads")
    assert s3.keys() == ["a.tif", "out.tif"]  # nothing new
    body = s3.client.get_object(Bucket=s3.bucket, Key="out.tif")["Body"].read()
    assert body == b"previous"


def test_missing_bucket_fails_before_compute(pair, s3, tmp_path):
    a, _ = pair
    calls = tmp_path / "calls"
    calls.mkdir()
    out = rmd.map_windows(runfuncs.counted, [a], global_args={"calls": str(calls)})
    with s3.env(), pytest.raises(OutputPathError, match="no-such-bucket"):
        rmd.to_raster(out, "s3://no-such-bucket/out.tif", like=a)
    assert list(calls.iterdir()) == []  # nothing computed


def test_missing_inputs_name_the_url(s3, http_root):
    _, base = http_root
    with s3.env():
        with pytest.raises(InputNotFoundError, match=f"s3://{s3.bucket}/missing.tif"):
            rmd.map_windows(runfuncs.passthrough, [f"s3://{s3.bucket}/missing.tif"])
    with pytest.raises(InputNotFoundError, match=f"{base}/missing.tif"):
        rmd.open_raster(f"{base}/missing.tif")


def test_http_inputs(pair, http_root, tmp_path, scheduler):
    a, b = pair
    folder, base = http_root
    name = tmp_path.name
    shutil.copy(a, folder / f"{name}-a.tif")
    shutil.copy(b, folder / f"{name}-b.tif")
    urls = [f"{base}/{name}-a.tif", f"/vsicurl/{base}/{name}-b.tif"]
    out = rmd.map_windows(runfuncs.ndvi, urls, count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=urls[0], scheduler=scheduler)
    reference = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1,
                                 dtype="float32")
    assert_same_raster(written, reference)


def test_the_secret_never_shows(pair, s3, tmp_path, caplog):
    a, _ = pair
    url = s3.put(a, "a.tif")
    caplog.set_level(logging.DEBUG)
    with s3.env():
        out = rmd.map_windows(runfuncs.fails_on_one, [url], global_args={"bad_ij": (0, 0)})
        write = rmd.to_raster(out, tmp_path / "o.tif", like=url, compute=False)
        texts = [repr(out), str(dict(out.__dask_graph__())), repr(write),
                 str(dict(write.__dask_graph__()))]
        for error in (InputNotFoundError, RunFunctionError, OutputPathError):
            try:
                if error is InputNotFoundError:
                    rmd.open_raster(f"s3://{s3.bucket}/nope.tif")
                elif error is RunFunctionError:
                    write.compute(scheduler="sync")
                else:
                    rmd.to_raster(out, "s3://nope-bucket/o.tif", like=url)
            except error as err:
                texts += [str(err), repr(err), repr(err.__dict__)]
            else:
                raise AssertionError(f"{error.__name__} not raised")
    texts.append(caplog.text)
    assert len(texts) == 14 and not [text for text in texts if S3_SECRET in text]


def test_cli_with_credentials_from_the_environment(pair, s3, tmp_path, monkeypatch):
    """The CLI reads and writes object storage with GDAL's own environment variables."""
    from click.testing import CliRunner

    from riomucho_dask import cli

    a, b = pair
    urls = [s3.put(a, "a.tif"), s3.put(b, "b.tif")]
    endpoint = s3.client.meta.endpoint_url.split("://", 1)[1]
    for key, value in {"AWS_ACCESS_KEY_ID": "AKIDRIOMUCHOTEST", "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                       "AWS_S3_ENDPOINT": endpoint, "AWS_HTTPS": "NO",
                       "AWS_VIRTUAL_HOSTING": "FALSE"}.items():
        monkeypatch.setenv(key, value)
    target = f"s3://{s3.bucket}/ndvi.tif"
    runner = CliRunner()
    args = ["run", "tests.runfuncs:ndvi", *urls, target, "--count", "1", "--dtype", "float32",
            "--scheduler", "threads"]
    result = runner.invoke(cli.mucho, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == target
    reference = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1,
                                 dtype="float32")
    assert_same_raster(s3.get("ndvi.tif", tmp_path / "got.tif"), reference)
    again = runner.invoke(cli.mucho, args)  # the object exists now
    assert again.exit_code == 2 and "--overwrite" in again.stderr
    assert runner.invoke(cli.mucho, [*args, "--overwrite"]).exit_code == 0
    info = runner.invoke(cli.mucho, ["info", *urls, "--json"])
    assert info.exit_code == 0 and '"aligned": true' in info.stdout
    assert S3_SECRET not in result.output + again.output + info.output


def test_shim_reads_and_writes_s3(pair, s3, tmp_path):
    a, b = pair
    urls = [s3.put(a, "a.tif"), s3.put(b, "b.tif")]
    with s3.env():
        with rasterio.open(urls[0]) as src:
            options = dict(src.profile, count=1, dtype="float32")
        with rmd.RioMucho(urls, f"s3://{s3.bucket}/out.tif", runfuncs.ndvi,
                          options=options) as rm:
            rm.run(2)
    # (the shim's options are the output's profile: their nodata is explicit)
    reference = serial_reference(runfuncs.ndvi, [a, b], tmp_path / "ref.tif", count=1,
                                 dtype="float32", profile={"nodata": options["nodata"]})
    assert_same_raster(s3.get("out.tif", tmp_path / "got.tif"), reference)


def test_full_scratch_space_leaves_no_object(pair, s3, small_disk):
    import dask

    from riomucho_dask.errors import NoSpaceError

    a, _ = pair
    big, _ = make_raster(
        small_disk.parent / "big.tif", count=1, height=300, width=300, dtype="float32")
    with s3.env(), dask.config.set({"riomucho_dask.scratch": str(small_disk)}):
        with pytest.raises(NoSpaceError, match="no space left"):
            rmd.to_raster(rmd.open_raster(big), f"s3://{s3.bucket}/out.tif", like=big)
    assert s3.keys() == [] and list(small_disk.iterdir()) == []


def test_http_output_is_refused_before_compute(pair, http_root):
    a, _ = pair
    _, base = http_root
    with pytest.raises(OutputPathError, match="cannot be written"):
        rmd.to_raster(rmd.open_raster(a), f"{base}/out.tif", like=a)


def test_credentials_in_http_headers_are_hidden(pair):
    from riomucho_dask.gdal_options import captured_env

    with rasterio.Env(GDAL_HTTP_HEADERS=f"Authorization: Bearer {S3_SECRET}",
                      AZURE_STORAGE_SAS_TOKEN=S3_SECRET, GDAL_HTTP_TIMEOUT="5"):
        captured = captured_env()
        out = rmd.map_windows(runfuncs.passthrough, [pair[0]])
    assert S3_SECRET not in repr(captured) and "GDAL_HTTP_TIMEOUT" in repr(captured)
    assert S3_SECRET not in str(dict(out.__dask_graph__()))
    assert captured.credentials["GDAL_HTTP_HEADERS"].endswith(S3_SECRET)  # kept, to re-enter
