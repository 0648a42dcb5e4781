"""The graph of an output written from encoded tiles.

A tiled GeoTIFF or a COG whose layout :func:`~riomucho_dask.write.spec.layout.for_profile`
knows is not written through a GDAL dataset on the client: each chunk of the
array (whole output tiles, all bands) is encoded by the task that computed it
(:mod:`riomucho_dask.write.tiff.codec`) and only its tiles' bytes travel to the
writer (:class:`~riomucho_dask.write.writers.tiled.TiledWriter`), which places them.

The overview levels are computed in the same graph from the full-resolution
blocks, level after level (:mod:`riomucho_dask.write.kernels.overviews`), and encoded
on the workers too.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ... import timings
from ...errors import StoreError
from ...windows import offsets
from ..journal import Journal
from ..kernels import resample, resample_gdal
from ..kernels.pixels import as_held, masked
from ..spec.layout import CODECS, GTIFF_RESAMPLINGS, Encoding, for_profile
from ..tiff import codec
from ..tiff.codec import Tiles
from .levels import overlapping, reduce_written
from .resumed import Written, restored

__all__ = ["Encoding", "Tiles", "for_profile", "encoded_arrays", "places", "CODECS",
           "GTIFF_RESAMPLINGS"]


def _encode_block(block: np.ndarray, encoding: Encoding, level: int, row_offsets: np.ndarray,
                  col_offsets: np.ndarray, sink=None, block_id=None):
    # (block_id and the offsets, not block_info: a dict per chunk costs about
    # 1 ms a chunk to build and carry in the graph)
    row, col = int(row_offsets[block_id[1]]), int(col_offsets[block_id[2]])
    if row % encoding.block[0] or col % encoding.block[1]:
        raise StoreError(f"a chunk at row {row}, column {col} does not start on a "
                         f"{encoding.block[0]} x {encoding.block[1]} tile")
    with timings.timed("encode"):
        tiles = codec.encode(encoding, block, row, col, level)
        if sink is not None:  # (into a part file, from the workers)
            tiles = sink.hold(tiles)
    out = np.empty((1, 1, 1), dtype=object)
    out[0, 0, 0] = tiles
    return out


def _encoded(array: da.Array, encoding: Encoding, level: int, sink=None) -> da.Array:
    chunks = ((1,), (1,) * len(array.chunks[1]), (1,) * len(array.chunks[2]))
    # (offsets as arrays: dask's task spec walks tuples in every task's arguments)
    return array.map_blocks(_encode_block, encoding, level, np.asarray(offsets(array.chunks[1])),
                            np.asarray(offsets(array.chunks[2])), sink, chunks=chunks,
                            dtype=object,
                            meta=np.empty((0, 0, 0), dtype=object),
                            # (after the array's own name: fused with it, the task keeps
                            # the user's name in the dashboard, "map_windows", "truediv")
                            name=f"{array.name}-encode-{level}-"
                            + da.core.tokenize(array, encoding, level,
                                               None if sink is None else sink.owner))


def _overview(array: da.Array, encoding: Encoding) -> tuple[da.Array, dict]:
    """The next overview level of ``array``, and the rechunking that makes its
    chunks whole tiles.

    Every chunk but the last has an even size (whole tiles), so halving each
    chunk halves the level as GDAL does.
    """
    chunks = [array.chunks[0]]
    for sizes in array.chunks[1:]:
        chunks.append((1,) if sum(sizes) == 1 else tuple(size // 2 for size in sizes))
    reduced = array.map_blocks(reduce_written, encoding.resampling, encoding.nodata,
                               chunks=tuple(chunks), dtype=array.dtype, meta=array._meta,
                               name="overview-" + da.core.tokenize(array, encoding))
    new = {}
    for axis, block in ((1, encoding.block[0]), (2, encoding.block[1])):
        sizes = [size for size in reduced.chunks[axis] if size]  # (an odd last pixel gone)
        if len(sizes) != len(reduced.chunks[axis]) or any(size % block for size in sizes[:-1]):
            whole = max(1, round(max(sizes) / block)) * block
            new[axis] = whole if any(size % block for size in sizes[:-1]) else tuple(sizes)
    return reduced, new


def encoded_arrays(array: da.Array, encoding: Encoding, journal: Journal | None = None,
                   sink=None) -> list[tuple[da.Array, list]]:
    """The encoded tiles of ``array`` (chunked to whole tiles, all bands in
    each chunk) and, for a COG, of each overview level: object arrays with
    one :class:`Tiles` per chunk, each with the place ``(level, tile row,
    tile column)`` of each of its chunks, in key order.

    With a ``journal`` of chunks already written, an overview chunk still to
    compute takes the chunks below it that are written from the spool (decoded,
    not computed again), so the graph needs no work a written chunk did.
    ``sink`` (a :class:`~riomucho_dask.write.sinks.parts.PartSink`) may put the
    tiles' bytes into part files on the workers.
    """
    levels = [array]
    written = None
    if journal is not None and journal.entries:

        written = Written(journal, encoding)
    if encoding.factors:  # a GeoTIFF's overviews, as GDAL's BuildOverviews
        levels += _gdal_levels(array, encoding, written)
    for n in range(0 if encoding.factors else encoding.overviews):
        reduced, rechunk = _overview(levels[-1], encoding)
        if written is not None:
            reduced = restored(reduced, levels[-1], rechunk, n, encoding, written)
        levels.append(reduced.rechunk(rechunk) if rechunk else reduced)
    return [(_encoded(level_array, encoding, n, sink), places(level_array, encoding, n))
            for n, level_array in enumerate(levels)]


def _gdal_levels(array: da.Array, encoding: Encoding, written: Any = None) -> list[da.Array]:
    """A GeoTIFF's overview levels, each made from the level GDAL's
    ``BuildOverviews`` makes it from (:func:`~riomucho_dask.write.kernels.resample.source_levels`).

    With ``written`` (a resumed write's :class:`~riomucho_dask.write.graph.resumed.Written`),
    a chunk still to compute takes the chunks it needs that are written from
    the spool, so no written chunk, and no window of the run function, is
    computed again."""
    height, width = array.shape[1:]
    shapes = encoding.shapes(height, width)[1:]
    # (GDAL makes the levels of a band-interleaved or one-band file band by band)
    interleave = "band" if array.shape[0] == 1 else dict(encoding.creation)["interleave"]
    # (GDAL's own resamplings cascade as average does)
    method = encoding.resampling if encoding.resampling in resample.METHODS else "average"
    # Whether the output has an internal mask is known for sure only when its
    # blocks come; the layout says it when the array's meta does (encoding.mask).
    sources = resample.source_levels(height, width, encoding.factors, method, interleave,
                                     masked=encoding.mask)
    masks = resample.mask_source_levels(height, width, encoding.factors, method)
    levels: list[da.Array] = []
    for n, (shape, source, mask_source) in enumerate(zip(shapes, sources, masks)):
        if source is None:  # a level GDAL makes but never fills
            levels.append(_unfilled(array, shape, encoding))
            continue
        above = array if source < 0 else levels[source]
        chunks = _level_chunks(above, shape, encoding)
        # (a level written whole is not computed: none of its sources read back)
        reads = None if written is None or _all_written(written, n + 1, chunks) else written
        level = dict(encoding=encoding, level=n + 1, full_shape=(height, width),
                     chunks=chunks, written=reads)
        mask = None
        if encoding.nodata is None and encoding.resampling in resample.METHODS \
                and mask_source != source:
            # GDAL makes an internal mask's levels from the mask alone, from
            # the level mask_source_levels says, whatever level the pixels
            # come from.
            if encoding.resampling == "nearest":  # (from the full resolution's)
                mask = _picked(array, shape, encoding.nodata, only_mask=True, written=reads,
                               level=n + 1, level_chunks=chunks)
            else:
                mask = _gdal_level(array if mask_source < 0 else levels[mask_source],
                                   shape, source_level=mask_source + 1, only_mask=True,
                                   **level)
        source_level = source + 1
        if source < 0 and n > 0 and encoding.resampling == "nearest":
            # a deeper level from the full resolution (a one-band or band-interleaved
            # file): only the pixels nearest takes travel, mask and all
            above = _picked(array, shape, encoding.nodata, written=reads, level=n + 1,
                            level_chunks=chunks)
            source_level = None  # (not written: computed, or read back inside)
        levels.append(_gdal_level(above, shape, source_level=source_level, mask=mask,
                                  masked=encoding.mask, **level))
    return levels


def _all_written(written: Any, level: int, chunks: list) -> bool:
    """Whether every chunk of ``level`` (``chunks``, rows and columns) is written."""
    rows, cols = offsets(chunks[0]), offsets(chunks[1])
    return all(written.done(level, rows[i], cols[j])
               for i, j in np.ndindex(len(chunks[0]), len(chunks[1])))


def _level_chunks(source: da.Array, shape: tuple[int, int], encoding: Encoding) -> list:
    """A level's chunks: whole tiles, about a source chunk's share each."""
    by, bx = encoding.block
    chunks = []
    for axis, tile in ((1, by), (2, bx)):
        ratio = source.shape[axis] / shape[axis - 1]
        tiles = max(1, round(max(source.chunks[axis]) / ratio / tile))
        chunks.append(_split(shape[axis - 1], tiles * tile))
    return chunks


def _unfilled(array: da.Array, shape: tuple[int, int], encoding: Encoding) -> da.Array:
    """A level as GDAL leaves it when it never fills it: nodata, or 0."""
    by, bx = encoding.block
    fill = 0 if encoding.nodata is None else encoding.nodata
    return da.full((array.shape[0], *shape), fill, dtype=array.dtype,
                   chunks=(array.shape[0], by, bx))


def _picked(array: da.Array, shape: tuple[int, int], nodata: Any,
            only_mask: bool = False, written: Any = None, level: int = 0,
            level_chunks: list | None = None) -> da.Array:
    """The pixels of ``array`` (as the file holds them) that GDAL's nearest
    takes for a level of ``shape`` from the full resolution, or (``only_mask``)
    their internal mask (1 masked): each chunk of ``array`` gives the pixels
    it holds (a few, or none), so a level made from them keeps no
    full-resolution chunk in memory (the deepest level needs pixels of every
    chunk).  A chunk ``written`` gives them from the spool, read back here when
    a chunk of ``level`` (in ``level_chunks``) still to compute needs them."""
    picks = []
    for axis, size in ((1, shape[0]), (2, shape[1])):
        first, _ = resample.nearest_pixels(0, size, array.shape[axis], size)
        edges = offsets(array.chunks[axis])
        picks.append([first[(first >= edges[k]) & (first < edges[k + 1])] - edges[k]
                      for k in range(len(edges) - 1)])
    chunks = (array.chunks[0], tuple(map(len, picks[0])), tuple(map(len, picks[1])))
    name = f"overview-{'mask-' if only_mask else ''}picked-" \
        + da.core.tokenize(array, shape, nodata, getattr(written, "token", None))
    pick = _picked_mask if only_mask else _picked_pixels
    if written is not None:  # (which level chunks are still to compute)
        level_rows, level_cols = offsets(level_chunks[0]), offsets(level_chunks[1])
        to_compute = np.array([[not written.done(level, level_rows[i], level_cols[j])
                                for j in range(len(level_chunks[1]))]
                               for i in range(len(level_chunks[0]))])
        picked_rows, picked_cols = offsets(chunks[1]), offsets(chunks[2])
    layer = {}
    for r, c in np.ndindex(len(chunks[1]), len(chunks[2])):
        rows, cols = picks[0][r], picks[1][c]
        block = None
        if written is not None and not (len(rows) and len(cols)):
            # (no pixel taken from this chunk: nothing to compute or read back)
            layer[(name, 0, r, c)] = np.empty(
                (1 if only_mask else array.shape[0], len(rows), len(cols)),
                "uint8" if only_mask else array.dtype)
            continue
        if written is not None and to_compute[
                np.ix_(list(overlapping(level_rows, picked_rows[r], picked_rows[r + 1])),
                       list(overlapping(level_cols, picked_cols[c], picked_cols[c + 1])))
        ].any():  # (read back only what a level chunk still to compute takes)
            block = written.block(array, 0, r, c, keep=False)
        if block is not None:  # (written: the few pixels taken here, the chunk let go)
            layer[(name, 0, r, c)] = pick(block, rows, cols, nodata)
        else:
            layer[(name, 0, r, c)] = (pick, (array.name, 0, r, c), picks[0][r], picks[1][c],
                                      nodata)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[array])
    if only_mask:
        return da.Array(graph, name, ((1,), *chunks[1:]), meta=np.empty((0, 0, 0), "uint8"))
    return da.Array(graph, name, chunks, meta=array._meta)


def _picked_pixels(block: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                   nodata: Any) -> np.ndarray:
    held = as_held(block, nodata)
    return held[:, rows][:, :, cols]


def _picked_mask(block: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 nodata: Any = None) -> np.ndarray:
    mask = np.ma.getmaskarray(block).any(axis=0)
    return mask[rows][:, cols][np.newaxis].astype("uint8")


def _gdal_level(source: da.Array, shape: tuple[int, int], *, encoding: Encoding, level: int,
                full_shape: tuple[int, int], chunks: list, source_level: int | None,
                mask: da.Array | None = None, only_mask: bool = False, masked: bool = False,
                written: Any = None) -> da.Array:
    """Overview ``level`` (``shape``, in ``chunks`` of whole tiles) made from
    ``source`` as GDAL's ``BuildOverviews`` makes it: each chunk from the
    source chunks its pixels need; its internal mask from ``mask`` (1 masked,
    at ``shape``) when given.  With ``only_mask``, only the level's internal
    mask (1 masked), from ``source``'s.  ``masked``: the output has an
    internal mask (so GDAL averages every window, even one without a masked
    pixel, as it averages around masked pixels).  ``written``: a resumed
    write's chunks; a chunk of this level still to compute takes the source
    chunks (of level ``source_level``) that are written from the spool."""
    token = getattr(written, "token", None)
    name = f"overview-{'mask-' if only_mask else ''}{level}-" \
        + da.core.tokenize(source, encoding, level, mask, chunks, token)
    layer = {}
    dst_rows, dst_cols = offsets(chunks[0]), offsets(chunks[1])
    kernels = _kernels(encoding.resampling)
    for i, j in np.ndindex(len(chunks[0]), len(chunks[1])):
        rows, cols = (dst_rows[i], dst_rows[i + 1]), (dst_cols[j], dst_cols[j + 1])
        reads = written if written is not None and source_level is not None \
            and not written.done(level, rows[0], cols[0]) else None
        task = [_mask_piece if only_mask else _level_piece, rows, cols, shape,
                encoding.resampling, encoding.nodata, source.shape[1:] != full_shape, masked]
        ranges = [(kernels.source_range(*rows, source.shape[1], shape[0], encoding.resampling),
                   kernels.source_range(*cols, source.shape[2], shape[1], encoding.resampling))]
        if mask is not None:  # (at the level's own size: the same pixels)
            ranges.append((rows, cols))
        for above, (src_rows, src_cols) in zip((source, mask), ranges):
            row_edges, col_edges = offsets(above.chunks[1]), offsets(above.chunks[2])
            src_rows = overlapping(row_edges, *src_rows)
            src_cols = overlapping(col_edges, *src_cols)
            blocks = [[(above.name, 0, r, c) for c in src_cols] for r in src_rows]
            if reads is not None and above is source:
                blocks = [[_or_key(reads.block(above, source_level, r, c), key)
                           for (_, _, r, c), key in zip(row, row)] for row in blocks]
            task += [blocks, (row_edges[src_rows[0]], col_edges[src_cols[0]]),
                     above.shape[1:]]
        layer[(name, 0, i, j)] = tuple(task)
    graph = HighLevelGraph.from_collections(
        name, layer, dependencies=[source] + ([mask] if mask is not None else []))
    if only_mask:
        return da.Array(graph, name, ((1,), *chunks), meta=np.empty((0, 0, 0), "uint8"))
    return da.Array(graph, name, (source.chunks[0], *chunks), meta=source._meta)


def _or_key(block: np.ndarray | None, key: tuple) -> Any:
    """A written chunk read back, or the key of the chunk to compute."""
    return key if block is None else block


def _kernels(resampling: str):
    """The module whose kernels make ``resampling``: ours, or GDAL's own."""
    return resample if resampling in resample.METHODS else resample_gdal


def _split(size: int, step: int) -> tuple[int, ...]:
    """``size`` in chunks of ``step`` (the last one shorter)."""
    return tuple(min(step, size - start) for start in range(0, size, step))


def _level_piece(rows: tuple[int, int], cols: tuple[int, int], shape: tuple[int, int],
                 resampling: str, nodata: Any, overview: bool, masked_output: bool,
                 blocks: list, corner: tuple[int, int],
                 src_shape: tuple[int, int], mask_blocks: list | None = None,
                 mask_corner: tuple[int, int] = (0, 0), _: Any = None) -> np.ndarray:
    """Pixels ``rows`` x ``cols`` of an overview level (``shape``) from the
    source ``blocks`` (a grid of chunks whose first pixel is at ``corner``
    of a level of ``src_shape``, an ``overview`` level or the full
    resolution; ``masked_output``: the output has an internal mask); the
    internal mask from ``mask_blocks`` (at the level's size, from
    ``mask_corner``) when given."""
    with timings.timed("encode"):
        piece = _joined(blocks, nodata, overview)
        if masked_output and not isinstance(piece, np.ma.MaskedArray):
            piece = masked(piece, np.zeros(piece.shape, bool))
        out = _kernels(resampling).resample(piece, *corner, rows, cols, src_shape, shape,
                                            resampling, nodata)
        if mask_blocks is None:
            return out
        mask = np.concatenate([np.concatenate(row, axis=2) for row in mask_blocks], axis=1)
        (top, left), data = mask_corner, np.ma.getdata(out)
        mask = mask[:, rows[0] - top:rows[1] - top, cols[0] - left:cols[1] - left] > 0
        if not mask.any():
            return data
        return masked(data, np.broadcast_to(mask, data.shape).copy())


def _mask_piece(rows: tuple[int, int], cols: tuple[int, int], shape: tuple[int, int],
                resampling: str, nodata: Any, overview: bool, _masked: bool, blocks: list,
                corner: tuple[int, int], src_shape: tuple[int, int]) -> np.ndarray:
    """The internal mask (1 masked) of pixels ``rows`` x ``cols`` of an overview
    level, from the mask of the source ``blocks`` (as :func:`_level_piece`)."""
    with timings.timed("encode"):
        flags = np.ma.getmaskarray(_joined(blocks, nodata, overview)).any(axis=0)
        taken = resample.resample_mask(flags, *corner, rows, cols, src_shape, shape, resampling)
        return taken[np.newaxis].astype("uint8")


def _joined(blocks: list, nodata: Any, keep: bool) -> np.ndarray:
    """A grid of chunks as one array, as the file holds them."""
    pieces = [[as_held(block, nodata, keep) for block in row] for row in blocks]
    join = np.ma.concatenate if any(isinstance(p, np.ma.MaskedArray)
                                    for row in pieces for p in row) else np.concatenate
    return join([join(row, axis=2) for row in pieces], axis=1)


def places(array: da.Array, encoding: Encoding, level: int) -> list:
    """``(level, tile row, tile column)`` of each chunk of ``array``, row by row."""
    rows, cols = offsets(array.chunks[1]), offsets(array.chunks[2])
    by, bx = encoding.block
    return [(level, rows[i] // by, cols[j] // bx)
            for i in range(len(array.chunks[1])) for j in range(len(array.chunks[2]))]
