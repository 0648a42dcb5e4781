"""Shapes: what users give (geometries, GeoJSON, pairs, a GeoDataFrame, a vector
file) made into one list of shapely geometries in a grid's CRS, with an index.

Files are read with pyogrio: GDAL's vector drivers (every format ``ogr2ogr``
reads) in one vectorised call that hands geometries back as WKB arrays (or
Arrow), without a Python object per feature and without geopandas; fiona is
the alternative, one Python dict per feature.  GeoJSON files are EPSG:4326
(RFC 7946), as GDAL reports them; any other file's own CRS is used.

Reprojection goes through ``rasterio.warp.transform_geom`` (GDAL's), so it
needs no pyproj.  shapely is imported when shapes are first read, never when
riomucho_dask is: it is the ``vector`` extra.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError, NotGeoreferencedWarning
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from ..errors import InputError, InputNotFoundError, MissingExtraError
from ..paths import is_remote
from ..read.grid import Grid, apply

__all__ = ["Features", "ShapeIndex", "read_shapes", "shapely", "to_grid", "burn"]

EXTRA = 'pip install "riomucho_dask[vector]"'


def shapely():
    """The shapely module, or MissingExtraError naming the ``vector`` extra."""
    try:
        import shapely as module
    except ImportError as err:
        raise MissingExtraError(
            f"shapes need shapely (and pyogrio for vector files): {EXTRA}") from err
    return module


#: rasterio 1.4's rasterize warns NotGeoreferencedWarning about its own in-memory
#: dataset (the transform is given): a filter for warnings from rasterio.features only.
_QUIET = ("ignore", None, NotGeoreferencedWarning, re.compile(r"rasterio\.features"), 0)


def burn(shapes, out_shape, transform, *, all_touched: bool, fill: Any = 0,
         dtype: Any = "uint8") -> np.ndarray:
    """``rasterio.features.rasterize``, without rasterio's warning about its own
    in-memory dataset.

    The filter is put first in the list once and left there (``catch_warnings``
    around each call would be a race between threads: one thread's exit takes
    the filter away while another is still burning).
    """
    if not warnings.filters or warnings.filters[0] != _QUIET:
        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning,
                                module=r"rasterio\.features")
    return rasterize(shapes, out_shape=out_shape, transform=transform,
                     all_touched=all_touched, fill=fill, dtype=dtype)


def _pyogrio():
    try:
        import pyogrio.raw
    except ImportError as err:
        raise MissingExtraError(f"vector files are read with pyogrio: {EXTRA}") from err
    return pyogrio.raw


@dataclass(frozen=True, eq=False)
class Features:
    """Shapes as given, normalised: ``geometries`` (a numpy object array of shapely
    geometries, None for a feature without one), ``properties`` (one dict per
    feature, empty where none was given), ``pair_values`` (the values of
    ``(geometry, value)`` pairs, else None) and ``crs`` (None: unknown, taken to
    be the grid's)."""

    geometries: np.ndarray
    properties: list
    pair_values: list | None
    crs: CRS | None
    label: str

    def __len__(self) -> int:
        return len(self.geometries)

    def values(self, values: Any) -> np.ndarray | None:
        """Per-feature values: a property's, the pairs', a sequence's, or None."""
        if values is None:
            return None if self.pair_values is None else _numbers(self.pair_values, "pair")
        if isinstance(values, str):
            missing = [i for i, props in enumerate(self.properties) if values not in props]
            if missing:
                raise InputError(
                    f"values={values!r}: feature {missing[0]} of {self.label} has no such "
                    f"property ({len(missing)} of {len(self)} lack it); it has "
                    f"{sorted(self.properties[missing[0]])}")
            return _numbers([props[values] for props in self.properties], f"{values!r} of")
        found = list(values)
        if len(found) != len(self):
            raise InputError(f"values has {len(found)} items for {len(self)} shapes")
        return _numbers(found, "value of")


def _numbers(items: list, what: str) -> np.ndarray:
    for i, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, (int, float, np.number)) or \
                not math.isfinite(item):
            raise InputError(f"the {what} feature {i} is {item!r}, not a finite number")
    return np.asarray(items)


def parse_crs(value: Any, name: str = "crs") -> CRS | None:
    """A rasterio CRS from anything ``CRS.from_user_input`` takes (a pyproj CRS
    through its WKT), or None."""
    if value is None or isinstance(value, CRS):
        return value
    if hasattr(value, "to_wkt") and not isinstance(value, str):
        value = value.to_wkt()
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as err:
        raise InputError(f"{name} {value!r} is not a CRS rasterio can parse: {err}") from err


def _is_geometry(item: Any) -> bool:
    return hasattr(item, "geom_type") and hasattr(item, "__geo_interface__")


