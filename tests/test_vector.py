"""rasterize and zonal_stats against whole-grid rasterio, numpy and rasterstats."""

from __future__ import annotations

import json
import subprocess
import sys

import dask.array as da
import numpy as np
import pytest
import rasterio
from rasterio.features import rasterize as whole_rasterize
from rasterio.warp import transform_geom

import riomucho_dask as rmd
from riomucho_dask.errors import InputError, MissingExtraError

from .conftest import CRS, TRANSFORM, make_raster

shapely = pytest.importorskip("shapely")
from shapely.geometry import MultiPolygon, Point, Polygon, box, mapping, shape  # noqa: E402

# (rasterio 1.4's rasterize warns about its own in-memory dataset: the references here)
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

HEIGHT, WIDTH, BLOCK = 150, 139, 32
GRID = rmd.Grid(CRS, TRANSFORM, WIDTH, HEIGHT)
X0, Y0 = TRANSFORM.c, TRANSFORM.f


def at(col, row):
    """Map coordinates of a point given in pixels (col, row)."""
    return (X0 + 10 * col, Y0 - 10 * row)


def pixel_box(c0, r0, c1, r1):
    return box(*at(c0, r1), *at(c1, r0))


def cases():
    """Polygons of every awkward kind (coordinates off the pixel grid)."""
    ring = [at(10.3, 20.1), at(70.7, 25.4), at(60.2, 90.9), at(5.5, 80.2)]
    hole = [at(25.1, 40.3), at(45.6, 40.2), at(40.4, 60.7)]
    shapes = {
        "crossing": Polygon([at(20.3, 20.2), at(100.6, 28.1), at(90.2, 75.7), at(25.4, 66.8)]),
        "overlap": Polygon([at(50.2, 40.3), at(120.1, 45.7), at(110.9, 120.4)]),
        "hole": Polygon(ring, [hole]),
        "multi": MultiPolygon([pixel_box(2.2, 100.4, 12.6, 140.7),
                               pixel_box(80.1, 130.3, 136.5, 148.2)]),
        "partly_outside": Polygon([at(-20.5, -10.2), at(30.3, -5.5), at(20.1, 30.7)]),
        "outside": pixel_box(200.5, 10.5, 220.5, 30.5),
        "sliver": Polygon([at(3.1, 3.2), at(130.7, 5.0), at(3.1, 3.6)]),
        "corner": Point(at(64.0, 64.0)).buffer(25.0),  # the corner of four windows
        "tiny": pixel_box(70.2, 10.2, 70.4, 10.4),  # between pixel centres
        "big": pixel_box(-5.5, -5.5, 150.5, 160.5),
    }
    return list(shapes), list(shapes.values())


def small_fields(count=2000, seed=3):
    rng = np.random.default_rng(seed)
    cols, rows = rng.uniform(-2, WIDTH + 2, count), rng.uniform(-2, HEIGHT + 2, count)
    radii = rng.uniform(3, 25, count)
    return [Point(at(c, r)).buffer(radius, 4) for c, r, radius in zip(cols, rows, radii)]


@pytest.fixture
def float_raster(tmp_path):
    path, data = make_raster(tmp_path / "values.tif", count=2, height=HEIGHT, width=WIDTH,
                             dtype="float32", block=BLOCK, nodata=-9999.0)
    data[1, 50:60, 50:60] = np.nan  # NaN left out of floats even when not the nodata
    with rasterio.open(path, "r+") as dst:
        dst.write(data)
    return path, data


def reference(data, geometries, *, all_touched=False, nodata=None):
    """float64 numpy statistics of each geometry's whole-grid mask."""
    out = []
    valid = ~np.isnan(data) if data.dtype.kind == "f" else np.ones(data.shape, bool)
    if nodata is not None:
        valid &= data != nodata
    for geometry in geometries:
        mask = whole_rasterize([(geometry, 1)], out_shape=data.shape, transform=TRANSFORM,
                               all_touched=all_touched, dtype="uint8").astype(bool)
        pixels = data[mask & valid].astype("float64")
        if not pixels.size:
            out.append({"count": 0, "min": None, "max": None, "mean": None, "sum": None,
                        "std": None})
            continue
        out.append({"count": pixels.size, "min": pixels.min(), "max": pixels.max(),
                    "mean": pixels.mean(), "sum": pixels.sum(), "std": pixels.std()})
    return out


