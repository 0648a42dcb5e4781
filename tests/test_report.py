"""to_raster(..., report=True): where the time went, on every scheduler."""

from __future__ import annotations

import os

import pytest

import riomucho_dask as rmd
from riomucho_dask.timings import CLIENT_STAGES, COUNTS, STAGES

from .conftest import assert_same_raster, serial_reference
from .runfuncs import sleeps

SLEEP = 0.05


@pytest.mark.parametrize("compress", ["deflate", None])
def test_report_accounts_for_the_time(raster, tmp_path, scheduler, compress, capsys):
    path, _ = raster(height=64, width=128, block=32)  # 8 windows
    g = {"sleep": SLEEP}
    out = rmd.map_windows(sleeps, [path], global_args=g, count=1, dtype="float32")
    options = {"tiled": True, "blockxsize": 32, "blockysize": 32}
    if compress:
        options["compress"] = compress
    target = str(tmp_path / "out.tif")
    report = rmd.to_raster(out, target, like=path, scheduler=scheduler, report=True,
                           **options)
    assert isinstance(report, rmd.Report)
    assert report.path == target and report.paths == (target,)
    reference = serial_reference(sleeps, [path], tmp_path / "ref.tif", global_args=g,
                                 count=1, dtype="float32", profile=options)
    assert_same_raster(target, reference)

    # every window's run function counted once, on the workers that ran it
    assert report.windows == 8
    assert report.tasks == 8
    assert report.workers and all(set(t) <= {*STAGES, *COUNTS} for t in
                                  report.workers.values())
    assert set(report.client) <= set(CLIENT_STAGES)
    # the run function's time is what it slept (and no more than 10% beyond)
    assert 8 * SLEEP <= report.total("run") <= 8 * SLEEP * 1.1 + 0.05
    assert report.total("read") > 0
    if compress:
        assert report.total("encode") > 0
    # a worker's parts are within its wall time; with one worker they fill it
    for worker, table in report.workers.items():
        assert sum(table.get(s, 0.0) for s in STAGES) <= report.wall * 1.1, worker
    busy = sum(report.total(s) for s in STAGES) + report.client.get("finish", 0.0)
    if scheduler == "sync":
        assert report.wall * 0.9 <= busy <= report.wall * 1.1
    assert report.client.get("finish", 0.0) > 0
    shown = capsys.readouterr().out
    assert "out.tif" in shown and "run function" in shown and "windows" in shown


def test_compute_report_holds_every_path(raster, tmp_path, local_scheduler):
    path, _ = raster()
    arr = rmd.open_raster(path)
    w1 = rmd.to_raster(arr, tmp_path / "a.tif", like=path, compute=False)
    w2 = rmd.to_raster(arr // 2, tmp_path / "b.tif", like=path, compute=False)
    report = rmd.compute(w1, w2, scheduler=local_scheduler, report=True)
    assert [os.path.basename(p) for p in report.paths] == ["a.tif", "b.tif"]
    assert report.total("read") > 0 and report.windows == 0  # no run function here
    single = rmd.to_raster(arr, tmp_path / "c.tif", like=path, compute=False)
    assert single.compute(scheduler=local_scheduler, report=True).path.endswith("c.tif")


def test_a_report_starts_from_zero(raster, tmp_path):
    """Clocks of earlier writes (reported or not) are not counted again."""
    path, _ = raster(height=64, width=64, block=32)
    g = {"sleep": SLEEP}
    out = rmd.map_windows(sleeps, [path], global_args=g, count=1, dtype="float32")
    rmd.to_raster(out, tmp_path / "first.tif", like=path, scheduler="threads")
    report = rmd.to_raster(out, tmp_path / "second.tif", like=path, scheduler="threads",
                           report=True)
    assert report.windows == 4
    assert report.total("run") < 4 * SLEEP * 1.1 + 0.05