def _is_geojson_geometry(item: Any) -> bool:
    return isinstance(item, Mapping) and isinstance(item.get("type"), str) and (
        "coordinates" in item or "geometries" in item)


def _geometry(item: Any, index: int, label: str):
    """A shapely geometry (None for a null one) from a shapely object or a GeoJSON
    mapping; InputError naming ``index`` for anything else."""
    if item is None or _is_geometry(item):
        return item
    if _is_geojson_geometry(item):
        try:
            return shapely().geometry.shape(item)
        except Exception as err:  # shapely's and GEOS's own, for broken GeoJSON
            raise InputError(f"shape {index} of {label} is not valid GeoJSON: {err}") from err
    raise InputError(
        f"shape {index} of {label} is a {type(item).__name__} ({_short(item)}), not a "
        "geometry: expected a shapely geometry, a GeoJSON geometry or Feature, or a "
        "(geometry, value) pair")


def _short(item: Any) -> str:
    text = repr(item)
    return text if len(text) <= 60 else text[:57] + "..."


def read_shapes(shapes: Any, crs: Any = None) -> Features:
    """Normalise ``shapes`` (see :func:`~riomucho_dask.rasterize`) without reading
    any raster; ``crs``, the shapes' CRS where they do not say it themselves.

    Raises
    ------
    InputError
        A shape that is not a geometry (named by its index), a CRS rasterio cannot
        parse, ``crs`` contradicting a file's or a GeoDataFrame's own.
    InputNotFoundError
        A vector file that does not exist or GDAL cannot open.
    MissingExtraError
        Without shapely (or pyogrio, for a file).
    """
    module = shapely()
    given = parse_crs(crs)
    if isinstance(shapes, (str, os.PathLike)):
        return _read_file(os.fspath(shapes), given)
    if hasattr(shapes, "geometry") and hasattr(shapes, "columns"):  # a GeoDataFrame
        label = "the GeoDataFrame"
        own = parse_crs(getattr(shapes, "crs", None), f"{label}'s crs")
        geometries = [_geometry(g, i, label) for i, g in enumerate(shapes.geometry)]
        columns = [c for c in shapes.columns if c != shapes.geometry.name] \
            if hasattr(shapes.geometry, "name") else [c for c in shapes.columns
                                                      if c != "geometry"]
        rows = [dict(zip(columns, row)) for row in zip(*(list(shapes[c]) for c in columns))] \
            if columns else [{} for _ in geometries]
        return _features(geometries, rows, None, _one_crs(own, given, label), label)
    if isinstance(shapes, Mapping) and shapes.get("type") == "FeatureCollection":
        shapes = shapes.get("features", [])
    elif isinstance(shapes, Mapping) or _is_geometry(shapes):
        shapes = [shapes]  # one geometry or Feature
    if not isinstance(shapes, Iterable):
        raise InputError(
            f"shapes must be geometries, GeoJSON, (geometry, value) pairs, a "
            f"GeoDataFrame or a vector file path, not a {type(shapes).__name__}")
    label = "the shapes"
    geometries, properties, pairs = [], [], []
    for index, item in enumerate(shapes):
        if isinstance(item, Mapping) and item.get("type") == "Feature":
            geometries.append(_geometry(item.get("geometry"), index, label))
            properties.append(dict(item.get("properties") or {}))
            pairs.append(None)
        elif isinstance(item, (tuple, list)) and len(item) == 2 and not isinstance(
                item[0], (int, float)):
            geometries.append(_geometry(item[0], index, label))
            properties.append({})
            pairs.append(item[1])
        else:
            geometries.append(_geometry(item, index, label))
            if item is None:
                raise InputError(f"shape {index} of {label} is None, not a geometry")
            properties.append({})
            pairs.append(None)
    given_pairs = [p for p in pairs if p is not None]
    if given_pairs and len(given_pairs) != len(pairs):
        raise InputError("shapes mix (geometry, value) pairs with plain geometries: give "
                         "every shape a value, or none")
    del module
    return _features(geometries, properties, pairs if given_pairs else None, given, label)


def _one_crs(own: CRS | None, given: CRS | None, label: str) -> CRS | None:
    if own is not None and given is not None and own != given:
        raise InputError(f"crs={given.to_string()!r} but {label} is in "
                         f"{own.to_string() or 'a custom CRS'}: leave crs= out")
    return own if own is not None else given


def _features(geometries, properties, pairs, crs, label) -> Features:
    array = np.empty(len(geometries), dtype=object)
    array[:] = geometries
    return Features(array, properties, pairs, crs, label)


