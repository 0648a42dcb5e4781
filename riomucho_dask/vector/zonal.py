"""Zonal statistics: per-feature statistics of a raster's pixels, as one dask graph.

Per window, the features whose bounds touch it are burned by GDAL in groups that
cannot claim the same pixel (:func:`colours`, made once in the client), each with its
own label, so overlapping and adjacent features each count their own pixels in a few
GDAL calls per window.  The valid pixels under each label give a partial: count, sum,
min, max and the sum of squared deviations from the partial's own mean (M2), all in
float64, by ``bincount`` (and, for a median or percentiles, each feature's
histogram): :mod:`~riomucho_dask.vector.partials`.  Partials are merged by a tree of
tasks, so memory follows the windows in flight and the features they touch, never
all features times all windows.
"""

from __future__ import annotations

import math
import os
from typing import Any

import dask
import dask.array as da
import numpy as np
from affine import Affine
from dask.base import tokenize
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..errors import InputError
from ..nodata import invalid
from ..read import NAME as READ_NAME
from ..read import array_grids, open_raster, raster_info, raster_sources
from ..read.grid import apply
from ..windows import offsets
from .partials import (
    HISTOGRAM,
    LOWEST,
    SPAN,
    STATISTICS,
    Partial,
    check_stats,
    finish,
    histograms,
    merge,
)
from .shapes import ShapeIndex, burn, read_shapes, shapely, to_grid

__all__ = ["zonal_stats", "STATISTICS", "Partial", "colours", "window_stats"]

#: Partials merged per task of the tree.
SPLIT_EVERY = 8


def _values_array(values: Any, band: int, nodata: Any) -> tuple[da.Array, Any, str]:
    """``(the (bands, rows, cols) array, nodata, label)``, ``band`` checked."""
    if isinstance(values, (str, os.PathLike)):
        info = raster_info(values)
        striped = info.block_shape[1] == info.width and info.block_shape[0] < 256
        # a file's mask (internal, side-car or alpha) says which pixels are missing,
        # as its nodata does
        array = open_raster(values, chunks=512 if striped else "blocks", masked=info.mask)
        own, label = info.nodata, f"raster {info.path!r}"
    elif isinstance(values, da.Array):
        if values.ndim == 2:
            values = values[np.newaxis]
        if values.ndim != 3:
            raise InputError(f"values has shape {values.shape}: expected (bands, rows, cols)")
        grids = array_grids(values)
        if len(grids) != 1 or tuple(values.shape[1:]) != grids[0].shape:
            what = "reads no raster" if not grids else (
                f"reads rasters on {len(grids)} grids" if len(grids) > 1 else
                f"is {values.shape[1]} x {values.shape[2]}, not its grid's "
                f"{grids[0].height} x {grids[0].width}")
            raise InputError(
                f"zonal_stats needs values that know their grid (a raster path, or an array "
                f"of open_raster, map_windows or rasterize); this array {what}")
        array, label = values, "the array"
        # a file's nodata is a value of that file's pixels: it says which pixels of
        # an open_raster array are missing, not which of a derived one (a difference
        # of 0.0 is data); those are masked, or say nodata=
        sources = raster_sources(values)
        own = sources[0].nodata if values.name.startswith(READ_NAME) and len(sources) == 1 \
            else None
    else:
        raise InputError(f"values must be a raster path or a dask array, not a "
                         f"{type(values).__name__}")
    if isinstance(band, bool) or not isinstance(band, (int, np.integer)) or \
            not 1 <= band <= array.shape[0]:
        raise InputError(f"band={band!r}: {label} has bands 1 to {array.shape[0]}")
    return array, own if nodata is None else nodata, label


#: Colouring gives up (one burn per feature, as without it) past this many pairs of
#: features whose bounds meet, per feature: nested or stacked features, where it
#: would cost more than the burns it saves.
PAIRS_PER_FEATURE = 32

#: shapely's type ids of the geometries whose pixels are those of their centres.
_AREAL = (3, 6)  # Polygon, MultiPolygon


def _diagonal(transform: Affine) -> float:
    """The longer diagonal of a pixel (of a sheared one too)."""
    a, b, d, e = transform.a, transform.b, transform.d, transform.e
    return max(math.hypot(a + b, d + e), math.hypot(a - b, d - e))


