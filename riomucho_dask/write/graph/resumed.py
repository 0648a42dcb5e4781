"""A resumed write's graph: what the chunks already written spare.

An overview chunk still to compute needs chunks of the levels above it;
those already written (in the journal's spool) are decoded from their bytes
and halved here, not computed again.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

from ...windows import offsets
from ..journal import Journal
from ..spec.layout import Encoding
from ..tiff import codec
from .levels import overlapping, reduce_written

__all__ = ["restored", "Written"]


class Written:
    """The chunks a resumed write already holds, read back from its spool on
    demand (each once): what a chunk still to compute takes in place of
    computing them again."""

    def __init__(self, journal: Journal, encoding: Encoding):
        self._journal = journal
        self._encoding = encoding
        self._decoded: dict = {}
        #: Stands for the written chunks in the names of the layers built on them.
        self.token = da.core.tokenize(journal.job, sorted(journal.entries))

    def done(self, level: int, row: int, col: int) -> bool:
        """Whether the chunk of ``level`` at pixel ``row``, ``col`` is written."""
        by, bx = self._encoding.block
        return (level, row // by, col // bx) in self._journal.entries

    def block(self, array: da.Array, level: int, r: int, c: int,
              keep: bool = True) -> np.ndarray | None:
        """Chunk ``r``, ``c`` of ``array`` (``level``) as the file holds it, if
        written; kept for the next tasks that take it (they hold it in the
        graph anyway) unless not to ``keep``."""
        rows, cols = offsets(array.chunks[1]), offsets(array.chunks[2])
        if not self.done(level, rows[r], cols[c]):
            return None
        key = (array.name, r, c)
        if key in self._decoded:
            return self._decoded[key]
        by, bx = self._encoding.block
        entry = self._journal.entries[(level, rows[r] // by, cols[c] // bx)]
        block = codec.decode(self._encoding, self._journal.read(entry), array.chunks[1][r],
                             array.chunks[2][c])
        if keep:
            self._decoded[key] = block
        return block


def restored(reduced: da.Array, above: da.Array, rechunk: dict, level: int,
             encoding: Encoding, written: Written) -> da.Array:
    """``reduced`` (``above`` halved, chunk by chunk) with each chunk whose
    ``above`` chunk is already written, and is still needed by an overview
    chunk to compute, read back from the spool and halved here."""
    parent = reduced.rechunk(rechunk) if rechunk else reduced
    parent_rows, parent_cols = offsets(parent.chunks[1]), offsets(parent.chunks[2])
    rows, cols = offsets(reduced.chunks[1]), offsets(reduced.chunks[2])
    literal = {}
    for i, j in np.ndindex(len(rows) - 1, len(cols) - 1):
        if all(written.done(level + 1, parent_rows[pi], parent_cols[pj])
               for pi in overlapping(parent_rows, rows[i], rows[i + 1])
               for pj in overlapping(parent_cols, cols[j], cols[j + 1])):
            continue  # (no overview chunk to compute needs it)
        data = written.block(above, level, i, j, keep=False)
        if data is not None:
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