def _read_file(path: str, given: CRS | None) -> Features:
    if not is_remote(path) and not os.path.exists(path):
        raise InputNotFoundError(f"shapes file {path!r} does not exist")
    raw = _pyogrio()
    try:
        meta, _, wkb, fields = raw.read(path)
    except Exception as err:  # pyogrio's DataSourceError and GDAL's own
        raise InputNotFoundError(f"cannot read shapes file {path!r}: {err}") from err
    label = f"shapes file {path!r}"
    own = parse_crs(meta.get("crs"), f"{label}'s CRS")
    if own is None and path.lower().endswith((".geojson", ".json")):
        own = CRS.from_epsg(4326)
    geometries = shapely().from_wkb(wkb)
    names = list(meta.get("fields", []))
    rows = [dict(zip(names, (_python(v) for v in row))) for row in zip(*fields)] \
        if names else [{} for _ in range(len(geometries))]
    return _features(list(geometries), rows, None, _one_crs(own, given, label), label)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def to_grid(features: Features, grid: Grid):
    """The geometries in ``grid``'s CRS (None and empty ones kept as None).

    Raises
    ------
    InputError
        Shapes in a CRS while the grid has none, or a CRS GDAL cannot transform.
    """
    module = shapely()
    geometries = features.geometries.copy()
    present = np.array([g is not None and not g.is_empty for g in geometries], dtype=bool)
    geometries[~present] = None
    if features.crs is None or features.crs == grid.crs or not present.any():
        return geometries
    if grid.crs is None:
        raise InputError(f"{features.label} are in {features.crs.to_string()} but the grid "
                         "has no CRS: they cannot be placed on it")
    # Edges stay straight between vertices in the CRS they are moved to: a parallel
    # of EPSG:4326 is a curve in UTM.  Edges are cut into pieces of at most 1/256 of
    # the shape's extent first, so they bend as the CRS bends them.
    dense = []
    for g in geometries[present]:
        left, bottom, right, top = g.bounds
        step = max(right - left, top - bottom) / 256
        dense.append(module.segmentize(g, step) if step > 0 else g)
    try:
        moved = transform_geom(features.crs, grid.crs, [g.__geo_interface__ for g in dense])
    except Exception as err:  # GDAL's and rasterio's own
        raise InputError(f"{features.label} cannot be transformed from "
                         f"{features.crs.to_string()} to {grid.crs.to_string()}: {err}"
                         ) from err
    geometries[present] = [module.geometry.shape(g) for g in moved]
    return geometries


class ShapeIndex:
    """Geometries on a grid with, per window, the geometries whose bounds touch it.

    The STRtree is built once, in the client, when the graph is built; the windows'
    lists of geometries are computed there too, so the tasks get them with the one
    object (never a copy of all shapes per task) and need no tree.  A window not
    listed (a slice of the array rechunked since) builds the tree where it runs.
    """

    def __init__(self, geometries: np.ndarray, grid: Grid, values: np.ndarray | None = None):
        module = shapely()
        self.geometries = geometries
        self.grid = grid
        self.values = values
        present = np.array([g is not None for g in geometries], dtype=bool)
        self.bounds = np.full((len(geometries), 4), np.nan)
        if present.any():
            self.bounds[present] = module.bounds(geometries[present].astype(object))
        self._present = np.flatnonzero(present)
        self._tree = None
        self.windows: dict[tuple[int, int, int, int], np.ndarray] = {}
        wkb = module.to_wkb(geometries[present].astype(object)) if present.any() else []
        digest = hashlib.sha256()
        for item in wkb:
            digest.update(item)
        digest.update(present.tobytes())
        if values is not None:
            digest.update(np.asarray(values, dtype="float64").tobytes())
        self._token = digest.hexdigest()

    def __dask_tokenize__(self):
        return ("ShapeIndex", self._token, self.grid)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_tree"] = None
        return state

    def __len__(self) -> int:
        return len(self.geometries)

    @property
    def tree(self):
        if self._tree is None:
            self._tree = shapely().STRtree(self.geometries[self._present].astype(object))
        return self._tree

    def window_transform(self, row_off: int, col_off: int) -> Affine:
        return apply(self.grid.transform, Affine.translation(col_off, row_off))

    def query(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        """Indexes (ascending) of the geometries whose bounds touch the window."""
        key = (row_off, col_off, height, width)
        found = self.windows.get(key)
        if found is not None:
            return found
        if not len(self._present):
            return np.empty(0, dtype=np.intp)
        t = self.window_transform(row_off, col_off)
        xs, ys = zip(*(apply(t, corner) for corner in ((0, 0), (width, 0), (0, height),
                                                   (width, height))))
        box = shapely().box(min(xs), min(ys), max(xs), max(ys))
        return np.sort(self._present[self.tree.query(box)])

    def index_windows(self, row_chunks, col_chunks) -> None:
        """List, for every window of these chunks, the geometries that touch it."""
        row_off = 0
        for height in row_chunks:
            col_off = 0
            for width in col_chunks:
                self.windows[(row_off, col_off, height, width)] = self.query(
                    row_off, col_off, height, width)
                col_off += width
            row_off += height