def colours(index: ShapeIndex, all_touched: bool) -> np.ndarray:
    """A colour per geometry such that no two geometries of one colour can claim
    the same pixel: they are burned together, one GDAL call per colour and window.

    Two geometries conflict when they come within a pixel's diagonal of each other
    where either one takes every pixel it touches (``all_touched``, and always for
    points and lines, which burn the pixels they cross), else within a hundredth of
    a pixel's diagonal (polygons by pixel centres: only polygons that meet can hold
    one centre; the margin is for GDAL's rounding).  Greedy colouring in order of
    the geometries: fields that tile a region take a handful of colours.  Past
    :data:`PAIRS_PER_FEATURE` pairs of overlapping bounds per feature (nested or
    stacked features), every feature has its own colour.
    """
    module = shapely()
    present = index._present
    n = len(present)
    colour = np.arange(len(index), dtype=np.int64)
    if n < 2:
        return colour
    geometries = index.geometries[present].astype(object)
    tree = index.tree  # (the one the windows' features were listed with)
    if len(tree.query(geometries)[0]) > PAIRS_PER_FEATURE * n:  # (bounds only: cheap)
        return colour
    touched = 1.01 * _diagonal(index.grid.transform)
    left, right = tree.query(geometries, predicate="dwithin",
                             distance=touched if all_touched else touched / 101)
    linear = np.flatnonzero(~np.isin(module.get_type_id(geometries), _AREAL))
    if not all_touched and len(linear):  # points and lines: every pixel they cross
        near, other = tree.query(geometries[linear], predicate="dwithin", distance=touched)
        left = np.concatenate([left, linear[near], other])
        right = np.concatenate([right, other, linear[near]])
    keep = left < right
    pairs = np.unique(np.stack([right[keep], left[keep]]), axis=1)  # sorted by right
    right, left = pairs
    starts = np.searchsorted(right, np.arange(n + 1))
    mine = np.zeros(n, dtype=np.int64)
    for k in range(n):
        taken = mine[left[starts[k]:starts[k + 1]]]
        if len(taken):
            used = np.zeros(len(taken) + 1, dtype=bool)
            used[taken[taken <= len(taken)]] = True
            mine[k] = int(np.argmin(used))  # the lowest colour no neighbour has
    colour[present] = mine
    return colour


def _pixel_boxes(index: ShapeIndex, ids: np.ndarray, transform: Affine, height: int,
                 width: int) -> np.ndarray:
    """``(row0, row1, col0, col1)`` per geometry: its bounds on the window's pixels,
    one pixel wider each side (GDAL decides the edge pixels, not this box), clipped."""
    left, bottom, right, top = index.bounds[ids].T
    inverse = ~transform
    xs = np.stack([left, left, right, right])
    ys = np.stack([bottom, top, bottom, top])
    cols = inverse.a * xs + inverse.b * ys + inverse.c
    rows = inverse.d * xs + inverse.e * ys + inverse.f
    return np.stack([
        np.clip(np.floor(rows.min(axis=0)) - 1, 0, height),
        np.clip(np.ceil(rows.max(axis=0)) + 1, 0, height),
        np.clip(np.floor(cols.min(axis=0)) - 1, 0, width),
        np.clip(np.ceil(cols.max(axis=0)) + 1, 0, width)], axis=1).astype(np.int64)


