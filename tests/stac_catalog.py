"""A small STAC catalog of real GeoTIFFs, and the serial reference STAC loads are
compared with.

:func:`make_catalog` writes the files into a folder (served over HTTP by the
``stac_server`` fixture, or read locally) and returns STAC Items (dicts), scenes of two
UTM zones (EPSG:32631 and EPSG:32632) around 6°E 45°N, the zones' border, so that
scenes of both zones overlap one area of interest (:func:`aoi_grid`).  Each day has
three scenes, in this order:

* ``A``: EPSG:32631, at ``10:06:00Z`` (10:30 local solar time at 6°E), nodata in its
  bottom right corner (where ``B`` has data);
* ``B``: EPSG:32632, at the same time as ``A`` (one pass, two tiles), shifted 300 m
  east and 200 m south, nodata in its top left corner (where ``A`` has data);
* ``C``: EPSG:32631, ten minutes later (another satellite), shifted 250 m west and
  150 m north of ``A``, nodata in its bottom right corner (where ``A`` has data).

A nodata corner is a triangle of legs 2/5 of the side (384 m), so "first valid
pixel wins" differs from "first item wins" in every overlap.

Assets: ``red`` (10 m, 96 x 96) and ``swir`` (20 m, 48 x 48), uint16, nodata 0, tiled
(16 x 16 blocks).  Valid values tell their scene: ``value // 3000`` is 0 for A (1001 to
2999), 1 for B (4001 to 5999), 2 for C (7001 to 8999).  Both assets of a scene cover the same
960 m square.

Files read over HTTP are cached by GDAL for the whole process (see ``StacHTTP`` in
tests/conftest.py): give each test a folder of its own, e.g.
``make_catalog(stac_server.root / tmp_path.name, f"{stac_server.url}/{tmp_path.name}")``.
"""

from __future__ import annotations

import json
from collections import namedtuple
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform as transform_points

__all__ = ["ASSETS", "EXACT", "PROJECTION_V1", "PROJECTION_V2", "RASTER", "Grid", "Group",
           "make_catalog", "solar_day_items", "aoi_grid", "item_grid", "local_path",
           "group_by_solar_day", "group_by_time", "serial_reference",
           "write_item_collection"]

PROJECTION_V2 = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
PROJECTION_V1 = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
RASTER = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
GEOTIFF = "image/tiff; application=geotiff"

#: asset -> (resolution in m, pixels a side)
ASSETS = {"red": (10.0, 96), "swir": (20.0, 48)}
SCENE_SIZE = 960.0  # metres a side, for every asset
BLOCK = 16

#: The WarpedVRT tolerance of the reference: ``tolerance=0`` (GDAL's exact transformer)
#: fails in rasterio 1.4.4's WarpedVRT ("Pointer 'hDS' is NULL in 'GDALSetProjection'",
#: pfnTransformer NULL); 1e-9 pixel gives the same pixels as a nearest sampling computed
#: by hand from ``rasterio.warp.transform`` (checked on 32631 <-> 32632 grids, where
#: 1e-3 and ``rasterio.warp.reproject(tolerance=0)`` differ from it on a few pixels).
EXACT = 1e-9

#: A target grid: anything with these four attributes does.
Grid = namedtuple("Grid", "crs transform width height")
#: A group of items: its key (a date, or a datetime), its time (the earliest of its
#: items' datetimes) and its items, in the order given.
Group = namedtuple("Group", "key time items")

#: href -> local file, for every file :func:`make_catalog` or :func:`solar_day_items`
#: wrote in this process (how :func:`serial_reference` reads the local files).
_LOCAL: dict[str, Path] = {}

# -- the scenes -------------------------------------------------------------------------

_AOI_LONLAT = (6.0, 45.0)
# name, CRS, shift (east, north) in metres from the AOI centre, nodata corner, minutes
_SCENES = [("A", "EPSG:32631", (0.0, 0.0), "bottom-right", 0),
           ("B", "EPSG:32632", (300.0, -200.0), "top-left", 0),
           ("C", "EPSG:32631", (-250.0, 150.0), "bottom-right", 10)]