def assert_stats(got, want):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g["count"] == w["count"], i
        for name in ("min", "max"):
            assert g[name] == w[name], (i, name)
        for name in ("mean", "sum", "std"):
            if w[name] is None:
                assert g[name] is None, (i, name)
            else:
                assert g[name] == pytest.approx(w[name], rel=1e-9, abs=1e-9), (i, name)


# -- rasterize -------------------------------------------------------------------------


@pytest.mark.parametrize("all_touched", [False, True])
def test_rasterize_equals_a_whole_grid_rasterize(all_touched):
    _, shapes = cases()
    shapes = shapes + small_fields(300)
    pairs = [(g, i % 250 + 1) for i, g in enumerate(shapes)]
    want = whole_rasterize(pairs, out_shape=GRID.shape, transform=TRANSFORM,
                           all_touched=all_touched, dtype="uint8")
    got = rmd.rasterize(pairs, GRID, all_touched=all_touched, chunks=BLOCK)
    assert got.shape == (1, HEIGHT, WIDTH) and got.chunksize == (1, BLOCK, BLOCK)
    assert np.array_equal(got.compute(scheduler="threads")[0], want)


def test_rasterize_values_fill_dtype_and_properties(tmp_path):
    _, shapes = cases()
    features = [{"type": "Feature", "geometry": mapping(g), "properties": {"code": 100 + i}}
                for i, g in enumerate(shapes)]
    collection = {"type": "FeatureCollection", "features": features}
    want = whole_rasterize([(g, 100 + i) for i, g in enumerate(shapes)], out_shape=GRID.shape,
                           transform=TRANSFORM, fill=-1, dtype="int16")
    got = rmd.rasterize(collection, GRID, values="code", fill=-1, dtype="int16", chunks=40)
    assert got.dtype == np.int16
    assert np.array_equal(got.compute()[0], want)
    assert np.array_equal(rmd.rasterize(shapes, GRID, values=[100 + i for i in range(
        len(shapes))], fill=-1, dtype="int16").compute()[0], want)


def test_rasterize_knows_its_grid(tmp_path):
    path, data = make_raster(tmp_path / "in.tif", count=1, height=HEIGHT, width=WIDTH,
                             block=BLOCK)
    _, shapes = cases()
    burned = rmd.rasterize(shapes, path)  # a raster's grid: its blocks are the windows
    assert burned.chunksize == (1, BLOCK, BLOCK)
    rmd.to_raster(burned, tmp_path / "mask.tif")  # no like=
    with rasterio.open(tmp_path / "mask.tif") as src:
        assert src.crs == rasterio.crs.CRS.from_string(CRS) and src.transform == TRANSFORM
        mask = src.read(1)
    assert np.array_equal(mask, whole_rasterize(shapes, out_shape=GRID.shape,
                                                transform=TRANSFORM, dtype="uint8"))

    def keep_inside(blocks, window, ij, g):
        values, inside = blocks
        return np.where(inside == 1, values, 0).astype(values.dtype)

    masked = rmd.map_windows(keep_inside, [path, burned], dtype="uint16")
    rmd.to_raster(masked, tmp_path / "kept.tif")
    with rasterio.open(tmp_path / "kept.tif") as src:
        assert np.array_equal(src.read(1), np.where(mask == 1, data[0], 0))


def test_rasterize_onto_a_striped_raster_groups_its_strips(tmp_path):
    path, _ = make_raster(tmp_path / "striped.tif", count=1, height=600, width=90,
                          tiled=False, block=4)  # strips of one row
    with rasterio.open(path) as src:
        assert src.block_shapes[0] == (1, 90)
        transform = src.transform
    shapes = [Point(X0 + 300, Y0 - 10 * r).buffer(200) for r in (30, 250, 580)]
    burned = rmd.rasterize(shapes, path)
    assert burned.chunks[1] == (256, 256, 88)  # three tasks, not 600
    want = whole_rasterize(shapes, out_shape=(600, 90), transform=transform)
    np.testing.assert_array_equal(burned.compute()[0], want)