def window_stats(block: np.ndarray, index: ShapeIndex, row_off: int, col_off: int,
                 ids: np.ndarray, nodata: Any, all_touched: bool,
                 colour: np.ndarray | None = None, histogram: bool = False,
                 band: int | None = None) -> Partial:
    """The partial statistics of the features ``ids`` over one window's pixels
    (of ``block[band]`` where ``band`` is given: the chunk of every band, read
    by the task before, not sliced by a task of its own).

    The features of one colour (see :func:`colours`: none can claim a pixel of
    another) are burned together, each with its place among them (plus one), over
    the box their pixels fall in; the valid pixels under each label are reduced by
    ``bincount`` (count, sum, then the squared deviations from the window's mean
    of that feature) and ``minimum.at`` / ``maximum.at``; with ``histogram``, the
    pixels of each (feature, value) too (``numpy.unique`` of their keys).
    """
    if band is not None:
        block = block[band]
    if np.ma.isMaskedArray(block):
        valid = ~np.ma.getmaskarray(block)
        data = np.asarray(block.data)
    else:
        data = np.asarray(block)
        valid = np.ones(data.shape, dtype=bool)
    bad = invalid(data, nodata)
    if bad is not None:
        valid &= ~bad
    height, width = data.shape
    ids = np.asarray(ids, dtype=np.int64)
    n = len(ids)
    count = np.zeros(n, dtype=np.int64)
    total, m2 = np.zeros(n), np.zeros(n)
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    keys = []
    if n:
        transform = index.window_transform(row_off, col_off)
        boxes = _pixel_boxes(index, ids, transform, height, width)
        inside = (boxes[:, 0] < boxes[:, 1]) & (boxes[:, 2] < boxes[:, 3])
        groups = np.arange(n) if colour is None else colour[ids]  # (None: one a burn)
        for group in np.unique(groups[inside]):
            members = np.flatnonzero(inside & (groups == group))
            m = len(members)
            r0, c0 = boxes[members, 0].min(), boxes[members, 2].min()
            r1, c1 = boxes[members, 1].max(), boxes[members, 3].max()
            labels = burn([(index.geometries[ids[k]], label + 1)
                           for label, k in enumerate(members.tolist())],
                          out_shape=(r1 - r0, c1 - c0),
                          transform=apply(transform, Affine.translation(c0, r0)),
                          all_touched=all_touched, fill=0,
                          dtype="uint8" if m < 255 else "int32")
            under = (labels > 0) & valid[r0:r1, c0:c1]
            raw = data[r0:r1, c0:c1][under]
            if not raw.size:
                continue
            pixels = raw.astype("float64")
            if m == 1:  # (one feature: plain reductions, no label arithmetic)
                k = members[0]
                count[k] += pixels.size
                total[k] += pixels.sum()
                low[k], high[k] = pixels.min(), pixels.max()
                m2[k] += np.square(pixels - total[k] / count[k]).sum()
                if histogram:
                    keys.append(ids[k] * SPAN + (raw.astype(np.int64) - LOWEST))
                continue
            local = labels[under].astype(np.intp) - 1  # (members' places)
            if histogram:
                keys.append(ids[members[local]] * SPAN + (raw.astype(np.int64) - LOWEST))
            part_count = np.bincount(local, minlength=m)
            part_sum = np.bincount(local, weights=pixels, minlength=m)
            part_low, part_high = np.full(m, np.inf), np.full(m, -np.inf)
            np.minimum.at(part_low, local, pixels)
            np.maximum.at(part_high, local, pixels)
            mean = np.divide(part_sum, part_count, out=np.zeros(m), where=part_count > 0)
            count[members] += part_count
            total[members] += part_sum
            low[members] = np.minimum(low[members], part_low)
            high[members] = np.maximum(high[members], part_high)
            m2[members] += np.bincount(local, weights=np.square(pixels - mean[local]),
                                       minlength=m)
    found = count > 0
    freq = None
    if histogram:
        keys, freq = np.unique(np.concatenate(keys) if keys else np.empty(0, np.int64),
                               return_counts=True)
    return Partial(ids[found], count[found], total[found], m2[found], low[found],
                   high[found], keys if histogram else None, freq)


def zonal_graph(array: da.Array, band: int, index: ShapeIndex, stats: tuple[str, ...],
                nodata: Any, all_touched: bool) -> Delayed:
    """The statistics of ``index``'s features over band ``band`` (from 0) of the
    ``(bands, rows, cols)`` array, as one Delayed (windows that no feature touches
    are not in it: they are never read)."""
    name = "zonal-" + tokenize(array.name, band, index, stats, nodata, all_touched)
    starts = offsets(array.chunks[0])
    chunk = int(np.searchsorted(starts, band, side="right")) - 1  # (the band's chunk)
    shapes_key = name + "-shapes"
    colours_key = name + "-colours"
    dsk: dict = {shapes_key: index, colours_key: colours(index, all_touched)}
    parts = []
    row_offsets, col_offsets = offsets(array.chunks[1]), offsets(array.chunks[2])
    for i, height in enumerate(array.chunks[1]):
        for j, width in enumerate(array.chunks[2]):
            ids = index.query(row_offsets[i], col_offsets[j], height, width)
            if not len(ids):
                continue
            key = (name + "-window", i, j)
            dsk[key] = (window_stats, (array.name, chunk, i, j), shapes_key,
                        row_offsets[i], col_offsets[j], ids, nodata, bool(all_touched),
                        colours_key, histograms(stats), band - starts[chunk])
            parts.append(key)
    level = 0
    while len(parts) > 1:
        merged = []
        for k in range(0, len(parts), SPLIT_EVERY):
            key = (name + "-merge", level, k)
            dsk[key] = (merge, list(parts[k:k + SPLIT_EVERY]))
            merged.append(key)
        parts, level = merged, level + 1
    final = name + "-stats"
    dsk[final] = (finish, (merge, list(parts)), len(index), stats)
    return Delayed(final, HighLevelGraph.from_collections(final, dsk, dependencies=[array]))