_PASS = (10, 6)  # 10:06Z = 10:30 local solar time at 6°E


def _centre(crs, lon, lat):
    xs, ys = transform_points("EPSG:4326", crs, [lon], [lat])
    return xs[0], ys[0]


def _snap(value, step=20.0):
    return round(value / step) * step


def _scene_origin(crs, lon, lat, shift):
    """The top left corner of a scene centred (about) on lon, lat, shifted, on a 20 m
    grid so that the 10 m and the 20 m asset cover the same square."""
    x, y = _centre(crs, lon, lat)
    return (_snap(x + shift[0] - SCENE_SIZE / 2), _snap(y + shift[1] + SCENE_SIZE / 2))


def _nodata_mask(size, corner):
    """A triangle of nodata in one corner, its legs two fifths of the side (the same
    ground in both assets' resolutions)."""
    rows, cols = np.mgrid[0:size, 0:size]
    if "right" in corner:
        cols = size - 1 - cols
    if "bottom" in corner:
        rows = size - 1 - rows
    return rows + cols < size * 2 // 5


def _values(rng, size, level):
    """Smooth-ish field plus noise, in ``3000 * level + (1001..2999)``: never the nodata
    0, and a pixel's scene is its value // 3000 (A 0, B 1, C 2)."""
    rows, cols = np.mgrid[0:size, 0:size] / size
    phase = rng.uniform(0, 2 * np.pi, 2)
    field = 2000 + 600 * np.sin(6 * rows + phase[0]) * np.cos(5 * cols + phase[1])
    field = np.clip(field + rng.normal(0, 150, (size, size)), 1001, 2999)
    return (np.round(field) + 3000 * level).astype("uint16")


def _write(path, crs, origin, resolution, size, corner, rng, level):
    data = _values(rng, size, level)
    data[_nodata_mask(size, corner)] = 0
    transform = Affine(resolution, 0.0, origin[0], 0.0, -resolution, origin[1])
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16",
                   crs=crs, transform=transform, nodata=0, tiled=True,
                   blockxsize=BLOCK, blockysize=BLOCK)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return transform


def _footprint(crs, origin):
    """The scene's square in EPSG:4326 (4 corners, closed) and its bbox."""
    x0, y0 = origin
    xs = [x0, x0 + SCENE_SIZE, x0 + SCENE_SIZE, x0, x0]
    ys = [y0, y0, y0 - SCENE_SIZE, y0 - SCENE_SIZE, y0]
    lons, lats = transform_points(crs, "EPSG:4326", xs, ys)
    ring = [[round(lon, 9), round(lat, 9)] for lon, lat in zip(lons, lats)]
    bbox = [min(lons), min(lats), max(lons), max(lats)]
    return {"type": "Polygon", "coordinates": [ring]}, [round(v, 9) for v in bbox]


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(folder, base_url, item_id, when, crs, origin, corner, rng, projection,
          raster_ext, proj_level, level=0):
    folder = Path(folder)
    base_url = base_url.rstrip("/")
    epsg = int(crs.split(":")[1])
    extensions = []
    if projection == "v2":
        extensions.append(PROJECTION_V2)
        code = {"proj:code": crs}
    elif projection == "v1":
        extensions.append(PROJECTION_V1)
        code = {"proj:epsg": epsg}
    elif projection is None:
        code = {}
    else:
        raise ValueError(f"projection must be 'v2', 'v1' or None, not {projection!r}")
    if raster_ext:
        extensions.append(RASTER)
    geometry, bbox = _footprint(crs, origin)
    properties = {"datetime": _iso(when)}
    if proj_level == "mixed":
        properties.update(code)
    elif proj_level != "asset":
        raise ValueError(f"proj_level must be 'asset' or 'mixed', not {proj_level!r}")
    assets = {}
    for key, (resolution, size) in ASSETS.items():
        name = f"{item_id}_{key}.tif"
        transform = _write(folder / name, crs, origin, resolution, size, corner, rng,
                           level)
        href = f"{base_url}/{name}"
        _LOCAL[href] = folder / name
        asset = {"href": href, "type": GEOTIFF, "roles": ["data"]}
        if projection is not None:
            if proj_level == "asset":
                asset.update(code)
            asset["proj:transform"] = list(transform)[:6]
            asset["proj:shape"] = [size, size]
        if raster_ext:
            asset["raster:bands"] = [{"data_type": "uint16", "nodata": 0,
                                      "spatial_resolution": resolution}]
        assets[key] = asset
    return {"type": "Feature", "stac_version": "1.0.0", "stac_extensions": extensions,
            "id": item_id, "geometry": geometry, "bbox": bbox, "properties": properties,
            "links": [], "assets": assets}