def test_rasterize_graph_holds_the_shapes_once():
    shapes = small_fields(2000)
    burned = rmd.rasterize(shapes, GRID, chunks=16)
    graph = dict(burned.__dask_graph__())
    holders = [v for v in graph.values()
               if type(getattr(v, "value", v)).__name__ == "ShapeRaster"]
    assert len(holders) == 1 and len(graph) > 80
    assert len(burned.__dask_graph__().layers) == 2


# -- zonal statistics ------------------------------------------------------------------


@pytest.mark.parametrize("all_touched", [False, True])
def test_zonal_stats_equal_a_float64_reference_per_feature(float_raster, all_touched):
    path, data = float_raster
    names, shapes = cases()
    shapes = shapes + small_fields(2000)
    got = rmd.zonal_stats(path, shapes, all_touched=all_touched, band=2, scheduler="threads")
    assert_stats(got, reference(data[1], shapes, all_touched=all_touched, nodata=-9999.0))
    by_name = dict(zip(names, got))
    assert by_name["outside"] == {"count": 0, "min": None, "max": None, "mean": None,
                                  "sum": None, "std": None}
    assert by_name["corner"]["count"] > 0 and by_name["partly_outside"]["count"] > 0


def parcels(seed=5, step=9, on_centres=True):
    """Quadrilaterals tiling the raster (and beyond it), sharing their edges
    exactly: a jittered lattice, some of whose vertices sit on pixel centres
    (where edges then pass through pixel corners, all touched depends on the
    extent GDAL burns: see the vectors guide)."""
    rng = np.random.default_rng(seed)
    cols, rows = np.arange(-4, WIDTH + 9, step), np.arange(-4, HEIGHT + 9, step)
    jitter = rng.uniform(-3, 3, (len(rows), len(cols), 2))
    on_centre = rng.random((len(rows), len(cols))) < (0.3 if on_centres else 0)
    jitter[on_centre] = np.round(jitter[on_centre]) + 0.5
    vertex = [[at(c + jitter[i, j, 0], r + jitter[i, j, 1]) for j, c in enumerate(cols)]
              for i, r in enumerate(rows)]
    return [Polygon([vertex[i][j], vertex[i][j + 1], vertex[i + 1][j + 1], vertex[i + 1][j]])
            for i in range(len(rows) - 1) for j in range(len(cols) - 1)]


