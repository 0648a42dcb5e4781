"""A newcomer's rough edges (issue 22): errors that say what happened, things that just work."""

from __future__ import annotations

import os
import sys

import pytest
import rasterio
from click.testing import CliRunner

import riomucho_dask as rmd
from riomucho_dask import cli
from riomucho_dask.errors import InputReadError

from .conftest import assert_same_raster, serial_reference
from .runfuncs import passthrough


@pytest.fixture
def truncated(raster, tmp_path):
    """A DEFLATE GeoTIFF cut short: its last tiles cannot be read."""
    path, _ = raster("trunc.tif", count=1, height=128, width=128, block=32, compress="deflate")
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 2000)
    return path


def test_a_corrupt_input_names_the_input_the_window_and_gdal(truncated, tmp_path,
                                                              local_scheduler):
    out = rmd.map_windows(passthrough, [truncated])
    with pytest.raises(InputReadError) as caught:
        rmd.to_raster(out, tmp_path / "out.tif", like=truncated, scheduler=local_scheduler)
    message = str(caught.value)
    assert "trunc.tif" in message and "at window (row " in message
    assert "Read failed. See previous exception" not in message
    assert "TIFF" in message  # GDAL's own words (TIFFFillTile / TIFFReadEncodedTile)
    assert isinstance(caught.value, OSError)
    assert not (tmp_path / "out.tif").exists()


def test_a_corrupt_input_on_the_command_line(truncated, tmp_path):
    result = CliRunner().invoke(cli.mucho, ["run", "tests.runfuncs:passthrough", truncated,
                                            str(tmp_path / "out.tif")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "trunc.tif" in result.stderr and "at window" in result.stderr
    assert "TIFF" in result.stderr


def test_relative_inputs_are_absolute_in_the_graph(raster, tmp_path, monkeypatch):
    """Workers running in another directory (a remote cluster's) still find the input."""
    path, _ = raster("rel.tif")
    monkeypatch.chdir(tmp_path)
    out = rmd.map_windows(passthrough, ["rel.tif"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # (as a worker started in another directory)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler="threads")
    reference = serial_reference(passthrough, [path], tmp_path / "ref.tif")
    assert_same_raster(written, reference)


def test_a_kept_process_pool_sees_modules_made_importable_later(raster, tmp_path,
                                                                monkeypatch):
    """The processes scheduler's kept pool is started again once sys.path grew (the CLI
    loading a module file, a notebook's sys.path.append)."""
    path, _ = raster()
    out = rmd.map_windows(passthrough, [path])
    rmd.to_raster(out, tmp_path / "first.tif", like=path, scheduler="processes")
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "late_module.py").write_text(
        "def halve(data, window, ij, g):\n    return data[0] // 2\n")
    monkeypatch.syspath_prepend(str(folder))
    import late_module

    try:
        half = rmd.map_windows(late_module.halve, [path])
        written = rmd.to_raster(half, tmp_path / "half.tif", like=path, scheduler="processes")
        with rasterio.open(written) as got, rasterio.open(path) as src:
            assert (got.read() == src.read() // 2).all()
    finally:
        sys.modules.pop("late_module", None)
