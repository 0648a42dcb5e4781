"""STAC items to a :class:`~.series.Series`: dated sources with their grids.

Plain dictionaries in, no pystac import: an Item is a GeoJSON Feature with
``properties.datetime`` and ``assets``; pystac objects are taken through their
``to_dict()``.  The projection extension (``proj:code`` or ``proj:epsg``,
``proj:transform``, ``proj:shape``, on the asset or on the item) gives an
asset's grid without opening it, and the raster extension
(``raster:bands[0].data_type`` and ``nodata``) its dtype and nodata; an asset
without them is opened (headers only) when the graph is built.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from typing import Any, Literal

from affine import Affine
from rasterio.crs import CRS

from ..errors import InputError
from ..paths import is_remote
from . import handles
from .info import RasterInfo
from .series import Series, _FirstBand, _Step, as_time

__all__ = ["stac_series", "item_dicts", "GroupBy"]

GroupBy = Literal["solar_day", "time"]
_GROUPS = ("solar_day", "time", None)


def item_dicts(items: Any) -> tuple[list[dict], str | None]:
    """STAC Item dicts from dicts, pystac Items, an ItemCollection, a
    FeatureCollection or a path to one; and the folder relative hrefs start from
    (the JSON file's), if any."""
    base = None
    if isinstance(items, (str, os.PathLike)):
        path = os.fspath(items)
        try:
            with open(path, encoding="utf-8") as file:
                items = json.load(file)
        except FileNotFoundError as err:
            raise InputError(f"items: the STAC file {path!r} does not exist") from err
        except (OSError, ValueError) as err:
            raise InputError(f"items: cannot read {path!r} as STAC JSON: {err}") from err
        base = os.path.dirname(os.path.abspath(path))
    if hasattr(items, "to_dict") and not isinstance(items, dict):
        items = items.to_dict()
    if isinstance(items, dict):
        if items.get("type") == "FeatureCollection" or "features" in items:
            items = items.get("features", [])
        else:
            items = [items]
    if not isinstance(items, Iterable):
        raise InputError(f"items must be STAC Items (dicts or pystac objects), an "
                         f"ItemCollection or a path to one, not {type(items).__name__}")
    found = []
    for position, item in enumerate(items):
        if hasattr(item, "to_dict") and not isinstance(item, dict):
            item = item.to_dict()
        if not isinstance(item, dict) or "assets" not in item:
            raise InputError(f"items[{position}] is not a STAC Item (a Feature with assets): "
                             f"{str(item)[:80]!r}")
        found.append(item)
    if not found:
        raise InputError("items: no STAC Item given")
    return found, base


def _name(item: dict, position: int) -> str:
    return f"item {item.get('id', position)!r}"


def item_time(item: dict, position: int = 0) -> dt.datetime:
    """The item's ``datetime`` (or ``start_datetime``), timezone-aware."""
    props = item.get("properties") or {}
    value = props.get("datetime") or props.get("start_datetime")
    if value is None:
        raise InputError(f"{_name(item, position)} has no properties.datetime")
    return as_time(value, f"{_name(item, position)}'s datetime")


def item_longitude(item: dict) -> float:
    """The longitude of the item's footprint centre (bbox, else geometry)."""
    bbox = item.get("bbox")
    if bbox and len(bbox) >= 4:
        west, east = bbox[0], bbox[len(bbox) // 2]
        if east < west:  # across the antimeridian
            east += 360
        centre = (west + east) / 2
        return centre - 360 if centre > 180 else centre
    coords = []

    def walk(node):
        if isinstance(node, (list, tuple)) and node and isinstance(node[0], (int, float)):
            coords.append(node[0])
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)

    walk((item.get("geometry") or {}).get("coordinates", []))
    return (min(coords) + max(coords)) / 2 if coords else 0.0


def solar_day(item: dict, position: int = 0) -> dt.date:
    """The local solar date of an item: its UTC datetime plus its centre's
    longitude / 15 hours (the scenes of one overpass share it).

    Examples
    --------
    >>> item = {"bbox": [99.5, 10, 100.5, 11], "properties":
    ...         {"datetime": "2024-05-01T23:50:00Z"}, "assets": {}}
    >>> solar_day(item)
    datetime.date(2024, 5, 2)
    """
    utc = item_time(item, position).astimezone(dt.timezone.utc)
    return (utc + dt.timedelta(hours=item_longitude(item) / 15)).date()


def _field(item: dict, asset: dict, key: str) -> Any:
    if key in asset:
        return asset[key]
    return (item.get("properties") or {}).get(key)


def _crs(item: dict, asset: dict) -> CRS | None:
    for key in ("proj:code", "proj:epsg", "proj:wkt2", "proj:projjson"):
        value = _field(item, asset, key)
        if value is None:
            continue
        if key == "proj:epsg":
            value = f"EPSG:{int(value)}"
        return CRS.from_user_input(value)
    return None


def _asset_info(item: dict, key: str, href: str, position: int):
    """A RasterInfo of the asset's first band from its metadata, or None when
    the metadata does not say its CRS, transform, shape and dtype."""
    asset = item["assets"][key]
    transform, shape = _field(item, asset, "proj:transform"), _field(item, asset, "proj:shape")
    bands = asset.get("raster:bands") or (item.get("properties") or {}).get("raster:bands")
    band = bands[0] if bands else {}
    dtype = band.get("data_type")
    try:
        crs = _crs(item, asset)
    except Exception as err:
        raise InputError(f"{_name(item, position)} asset {key!r}: its projection "
                         f"metadata is not a CRS rasterio knows: {err}") from err
    if crs is None or transform is None or shape is None:
        return None
    if len(transform) not in (6, 9) or len(shape) != 2:
        raise InputError(f"{_name(item, position)} asset {key!r}: proj:transform "
                         f"{transform!r} or proj:shape {shape!r} is malformed")
    nodata = band.get("nodata")
    if isinstance(nodata, str):  # "nan", "inf", "-inf"
        nodata = float(nodata)
    height, width = int(shape[0]), int(shape[1])
    # (no data type: the first file of the asset key is opened for it, and its nodata)
    return RasterInfo(path=href, count=1, height=height, width=width,
                      dtype=None if dtype is None else str(dtype),
                      block_shape=(min(512, height), min(512, width)), crs=crs,
                      transform=Affine(*transform[:6]), nodata=nodata, profile={},
                      signature=handles.signature(href))


def _href(asset: dict, base: str | None) -> str:
    href = asset.get("href")
    if not isinstance(href, str) or not href:
        raise InputError("asset has no href")
    if href.startswith("file://"):
        href = href[len("file://"):]
    if not is_remote(href) and not os.path.isabs(href):
        # absolute in the graph: workers may run in another directory
        href = os.path.abspath(os.path.join(base, href) if base is not None else href)
    return href


def stac_series(items: Any, assets: str | Iterable[str], *,
                groupby: GroupBy | None = "solar_day") -> Series:
    """A :class:`~riomucho_dask.Series` from STAC items: one band per asset, one
    step per date.

    Parameters
    ----------
    items : dicts, pystac Items, an ItemCollection, or a path
        STAC Items (GeoJSON Features), anything with ``to_dict()`` (pystac
        need not be installed), or a path to an ItemCollection /
        FeatureCollection JSON file (relative hrefs start from its folder).
    assets : str or sequence of str
        The asset keys, in band order.  Each asset gives its file's first band.
    groupby : {"solar_day", "time"} or None, optional
        ``"solar_day"`` (default): the items of one local solar day (UTC
        datetime plus the footprint centre's longitude / 15 hours: one
        overpass) are one step; ``"time"``: items of equal datetimes; None:
        each item a step.  Within a step, items keep the order given: a
        mosaic, the first valid pixel wins.  A step's time is the earliest
        datetime in it.

    Returns
    -------
    Series
        ``times`` the steps' times, ``bands`` the asset keys.  Nothing has
        been read: assets with projection metadata (``proj:code`` or
        ``proj:epsg``, ``proj:transform``, ``proj:shape``) and a
        ``raster:bands`` data type are never opened before compute; without a
        data type, the first item's file of that asset key is opened (its
        header) for the data type and nodata of all; assets without projection
        metadata are opened (headers only, 8 at a time) when the graph is built.  The declared
        nodata (what the grid holds where no item has a pixel) is the raster
        extension's ``nodata``, or an opened file's; 0 where there is none.
        Which pixels are valid is always the file's own say (its nodata,
        mask or alpha), as a read of it would.

    Raises
    ------
    InputError
        An unknown asset key (named, with the item), an item without a
        datetime, an unknown ``groupby``; before anything is read.

    Examples
    --------
    >>> import rasterio
    >>> import riomucho_dask as rmd
    >>> with rasterio.open("scene_a.tif") as src:
    ...     proj = {"proj:code": "EPSG:32631", "proj:shape": [src.height, src.width],
    ...             "proj:transform": list(src.transform)[:6]}
    >>> def item(name, when):
    ...     return {"type": "Feature", "id": name, "bbox": [2.99, 37.9, 3.01, 37.92],
    ...             "properties": {"datetime": when, **proj},
    ...             "assets": {"red": {"href": "scene_a.tif",
    ...                                "raster:bands": [{"data_type": "uint16"}]}}}
    >>> series = rmd.stac_series([item("a", "2024-05-01T10:30:00Z"),
    ...                           item("b", "2024-05-01T10:31:00Z"),
    ...                           item("c", "2024-05-11T10:30:00Z")], ["red"])
    >>> len(series), series.bands
    (2, ('red',))
    """
    if groupby not in _GROUPS:
        raise InputError(f"groupby must be 'solar_day', 'time' or None, not {groupby!r}")
    keys = [assets] if isinstance(assets, str) else list(assets)
    if not keys or not all(isinstance(k, str) for k in keys):
        raise InputError(f"assets must be asset keys (strings), in band order, not {assets!r}")
    found, base = item_dicts(items)
    entries = []  # (group key, time, position, item)
    for position, item in enumerate(found):
        missing = [key for key in keys if key not in item["assets"]]
        if missing:
            raise InputError(
                f"{_name(item, position)} has no asset {missing[0]!r} (it has "
                f"{sorted(item['assets'])})")
        time = item_time(item, position)
        if groupby == "solar_day":
            group = solar_day(item, position)
        elif groupby == "time":
            group = time
        else:
            group = position
        entries.append((group, time, position, item))
    groups: dict = {}
    for entry in entries:
        groups.setdefault(entry[0], []).append(entry)
    steps = []
    for members in groups.values():
        files = []
        for key in keys:
            mosaic = []
            for _, _, position, item in members:
                try:
                    href = _href(item["assets"][key], base)
                except InputError as err:
                    raise InputError(f"{_name(item, position)} asset {key!r}: {err}") from err
                info = _asset_info(item, key, href, position)
                mosaic.append(info if info is not None else _FirstBand(href))
            files.append(tuple(mosaic))
        ids = [str(item.get("id", position)) for _, _, position, item in members]
        label = f" (item{'s' if len(ids) > 1 else ''} {', '.join(ids[:3])}" \
                f"{'...' if len(ids) > 3 else ''})"
        steps.append(_Step(min(time for _, time, _, _ in members), tuple(files), label))
    return Series(steps, bands=keys)