def zonal_stats(values: Any, shapes: Any, *,
                stats: Any = ("count", "min", "max", "mean", "sum", "std"), band: int = 1,
                all_touched: bool = False, nodata: Any = None, scheduler: Any = None,
                crs: Any = None, compute: bool = True) -> list[dict] | Delayed:
    """Statistics of a raster's pixels under each feature, as rasterstats gives them.

    One dask graph reads (or computes) each window once, takes, for every feature
    whose bounds touch the window, the valid pixels under it (its own mask:
    overlapping features each count their own pixels), and merges the per-window
    partial statistics (float64) by a tree of tasks.  ``values`` may be a pipeline
    (a :func:`~riomucho_dask.map_windows` result): its run function runs once per
    window, in the same graph as the statistics.

    Parameters
    ----------
    values : str, os.PathLike or dask.array.Array
        A raster path, or an array that knows its grid (from
        :func:`~riomucho_dask.open_raster`, :func:`~riomucho_dask.map_windows`,
        :func:`~riomucho_dask.rasterize`, and dask work on them).
    shapes : geometries, GeoJSON, pairs, GeoDataFrame or path
        As :func:`~riomucho_dask.rasterize` takes them; one dict per shape.
    stats : sequence of str or str, optional
        Among ``count``, ``min``, ``max``, ``mean``, ``sum``, ``std`` (population,
        as numpy's and rasterstats'), ``range``, and, for integer rasters of up to
        16 bits, ``median``, ``percentile_q`` (``q`` from 0 to 100, numpy's linear
        interpolation), ``majority`` and ``minority`` (of values as frequent, the
        lowest) and ``unique`` (how many values), exact from a histogram of each
        feature; a string may separate them by commas or spaces.
    band : int, optional
        The band (from 1).
    all_touched : bool, optional
        Every pixel a feature touches, not only those whose centre is inside.
        GDAL decides edge pixels from the extent it burns onto: see the vectors
        guide for what that means for counts.
    nodata : number, optional
        Pixels of this value are left out; default the raster's nodata.  NaN is
        always left out of floats, and so are masked pixels of a masked array
        and, for a path, the pixels of the file's mask (internal, side-car or
        alpha band).
    scheduler : str or distributed.Client, optional
        As ``dask.compute`` takes it.
    crs : CRS, str or int, optional
        The shapes' CRS where they do not say it (see ``rasterize``).
    compute : bool, optional
        False: the Delayed of the list, to compute with other work.

    Returns
    -------
    list of dict
        For each shape, in order, ``{statistic: value}`` in the order asked:
        ``count`` an int, the others floats; a shape with no valid pixel (outside
        the raster, all nodata, empty) has ``count`` 0 and None for the others.

    Raises
    ------
    InputError
        Before anything is read: an unknown or unavailable statistic (named; a
        median or percentile of floats too), a shape that is not a geometry (named
        by its index), a CRS that cannot be parsed or transformed, values that do
        not know their grid, a band out of range.
    MissingExtraError
        Without shapely (or, for a file, pyogrio): the ``vector`` extra.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> import riomucho_dask as rmd
    >>> fields = [box(500100, 4199500, 500600, 4199900),
    ...           box(500400, 4199300, 501000, 4199700)]   # they overlap: 1 ha in common
    >>> for record in rmd.zonal_stats("scene_a.tif", fields, stats="count min max"):
    ...     print(record)
    {'count': 2000, 'min': 362.0, 'max': 53036.0}
    {'count': 2400, 'min': 4032.0, 'max': 58567.0}
    """
    stats = check_stats(stats)
    array, nodata, label = _values_array(values, band, nodata)
    if histograms(stats) and not (array.dtype.kind in "iub" and array.dtype.itemsize <= 2):
        asked = [name for name in stats if name in HISTOGRAM or name.startswith("percentile_")]
        raise InputError(
            f"{'statistic' if len(asked) == 1 else 'statistics'} {', '.join(asked)} "
            f"{'is' if len(asked) == 1 else 'are'} computed exactly from a histogram of each "
            f"feature's values, kept for integer rasters of up to 16 bits (uint8, int8, "
            f"uint16, int16); {label} is {array.dtype.name}: round or classify the "
            "values to integers first (e.g. array.round().astype('int16'), or a "
            "map_windows run function)")
    (grid,) = array_grids(array)
    features = read_shapes(shapes, crs)
    if features.pair_values is not None:
        raise InputError(
            "zonal_stats takes geometries, not (geometry, value) pairs: give the "
            "geometries alone (a pair's value is only what rasterize burns)")
    index = ShapeIndex(to_grid(features, grid), grid)
    graph = zonal_graph(array, band - 1, index, stats, nodata, all_touched)
    if not compute:
        return graph
    (result,) = dask.compute(graph, scheduler=scheduler)
    return result
