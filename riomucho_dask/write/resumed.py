"""A resumed write's graph: what the chunks already written spare.

An overview chunk still to compute needs the chunks of the level above it;
those already written (in the journal's spool) are decoded from their bytes
and halved here, not computed again.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ..windows import offsets
from . import codec
from .encode import _overlapping, places, reduce_written
from .journal import Journal
from .layout import Encoding

__all__ = ["restored"]


def restored(reduced: da.Array, above: da.Array, rechunk: dict, level: int,
              encoding: Encoding, journal: Journal) -> da.Array:
    """``reduced`` (``above`` halved, chunk by chunk) with each chunk whose
    ``above`` chunk is already written, and is still needed by an overview
    chunk to compute, read back from the spool and halved here."""
    parent = reduced.rechunk(rechunk) if rechunk else reduced
    parent_rows, parent_cols = offsets(parent.chunks[1]), offsets(parent.chunks[2])
    rows, cols = offsets(reduced.chunks[1]), offsets(reduced.chunks[2])
    by, bx = encoding.block
    done = journal.entries
    literal = {}
    for (i, j), place in zip(np.ndindex(len(rows) - 1, len(cols) - 1),
                             places(above, encoding, level)):
        if place not in done:
            continue
        needed = [(level + 1, parent_rows[pi] // by, parent_cols[pj] // bx)
                  for pi in _overlapping(parent_rows, rows[i], rows[i + 1])
                  for pj in _overlapping(parent_cols, cols[j], cols[j + 1])]
        if all(p in done for p in needed):
            continue
        height, width = above.chunks[1][i], above.chunks[2][j]
        data = codec.decode(encoding, journal.read(done[place]), height, width)
        literal[i, j] = reduce_written(data, encoding.resampling, encoding.nodata)
    if not literal:
        return reduced
    name = "restored-" + da.core.tokenize(reduced.name, sorted(literal))
    layer = {
        (name, 0, i, j): literal[i, j] if (i, j) in literal else (reduced.name, 0, i, j)
        for i, j in np.ndindex(len(rows) - 1, len(cols) - 1)
    }
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[reduced])
    return da.Array(graph, name, reduced.chunks, meta=reduced._meta)