@pytest.mark.parametrize("all_touched", [False, True])
def test_parcels_sharing_edges_each_count_their_own_pixels_in_few_burns(
        float_raster, all_touched, monkeypatch):
    path, data = float_raster
    shapes = parcels(on_centres=not all_touched)
    burns = []
    real = rmd.vector.zonal.burn
    monkeypatch.setattr(rmd.vector.zonal, "burn",
                        lambda shapes, **kw: burns.append(len(shapes)) or real(shapes, **kw))
    got = rmd.zonal_stats(path, shapes, all_touched=all_touched, band=1, scheduler="sync")
    assert_stats(got, reference(data[0], shapes, all_touched=all_touched, nodata=-9999.0))
    windows = -(-HEIGHT // BLOCK) * -(-WIDTH // BLOCK)
    # neighbours (8 around each parcel) never share a burn, the rest do: a few
    # burns a window, not one a parcel
    assert sum(burns) > 4 * len(burns)
    assert len(burns) <= (9 if all_touched else 5) * windows, (len(burns), windows)


@pytest.mark.parametrize("all_touched", [False, True])
def test_points_and_lines_a_fraction_of_a_pixel_apart_each_keep_their_pixels(
        float_raster, all_touched):
    from shapely.geometry import LineString, MultiPoint

    path, data = float_raster
    shapes = [Point(at(10.2, 10.5)), Point(at(10.8, 10.5)),  # one pixel, 0.6 px apart
              LineString([at(20.1, 5), at(20.1, 40)]),  # parallel, 0.5 px apart
              LineString([at(20.6, 5), at(20.6, 40)]),
              MultiPoint([at(20.3, 7.5), at(60.5, 60.5)]),  # on the lines' pixels
              pixel_box(19.6, 30.2, 25.3, 38.8)]  # a polygon over the lines
    got = rmd.zonal_stats(path, shapes, all_touched=all_touched, band=1)
    assert_stats(got, reference(data[0], shapes, all_touched=all_touched, nodata=-9999.0))
    assert all(g["count"] > 0 for g in got)


def test_nested_features_are_burned_one_by_one(float_raster):
    from riomucho_dask.vector.shapes import ShapeIndex
    from riomucho_dask.vector.zonal import PAIRS_PER_FEATURE, colours

    path, data = float_raster
    nested = [Point(at(70, 75)).buffer(10 * (3 + 0.1 * i), 8) for i in range(80)]
    index = ShapeIndex(np.array(nested, dtype=object), GRID)
    assert 80 * 80 > PAIRS_PER_FEATURE * 80  # (every pair's bounds overlap)
    assert len(set(colours(index, False).tolist())) == 80  # one colour each
    got = rmd.zonal_stats(path, nested, band=1)
    assert_stats(got, reference(data[0], nested, nodata=-9999.0))


def test_zonal_stats_match_rasterstats(tmp_path):
    rasterstats = pytest.importorskip("rasterstats")
    path, _ = make_raster(tmp_path / "u16.tif", count=1, height=HEIGHT, width=WIDTH,
                          block=BLOCK, nodata=0)
    _, shapes = cases()
    shapes = shapes + small_fields(200)
    got = rmd.zonal_stats(path, shapes, stats="count min max mean")
    want = rasterstats.zonal_stats(shapes, path, stats="count min max mean")
    for g, w in zip(got, want):
        assert (g["count"], g["min"], g["max"]) == (w["count"], w["min"], w["max"])
        assert g["mean"] == (None if w["mean"] is None else pytest.approx(w["mean"], rel=1e-9))
    # the histogram statistics (an integer raster): equal, to the last bit
    names = "median majority minority unique percentile_5 percentile_95"
    assert rmd.zonal_stats(path, shapes, stats=names) == rasterstats.zonal_stats(
        shapes, path, stats=names)


def test_zonal_stats_in_epsg4326_and_from_a_geojson_file(float_raster, tmp_path):
    path, data = float_raster
    _, shapes = cases()
    shapes = [g for g in shapes + small_fields(100)]
    lonlat = [shape(g) for g in transform_geom(CRS, "EPSG:4326", [mapping(g) for g in shapes])]
    # (edges densified to 1/256 of the shape's extent, then moved, as the shapes of
    # another CRS are: see test_shapes_in_another_crs_bend_with_it)
    dense = [shapely.segmentize(g, max(g.bounds[2] - g.bounds[0], g.bounds[3] - g.bounds[1])
                                / 256) for g in lonlat]
    on_grid = [shape(g) for g in transform_geom("EPSG:4326", CRS,
                                                [mapping(g) for g in dense])]
    want = reference(data[0], on_grid, nodata=-9999.0)
    assert_stats(rmd.zonal_stats(path, lonlat, crs="EPSG:4326"), want)
    features = [{"type": "Feature", "properties": {"n": i}, "geometry": mapping(g)}
                for i, g in enumerate(lonlat)]
    file = tmp_path / "fields.geojson"
    file.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    assert_stats(rmd.zonal_stats(path, str(file)), want)
    burned = rmd.rasterize(str(file), GRID, values="n", dtype="uint16")
    assert np.array_equal(burned.compute()[0], whole_rasterize(
        [(g, i) for i, g in enumerate(on_grid)], out_shape=GRID.shape, transform=TRANSFORM,
        dtype="uint16"))


def test_zonal_stats_of_a_geodataframe_like(float_raster):
    path, data = float_raster
    _, shapes = cases()

    class Frame:  # what zonal_stats reads of a GeoDataFrame
        columns = ["name", "geometry"]
        geometry = shapes
        crs = CRS

        def __getitem__(self, column):
            return [f"f{i}" for i in range(len(shapes))]

    assert_stats(rmd.zonal_stats(path, Frame()), reference(data[0], shapes, nodata=-9999.0))


def test_derived_array_runs_once_per_window_in_one_graph(float_raster, tmp_path):
    path, data = float_raster
    counter = tmp_path / "calls"
    counter.mkdir()

    def double(blocks, window, ij, g):
        (counter / f"{ij[0]}-{ij[1]}-{np.random.default_rng().integers(1 << 60)}").touch()
        return blocks[0][:1] * 2

    derived = rmd.map_windows(double, [path], count=1, dtype="float32")
    windows = -(-HEIGHT // BLOCK) * -(-WIDTH // BLOCK)  # (a task may run several)
    shapes = cases()[1] + small_fields(500)
    got = rmd.zonal_stats(derived, shapes, scheduler="threads")
    calls = [name.name.rsplit("-", 1)[0] for name in counter.iterdir()]
    assert len(calls) == len(set(calls)) == windows  # every window touched, each run once
    # the derived array keeps the input's dtype, so its nodata (-9999) is taken as
    # the array's: doubled, the nodata corner (-19998) counts as values
    assert_stats(got, reference(data[0] * 2, shapes, nodata=-9999.0))


def test_zonal_stats_of_a_rasterized_array_count_areas(tmp_path):
    _, shapes = cases()
    classes = rmd.rasterize([(g, 1 + i % 3) for i, g in enumerate(shapes)], GRID)
    districts = [pixel_box(0, 0, 70, 150), pixel_box(70, 0, 139, 150)]
    got = rmd.zonal_stats(classes, districts, stats=["count", "sum"], nodata=0)
    burned = classes.compute()[0]
    assert [d["count"] for d in got] == [int((burned[:, :70] > 0).sum()),
                                         int((burned[:, 70:] > 0).sum())]


def test_zonal_stats_on_a_local_cluster(float_raster, cluster_client):
    path, data = float_raster
    shapes = cases()[1] + small_fields(300)
    got = rmd.zonal_stats(path, shapes, scheduler=cluster_client)
    assert_stats(got, reference(data[0], shapes, nodata=-9999.0))


def distribution(pixels):
    """rasterstats' histogram statistics of some pixels, from numpy."""
    keys, counts = np.unique(pixels, return_counts=True)
    return {"median": float(np.median(pixels)), "majority": float(keys[np.argmax(counts)]),
            "minority": float(keys[np.argmin(counts)]), "unique": len(keys),
            **{f"percentile_{q}": float(np.percentile(pixels, float(q)))
               for q in (0, 10, 25, 33.3, 50, 90, 99.9, 100)}}


@pytest.mark.parametrize("dtype, nodata", [("uint8", 255), ("int16", -1000), ("uint16", None)])
def test_median_percentiles_and_classes_are_exact_on_integer_rasters(tmp_path, dtype, nodata):
    path, data = make_raster(tmp_path / f"{dtype}.tif", count=1, height=HEIGHT, width=WIDTH,
                             dtype=dtype, block=BLOCK, nodata=nodata)
    if dtype == "uint8":  # a class map: few values, many ties
        data = (data // 40).astype(dtype)
        data[:, :3, :5] = nodata
        with rasterio.open(path, "r+") as dst:
            dst.write(data)
    _, shapes = cases()
    shapes = shapes + small_fields(300) + parcels()
    names = ["count", "median", "majority", "minority", "unique"] + [
        f"percentile_{q}" for q in (0, 10, 25, 33.3, 50, 90, 99.9, 100)]
    got = rmd.zonal_stats(path, shapes, stats=names, scheduler="threads")
    valid = data[0] != nodata if nodata is not None else np.ones(data.shape[1:], bool)
    for i, geometry in enumerate(shapes):
        mask = whole_rasterize([(geometry, 1)], out_shape=data.shape[1:],
                               transform=TRANSFORM, dtype="uint8").astype(bool) & valid
        if not mask.any():
            assert got[i] == {name: (0 if name == "count" else None) for name in names}, i
            continue
        want = {"count": int(mask.sum()), **distribution(data[0][mask])}
        assert got[i] == want, i
        assert list(got[i]) == names


def test_a_files_internal_mask_is_left_out_as_its_nodata(tmp_path):
    path, data = make_raster(tmp_path / "masked.tif", count=1, height=HEIGHT, width=WIDTH,
                             block=BLOCK)
    mask = np.ones(data.shape[1:], bool)
    mask[40:90, 30:100] = False
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as dst:
        dst.write_mask(mask.astype("uint8") * 255)
    _, shapes = cases()
    got = rmd.zonal_stats(path, shapes, stats="count min max mean sum std")
    assert_stats(got, reference(np.where(mask, data[0], np.nan), shapes))  # (NaN left out)
    # the same as the file's masked array, and fewer pixels than without the mask
    assert got == rmd.zonal_stats(rmd.open_raster(path, masked=True), shapes,
                                  stats="count min max mean sum std")
    assert sum(g["count"] for g in got) < sum(w["count"] for w in reference(data[0], shapes))


def test_a_float_nodata_is_compared_as_the_band_holds_it(tmp_path):
    # nodata=0.1 of a float32 band is float32's 0.1 in its pixels (GDAL's rule, and
    # that of the statistics written with an output), not the float64 0.1 (which
    # no float32 pixel equals; numpy 2 compares in float32 too, so this held before
    # the rule was shared, and keeps holding whatever compares)
    path, data = make_raster(tmp_path / "f32.tif", count=1, height=HEIGHT, width=WIDTH,
                             dtype="float32", block=BLOCK)
    data[0, 20:30, 20:40] = np.float32(0.1)
    with rasterio.open(path, "r+") as dst:
        dst.write(data)
    _, shapes = cases()
    got = rmd.zonal_stats(path, shapes, nodata=0.1)
    held = np.where(data[0] == np.float32(0.1), np.nan, data[0])
    assert_stats(got, reference(held, shapes))


def test_bad_input_is_refused_before_anything_is_read(float_raster, tmp_path):
    path, _ = float_raster
    good = [box(*at(1, 5), *at(5, 1))]
    with pytest.raises(InputError, match="statistic 'avg' is unknown"):
        rmd.zonal_stats(path, good, stats=["count", "avg"])
    with pytest.raises(InputError, match="'nodata' is not available"):
        rmd.zonal_stats(path, good, stats="count,nodata")
    with pytest.raises(InputError, match="median, percentile_90 are computed exactly from a "
                       "histogram.*up to 16 bits.*is float32"):
        rmd.zonal_stats(path, good, stats=["count", "median", "percentile_90"])
    with pytest.raises(InputError, match="percentile_101.*from 0 to 100"):
        rmd.zonal_stats(path, good, stats=["percentile_101"])
    with pytest.raises(InputError, match="shape 1 of the shapes is a int"):
        rmd.zonal_stats(path, [good[0], 7])
    with pytest.raises(InputError, match="shape 0 of the shapes is a str"):
        rmd.rasterize(["POLYGON"], GRID)
    with pytest.raises(InputError, match="not a CRS"):
        rmd.zonal_stats(path, good, crs="EPSG:999999")
    with pytest.raises(InputError, match="band=3"):
        rmd.zonal_stats(path, good, band=3)
    with pytest.raises(InputError, match="know their grid"):
        rmd.zonal_stats(da.zeros((1, 10, 10)), good)
    with pytest.raises(InputError, match="do not fit dtype uint8"):
        rmd.rasterize([(good[0], 300)], GRID)
    with pytest.raises(InputError, match="no such property"):
        rmd.rasterize([{"type": "Feature", "geometry": mapping(good[0]), "properties": {}}],
                      GRID, values="code")
    with pytest.raises(InputError, match="a CRS, not a grid"):
        rmd.rasterize(good, "EPSG:32631")
    with pytest.raises(OSError, match="does not exist"):
        rmd.zonal_stats(path, str(tmp_path / "missing.gpkg"))


def test_shapely_is_not_imported_with_the_package():
    code = "import riomucho_dask, sys; assert 'shapely' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_shapely_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "shapely", None)
    with pytest.raises(MissingExtraError, match=r"riomucho_dask\[vector\]"):
        rmd.rasterize([], GRID)


# -- the command line ------------------------------------------------------------------


def test_cli_zonal(float_raster, tmp_path):
    from click.testing import CliRunner

    from riomucho_dask.cli import mucho

    path, data = float_raster
    _, shapes = cases()
    file = tmp_path / "shapes.geojson"
    lonlat = transform_geom(CRS, "EPSG:4326", [mapping(g) for g in shapes])
    file.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": g} for g in lonlat]}))
    want = rmd.zonal_stats(path, str(file), stats="count,mean", all_touched=True)
    result = CliRunner().invoke(mucho, ["zonal", path, str(file), "--stats", "count,mean",
                                        "--all-touched"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == want
    out = tmp_path / "stats.csv"
    result = CliRunner().invoke(mucho, ["zonal", path, str(file), "--stats", "count,mean",
                                        "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[0] == "feature,count,mean" and len(lines) == len(shapes) + 1
    result = CliRunner().invoke(mucho, ["zonal", path, str(file), "--stats", "median"])
    assert result.exit_code == 1 and "statistic median is computed exactly" in result.output


def test_a_derived_arrays_zeros_are_data_and_nodata_is_left_out(tmp_path):
    """From a review: a file's nodata says which pixels of the file are missing, not
    which of an array derived from it (a difference of 0.0 is a value); an array
    straight from open_raster keeps it."""
    path, data = make_raster(tmp_path / "n.tif", count=1, dtype="int16", nodata=-1000)
    field = [pixel_box(0, 0, 10, 10)]  # over the 3 x 5 nodata corner
    (direct,) = rmd.zonal_stats(path, field, stats="count min")
    (opened,) = rmd.zonal_stats(rmd.open_raster(path), field, stats="count min")
    assert direct == opened == {"count": 85, "min": float(data[0, :10, :10][data[0, :10, :10]
                                                                               != -1000].min())}
    zeros = rmd.open_raster(path).astype("float32") * 0
    (derived,) = rmd.zonal_stats(zeros, field, stats="count mean")
    assert derived == {"count": 100, "mean": 0.0}  # every pixel a value of the new array


def test_shapes_in_another_crs_bend_with_it(tmp_path):
    """A box of longitudes and latitudes is a curved shape in UTM: its edges are
    densified before they are moved (moving the corners alone cut the count)."""
    from rasterio.transform import from_origin

    from riomucho_dask.vector.shapes import read_shapes, to_grid

    grid = rmd.Grid("EPSG:32631", from_origin(300000, 5100000, 2000, 2000), 200, 100)
    lonlat = box(0.0, 44.0, 6.0, 45.0)
    moved = to_grid(read_shapes([lonlat], crs="EPSG:4326"), grid)[0]
    dense = shapely.segmentize(lonlat, 0.001)
    want = shape(transform_geom("EPSG:4326", "EPSG:32631", mapping(dense)))
    assert moved.symmetric_difference(want).area < 1e-4 * want.area
    corners = shape(transform_geom("EPSG:4326", "EPSG:32631", mapping(lonlat)))
    assert moved.symmetric_difference(corners).area > 1e-3 * want.area  # it did bend


def test_zonal_refuses_pairs_and_cli_json_is_strict(tmp_path):
    path, _ = make_raster(tmp_path / "f.tif", count=1, dtype="float32")
    g = pixel_box(0, 0, 10, 10)
    with pytest.raises(InputError, match="not \\(geometry, value\\) pairs"):
        rmd.zonal_stats(path, [[g, g]], stats="count")
    with rasterio.open(path, "r+") as dst:
        dst.write(np.full((1, 2, 2), np.inf, "float32"), window=((0, 2), (0, 2)))
    shapes = tmp_path / "f.geojson"
    shapes.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {},
         "geometry": mapping(shape(transform_geom(CRS, "EPSG:4326", mapping(g))))}]}))
    result = subprocess.run([sys.executable, "-m", "riomucho_dask.cli", "zonal", path,
                             str(shapes)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (record,) = json.loads(result.stdout)  # strict JSON: no Infinity
    assert record["max"] is None and record["count"] == 100