def make_catalog(folder, base_url, *, days=3, seed=0, projection="v2", raster_ext=True,
                 start=date(2024, 6, 1), scenes="ABC", prefix="", proj_level="asset"):
    """Write the files of ``days`` days of scenes into ``folder``; return their Items.

    ``projection``: ``"v2"`` (``proj:code``), ``"v1"`` (``proj:epsg``) or ``None`` (no
    ``proj:`` field); ``proj:transform`` (6 numbers, rasterio's Affine order) and
    ``proj:shape`` ([rows, cols]) are on each asset, and so is the CRS unless
    ``proj_level="mixed"`` (the CRS in the item's properties, as Earth Search does).
    ``raster_ext``: each asset has ``raster:bands`` (data type and nodata).
    ``scenes``: which of A, B, C (in that order, each day); ``prefix`` starts every
    id and file name.  Items are in time order, A before B on a day.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for day in range(days):
        today = start + timedelta(days=day)
        for name, crs, shift, corner, minutes in _SCENES:
            if name not in scenes:
                continue
            when = datetime(today.year, today.month, today.day, *_PASS, tzinfo=timezone.utc)
            when += timedelta(minutes=minutes)
            origin = _scene_origin(crs, *_AOI_LONLAT, shift)
            item_id = f"{prefix}S{crs[-2:]}_{today:%Y%m%d}_{name}"
            items.append(_item(folder, base_url, item_id, when, crs, origin, corner, rng,
                               projection, raster_ext, proj_level, "ABC".index(name)))
    return items


def solar_day_items(folder, base_url, *, projection="v2", raster_ext=True, prefix="solar"):
    """Three items around midnight UTC, for grouping by local solar day.

    * ``{prefix}_east_2350``: 100°E 15°N (EPSG:32647), 2024-06-01T23:50:00Z, which is
      06:30 on 2024-06-02 in local solar time (100° / 15 = 6 h 40 min);
    * ``{prefix}_east_0100``: the same place, 2024-06-02T01:00:00Z (07:40 on 06-02);
    * ``{prefix}_west_2320``: 6°E 45°N (EPSG:32631), 2024-06-01T23:20:00Z, 23:44 on
      2024-06-01 (6° / 15 = 24 min; note that 23:50Z would be 00:14 on 06-02 there).

    Returned in this order (not time order).  By solar day:
    ``[[west_2320], [east_2350, east_0100]]`` (2024-06-01, then 2024-06-02); by UTC
    date the two east scenes would be apart.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    utc = timezone.utc
    scenes = [("east_2350", "EPSG:32647", (100.0, 15.0), datetime(2024, 6, 1, 23, 50, tzinfo=utc)),
              ("east_0100", "EPSG:32647", (100.0, 15.0), datetime(2024, 6, 2, 1, 0, tzinfo=utc)),
              ("west_2320", "EPSG:32631", (6.0, 45.0), datetime(2024, 6, 1, 23, 20, tzinfo=utc))]
    items = []
    for name, crs, lonlat, when in scenes:
        origin = _scene_origin(crs, *lonlat, (0.0, 0.0))
        items.append(_item(folder, base_url, f"{prefix}_{name}", when, crs, origin,
                           "top-left", rng, projection, raster_ext, "asset"))
    return items


