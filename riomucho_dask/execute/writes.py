"""What a write is, whichever scheduler computes it.

A :class:`Write` is a store target (the :class:`Target` contract) plus the
graph keys of the blocks it writes, each with its window; the writes of one
computation (and the other collections computed beside them, :class:`Other`)
are merged into one graph, optimized as arrays are (:func:`merged_graph`),
and each block key maps to the stores it goes to (:func:`block_targets`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import dask
import dask.array as da
from dask.array.optimization import optimize as optimize_array
from dask.core import flatten
from dask.highlevelgraph import HighLevelGraph

from ..errors import WindowError
from ..windows import chunk_window, offsets

__all__ = ["Target", "Write", "Other", "chunk_windows", "array_write", "tiles_write",
           "optimize", "merged_graph", "block_targets", "reraise"]


class Target(Protocol):
    """What the engine asks of the store a write's blocks go to
    (:class:`~riomucho_dask.write.store.RasterStore`): the contract, said once,
    rather than probed with ``getattr``."""

    #: Where a block of encoded tiles computed on a cluster's worker is reduced
    #: to what travels (its tiles stay there); None: blocks travel whole.
    remote_result: Any

    @property
    def resumable(self) -> bool:
        """A resumable write runs once."""

    def renew(self) -> None:
        """Ready to write again, after a run (a write computed twice writes twice)."""

    def prepare(self, scheduler: str, client: Any = None) -> bool:
        """Called once the scheduler is known, before anything is computed."""

    def put(self, block: Any, window: Any) -> None:
        """A computed block, in a window (None: encoded tiles that know their place)."""

    def put_remote(self, result: Any, future: Any) -> None:
        """What :attr:`remote_result` made of a block where it was computed."""

    def finish(self) -> None:
        """Every block is in: finish the file (overviews, statistics, the copy)."""

    def publish(self) -> str:
        """Move the finished file into place; its path."""

    def commit(self) -> str:
        """:meth:`finish` and :meth:`publish`, as ``da.store``'s graph ends."""

    def abort(self) -> None:
        """Stop, and leave nothing at the output's path."""

    def explain(self, err: BaseException) -> BaseException:
        """The error to raise for ``err`` (a worker's full disk, said so)."""


@dataclass(frozen=True)
class Write:
    """What one output consumes: for each block key of ``graph``, its window.

    ``store`` has ``put(block, window)``, ``commit()`` and ``abort()``
    (:class:`~riomucho_dask.write.store.RasterStore`).  ``arrays`` are the
    arrays the blocks are the chunks of, when there are (they are then
    optimized together with the other writes' arrays).  A block of encoded
    tiles knows its own place: its window is None.
    """

    store: Target
    graph: HighLevelGraph
    keys: tuple
    windows: tuple
    arrays: tuple = ()


def chunk_windows(array: da.Array) -> tuple[tuple, tuple]:
    """(block keys, windows) of a ``(count, rows, cols)`` array with one band chunk."""
    if len(array.chunks[0]) != 1:
        raise ValueError("the array must hold all bands in each chunk")
    rows, cols = offsets(array.chunks[1]), offsets(array.chunks[2])
    keys = tuple(flatten(array.__dask_keys__()))
    windows = tuple(chunk_window(rows, cols, i, j) for _, _, i, j in keys)
    return keys, windows


def array_write(store: Any, array: da.Array) -> Write:
    """The write of every chunk of ``array`` (all bands in each chunk)."""
    keys, windows = chunk_windows(array)
    return Write(store, array.__dask_graph__(), keys, windows, (array,))


def tiles_write(store: Any, arrays: Sequence[da.Array], skip: Any = None) -> Write:
    """The write of arrays of encoded tiles (one object per chunk), each
    chunk placed by the store wherever its tiles go.

    ``skip``: for each array, one flag per chunk (in key order), true for a
    chunk already written (a resumed write): the graph is culled to the others.
    """
    graph = HighLevelGraph.merge(*[array.__dask_graph__() for array in arrays])
    if skip is None:
        keys = tuple(key for array in arrays for key in flatten(array.__dask_keys__()))
        return Write(store, graph, keys, (None,) * len(keys), tuple(arrays))
    keys = tuple(key for array, flags in zip(arrays, skip)
                 for key, done in zip(flatten(array.__dask_keys__()), flags) if not done)
    return Write(store, graph, keys, (None,) * len(keys))


def optimize(dsk, keys, **kwargs):
    """dask's array optimization without low-level linear fusion.

    Blockwise fusion keeps each block's read, run function and store call in
    one task; linear fusion would add little here and costs a graph
    ordering per fused task (about 0.5 ms a block with dask 2026).
    """
    with dask.config.set({"optimization.fuse.active": False}):
        return optimize_array(dsk, keys, **kwargs)


@dataclass(frozen=True)
class Other:
    """A dask collection computed beside writes: its graph, its (nested) keys and
    how its value is made from their results."""

    graph: Any
    keys: Any
    finalize: Any
    args: tuple

    @classmethod
    def of(cls, collection: Any) -> Other:
        finalize, args = collection.__dask_postcompute__()
        return cls(collection.__dask_graph__(), collection.__dask_keys__(), finalize,
                   tuple(args))

    def flat_keys(self) -> list:
        return list(flatten(self.keys)) if isinstance(self.keys, list) else [self.keys]

    def value(self, results: dict) -> Any:
        """The collection's value from ``results`` (key -> result)."""
        return self.finalize(_packed(self.keys, results), *self.args)


def _packed(keys: Any, results: dict) -> Any:
    """``keys`` (nested lists) with each key replaced by its result."""
    if isinstance(keys, list):
        return [_packed(key, results) for key in keys]
    return results[keys]


def merged_graph(writes: Sequence[Write], keys: list, others: Sequence[Other] = ()) -> dict:
    """The writes' graphs (and other collections') merged and optimized together,
    as arrays are: each block's read and run function fused into one task, shared
    work kept under shared keys, the block keys (and the others') unchanged."""
    graph = HighLevelGraph.merge(*[write.graph for write in writes],
                                 *[other.graph for other in others])
    keys = list(keys) + [key for other in others for key in other.flat_keys()]
    return dict(optimize(graph, keys))


def block_targets(writes: Iterable[Write]) -> dict:
    """block key -> list of (store, window): one key may feed several writes."""
    targets: dict = {}
    for write in writes:
        for key, window in zip(write.keys, write.windows):
            targets.setdefault(key, []).append((write.store, window))
    return targets


def reraise(err: BaseException):
    """Raise ``err`` with the run function's exception as ``__cause__``."""
    if isinstance(err, WindowError) and err.original is not None:
        raise err from err.original
    raise err
