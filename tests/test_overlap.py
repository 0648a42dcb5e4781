"""map_windows(..., overlap=, boundary=): each window with its neighbourhood.

Every output is compared, bit for bit, with the same formula applied once to
the whole raster padded with ``np.pad``.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

import riomucho_dask as rmd
from riomucho_dask.errors import OutputShapeError, OverlapError

from . import runfuncs
from .conftest import CRS, TRANSFORM, make_raster


def band1(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def assert_written(path, want, like) -> None:
    """Pixels bit for bit, plus dtype, CRS, transform and nodata of ``like``."""
    with rasterio.open(path) as got, rasterio.open(like) as ref:
        assert got.crs == ref.crs and got.transform == ref.transform
        assert got.nodata == ref.nodata or (np.isnan(got.nodata) and np.isnan(ref.nodata))
        data = got.read()
    assert data.dtype == want.dtype
    assert np.array_equal(data, want)


@pytest.mark.parametrize("boundary", ["reflect", "edge"])
def test_hillshade(raster, tmp_path, scheduler, boundary):
    dem, _ = raster("dem.tif", count=1, dtype="float32", block=16)
    out = rmd.map_windows(runfuncs.hillshade, [dem], overlap=1, boundary=boundary,
                          count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "shade.tif", like=dem, scheduler=scheduler)
    want = runfuncs.hillshade_core(np.pad(band1(dem), 1, mode=boundary))
    assert_written(written, want[None], dem)


def test_without_overlap_the_seams_differ(raster, tmp_path):
    """The reason for overlap: without it, every block edge is wrong."""
    dem, _ = raster("dem.tif", count=1, dtype="float32", block=16)

    def inner(data, window, ij, g):  # hillshade of the window, edges padded per window
        return runfuncs.hillshade_core(np.pad(data[0][0], 1, mode="edge"))[None]

    seamed = rmd.map_windows(inner, [dem], count=1, dtype="float32").compute()
    good = rmd.map_windows(runfuncs.hillshade, [dem], overlap=1, boundary="edge",
                           count=1, dtype="float32").compute()
    differs = seamed[0] != good[0]
    assert differs[15, :].any() and differs[16, :].any()  # rows each side of a seam
    assert not differs[1:15, 1:15].any()  # inside a block they agree


def test_overlap_wider_than_a_block_with_a_constant(raster, tmp_path, scheduler):
    path, _ = raster(count=1, dtype="int16", block=16)
    reach = 20  # neighbours of neighbours
    out = rmd.map_windows(runfuncs.far_stencil, [path], overlap=reach, boundary=-5,
                          global_args={"reach": reach}, count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    padded = np.pad(band1(path), reach, mode="constant", constant_values=-5)
    assert_written(written, runfuncs.far_stencil_core(padded, reach)[None], path)


def test_two_inputs_rectangular_overlap(raster, tmp_path, scheduler):
    a, _ = raster("a.tif", count=2, block=16)
    b, _ = raster("b.tif", count=1, block=16, seed=3)
    out = rmd.map_windows(runfuncs.two_inputs_rectangular, [a, b], overlap=(2, 3),
                          boundary="reflect", count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=a, scheduler=scheduler)
    pa = np.pad(band1(a), ((2, 2), (3, 3)), mode="reflect").astype("float32")
    pb = np.pad(band1(b), ((2, 2), (3, 3)), mode="reflect").astype("float32")
    rows, cols = pa.shape[0] - 4, pa.shape[1] - 6
    assert_written(written, (pa[4:4 + rows, 3:3 + cols] - pb[2:2 + rows, :cols])[None], a)


def test_run_function_may_return_the_padded_shape(raster, tmp_path, scheduler):
    path, data = raster(count=2, block=16)
    out = rmd.map_windows(runfuncs.padded_double, [path], overlap=(3, 2), boundary="edge")
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, scheduler=scheduler)
    assert_written(written, data * 2, path)


@pytest.mark.parametrize("nodata, fill", [(7, 7), (None, 0)])
def test_nodata_fills_outside_the_raster(raster, tmp_path, scheduler, nodata, fill):
    path, _ = raster(count=1, block=16, nodata=nodata)
    out = rmd.map_windows(runfuncs.neighbour_sum, [path], overlap=1, count=1,
                          dtype="float32")  # boundary="nodata", the default
    # (a float32 result keeps no uint16 nodata of like's unless given)
    written = rmd.to_raster(out, tmp_path / "out.tif", like=path, nodata=nodata,
                            scheduler=scheduler)
    z = np.pad(band1(path), 1, mode="constant", constant_values=fill).astype("float64")
    want = (z[:-2, 1:-1] + z[2:, 1:-1] + z[1:-1, :-2] + z[1:-1, 2:]).astype("float32")
    assert_written(written, want[None], path)


def test_array_read_open_raster_arrays_and_window_grids(raster, tmp_path):
    a, _ = raster("a.tif", count=2, block=16)
    dem, _ = raster("dem.tif", count=1, dtype="float32", block=16, seed=4)
    want = runfuncs.hillshade_core(np.pad(band1(dem), 1, mode="reflect"))[None]
    # array_read: one stacked array of padded blocks; open_raster arrays as inputs
    inputs = [rmd.open_raster(a, chunks=32), rmd.open_raster(dem, chunks=32)]
    out = rmd.map_windows(runfuncs.stacked_hillshade, inputs, mode="array_read", overlap=1,
                          boundary="reflect", count=1, dtype="float32")
    assert out.chunks[1][0] == 32
    assert np.array_equal(out.compute(), want)
    # a windows= grid of uneven windows
    windows = [Window(c, r, min(40, 131 - c), min(50, 97 - r))
               for r in range(0, 97, 50) for c in range(0, 131, 40)]
    out = rmd.map_windows(runfuncs.hillshade, [dem], windows=windows, overlap=1,
                          boundary="reflect", count=1, dtype="float32")
    assert np.array_equal(out.compute(), want)


def test_one_read_per_input_per_window(raster, monkeypatch):
    from riomucho_dask.map import contract

    a, _ = raster("a.tif", count=1, block=32)
    b, _ = raster("b.tif", count=1, block=32, seed=2)
    calls = []
    original = contract.read_padded

    def counting(source, window, overlap, boundary):
        calls.append((source.paths, window))
        return original(source, window, overlap, boundary)

    monkeypatch.setattr(contract, "read_padded", counting)
    out = rmd.map_windows(runfuncs.two_inputs_rectangular, [a, b], overlap=(2, 3),
                          count=1, dtype="float32")
    assert calls == []  # nothing read before compute
    out.compute(scheduler="threads")
    assert len(calls) == 2 * out.npartitions == len(set(calls))


def test_shim_with_overlap(raster, tmp_path):
    dem, _ = raster("dem.tif", count=1, dtype="float32", block=16)
    want = runfuncs.hillshade_core(np.pad(band1(dem), 1, mode="edge"))[None]
    with rasterio.open(dem) as src:
        windows = [(w, ij) for ij, w in src.block_windows()]
    for chosen in (None, windows[::2]):  # the block grid; a subset (not a grid)
        out = tmp_path / "shim.tif"
        with rmd.RioMucho([dem], str(out), runfuncs.hillshade, windows=chosen,
                          overlap=1, boundary="edge") as rm:
            rm.run(2)
        got = band1(out)
        for window, _ in (chosen or windows):
            rows, cols = window.toslices()
            assert np.array_equal(got[rows, cols], want[0][rows, cols])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"overlap": -1}, "overlap"),
        ({"overlap": (1, 2, 3)}, "overlap"),
        ({"overlap": "wide"}, "overlap"),
        ({"overlap": 1.5}, "overlap"),
        ({"overlap": 1, "boundary": "wrap"}, "boundary"),
        ({"overlap": 1, "boundary": None}, "boundary"),
        ({"overlap": 1, "mode": "manual_read"}, "manual_read"),
    ],
)
def test_bad_overlap_or_boundary(raster, kwargs, match):
    path, _ = raster()
    with pytest.raises(OverlapError, match=match):
        rmd.map_windows(runfuncs.passthrough, [path], **kwargs)
    with pytest.raises(OverlapError, match=match):
        rmd.RioMucho([path], "unused.tif", runfuncs.passthrough, **kwargs)


def test_derived_array_with_overlap_is_refused(raster):
    path, _ = raster()
    with pytest.raises(OverlapError, match="input 0"):
        rmd.map_windows(runfuncs.passthrough, [rmd.open_raster(path) * 2], overlap=1)


def test_wrong_shape_names_both_shapes(raster):
    path, _ = raster(block=32)
    out = rmd.map_windows(runfuncs.wrong_shape, [path], overlap=1)
    with pytest.raises(OutputShapeError, match=r"padded \(3, 34, 34\)"):
        out.compute(scheduler="sync")


def test_georeferencing_kept(raster, tmp_path):
    dem, _ = raster("dem.tif", count=1, dtype="float32", block=16)
    out = rmd.map_windows(runfuncs.hillshade, [dem], overlap=1, count=1, dtype="float32")
    written = rmd.to_raster(out, tmp_path / "shade.tif", like=dem)
    with rasterio.open(written) as src:
        assert src.crs == rasterio.crs.CRS.from_string(CRS) and src.transform == TRANSFORM


def test_constant_boundary_must_fit_the_inputs(raster):
    path, _ = raster(dtype="uint16")
    for value in (-1, 0.5, float("nan"), 70000):
        with pytest.raises(OverlapError, match="does not fit input"):
            rmd.map_windows(runfuncs.passthrough, [path], overlap=1, boundary=value)
    rmd.map_windows(runfuncs.passthrough, [path], overlap=1, boundary=65535)  # fits
    with pytest.raises(OverlapError, match="does not fit input"):
        with rmd.RioMucho([path], "unused.tif", runfuncs.passthrough, overlap=1,
                          boundary=-1, windows=[(Window(0, 0, 10, 10), (0, 0))]) as rm:
            rm.run(1)


# -- property: any raster, blocks, overlap and boundary: equal to np.pad on the whole raster

@st.composite
def overlap_cases(draw):
    height, width = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    block = draw(st.sampled_from([16, 32]))
    dtype = draw(st.sampled_from(["uint8", "int16", "float32"]))
    overlap = (draw(st.integers(0, 40)), draw(st.integers(0, 40)))
    boundary = draw(st.sampled_from(["nodata", "reflect", "edge", 3]))
    nodata = draw(st.sampled_from([None, 7]))
    grid = draw(st.booleans())
    rows, cols = draw(st.integers(1, height)), draw(st.integers(1, width))
    return height, width, block, dtype, overlap, boundary, nodata, grid, rows, cols


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=overlap_cases())
def test_property_overlap_equals_np_pad(tmp_path_factory, case):
    height, width, block, dtype, overlap, boundary, nodata, grid, rows, cols = case
    tmp = tmp_path_factory.mktemp("overlap")
    path, data = make_raster(tmp / "in.tif", count=2, height=height, width=width,
                             dtype=dtype, block=block, nodata=nodata)
    windows = None
    if grid:
        windows = [Window(c, r, min(cols, width - c), min(rows, height - r))
                   for r in range(0, height, rows) for c in range(0, width, cols)]
    out = rmd.map_windows(runfuncs.corners, [path], overlap=overlap, boundary=boundary,
                          global_args={"overlap": overlap}, windows=windows, dtype="float64")
    pad = ((0, 0), (overlap[0],) * 2, (overlap[1],) * 2)
    if boundary in ("reflect", "edge"):
        padded = np.pad(data, pad, mode=boundary)
    else:
        fill = (0 if nodata is None else nodata) if boundary == "nodata" else boundary
        padded = np.pad(data, pad, mode="constant", constant_values=fill)
    want = runfuncs.corners_core(padded.astype("float64"), *overlap)
    np.testing.assert_array_equal(out.compute(scheduler="sync"), want)