def aoi_grid(crs="EPSG:32631", resolution=10.0, size=2000.0):
    """A ``Grid`` of ``size`` metres a side centred on the scenes' area (6°E 45°N): the
    scenes A, B and C overlap in it, and its edges are covered by none.  ``crs`` is a
    rasterio CRS."""
    crs = CRS.from_user_input(crs)
    x, y = _centre(crs, *_AOI_LONLAT)
    left, top = _snap(x - size / 2, resolution), _snap(y + size / 2, resolution)
    n = int(round(size / resolution))
    return Grid(crs, Affine(resolution, 0.0, left, 0.0, -resolution, top), n, n)


# -- helpers for checks ---------------------------------------------------------------


def local_path(href: str) -> Path:
    """The local file of an asset's href (written by this module in this process)."""
    try:
        return _LOCAL[href]
    except KeyError:
        raise KeyError(f"{href!r} was not written by tests.stac_catalog here") from None


def item_grid(item, asset):
    """``(crs, transform, width, height)`` of an item's asset, read from its file."""
    with rasterio.open(local_path(item["assets"][asset]["href"])) as src:
        return src.crs, src.transform, src.width, src.height


def _datetime(item) -> datetime:
    text = item["properties"]["datetime"]
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def _centroid_lon(item) -> float:
    """Mean longitude of the footprint's vertices (the closing one once)."""
    ring = item["geometry"]["coordinates"][0]
    ring = ring[:-1] if ring[0] == ring[-1] else ring
    return sum(point[0] for point in ring) / len(ring)


def _groups(items, key):
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return [Group(k, min(_datetime(i) for i in members), members)
            for k, members in sorted(groups.items(), key=lambda kv: kv[0])]


def group_by_solar_day(items) -> list[Group]:
    """Items grouped by local solar date: UTC datetime + longitude / 15 hours (the
    footprint's centroid longitude).  Groups in date order, items in the order given."""
    return _groups(items, lambda item: (
        _datetime(item) + timedelta(hours=_centroid_lon(item) / 15.0)).date())


def group_by_time(items) -> list[Group]:
    """Items grouped by equal datetimes; groups in time order, items in the order given."""
    return _groups(items, _datetime)


def serial_reference(steps, assets, grid, *, resampling="nearest", masked=False, nodata=0,
                     dtype="uint16"):
    """The plain rasterio loop a STAC load is compared with.

    ``steps``: a list of lists of items; returns an array (T, len(assets), height,
    width) of ``dtype``: for each step and asset, each item's asset (its local file)
    warped onto the whole grid in one read (a WarpedVRT, exact: see :data:`EXACT`),
    band 1; the first valid pixel (the VRT's mask: the file's nodata and outside the
    file are invalid) wins, in item order; pixels no item covers are ``nodata`` (and
    masked, in a masked array, when ``masked``).
    """
    resampling = Resampling[resampling] if isinstance(resampling, str) else resampling
    shape = (len(steps), len(assets), grid.height, grid.width)
    out = np.full(shape, nodata, dtype=dtype)
    filled = np.zeros(shape, dtype=bool)
    for t, items in enumerate(steps):
        for b, asset in enumerate(assets):
            for item in items:
                with rasterio.open(local_path(item["assets"][asset]["href"])) as src:
                    with WarpedVRT(src, crs=grid.crs, transform=grid.transform,
                                   width=grid.width, height=grid.height,
                                   resampling=resampling, tolerance=EXACT) as vrt:
                        data = vrt.read(1)
                        valid = vrt.read_masks(1) > 0
                take = valid & ~filled[t, b]
                out[t, b][take] = data[take]
                filled[t, b] |= take
    if masked:
        return np.ma.masked_array(out, mask=~filled, fill_value=nodata)
    return out


def write_item_collection(items, path) -> Path:
    """Write the items as a GeoJSON FeatureCollection (a STAC ItemCollection)."""
    path = Path(path)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(items)},
                               indent=1))
    return path
