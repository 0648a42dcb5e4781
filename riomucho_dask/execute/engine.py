"""Writes run as one graph on dask's own schedulers; the store only writes.

A :class:`~riomucho_dask.execute.writes.Write` is a store target plus the
graph keys of the blocks it writes, each with its window (``writes.py``).
This module is the API (:class:`RasterWrite`, :func:`compute`, :func:`run`)
and the local schedulers; the others stream blocks in their own modules.
However the writes are computed, every key of their graph is computed once,
by dask:

- in this process (``"sync"``, ``"threads"``, an executor): the graph of
  ``_then`` hands each block to its store from dask's worker
  threads (``da.store``-style); ``dask.compute`` runs it;
- ``"processes"``: dask's multiprocessing scheduler computes the blocks;
  a scheduler callback hands each finished block, in this process, to its
  store; a small task per block lets dask release it once handed over
  (``processes.py``);
- ``"distributed"``: ``client.get`` of the blocks' keys (names kept, so the
  dashboard shows the user's graph); results stream back with
  ``as_completed`` and each future is released once its block is queued
  (``distributed.py``).

Array writes computed together are optimized together, so shared work
keeps shared keys.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
from dask.array.optimization import optimize as optimize_array
from dask.base import tokenize
from dask.core import flatten
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from .. import timings
from ..errors import SchedulerError
from . import schedulers
from .distributed import run_distributed
from .processes import run_processes
from .writes import Other, Target, Write, array_write, block_targets, tiles_write

__all__ = ["Write", "Target", "RasterWrite", "array_write", "tiles_write", "compute", "run"]


def _commit(store, _written) -> str:
    path = store.commit()
    _ready_again(store)
    return path


def _ready_again(store) -> None:
    """A store whose output is in place, ready to be written again (a write
    computed twice writes twice, by dask.compute too); a resumable one runs once."""
    if not store.resumable:
        store.renew()


class _Delayed(Delayed):
    """A delayed value optimized as arrays are, together with them and with writes."""

    __slots__ = ()
    # dask's own array optimization (the same function object): dask.compute of a
    # write beside a plain array of the same graph (out.mean()) optimizes them
    # together, so the shared work keeps its keys and is computed once
    __dask_optimize__ = staticmethod(optimize_array)


def _then(write: Write, func, prefix: str) -> _Delayed:
    """``func(store, done)`` once every block of ``write`` is in its store.

    The graph holds the blocks' own keys plus one task per block that hands
    it to the store (``da.store``'s, fused with the block's task, for an
    array; a put task otherwise).
    """
    if write.arrays:
        stored = da.store(list(write.arrays), [write.store] * len(write.arrays),
                          lock=False, compute=False)
        stored = list(stored) if isinstance(stored, (tuple, list)) else [stored]
        name = stored[0].name
        graph = HighLevelGraph.merge(*[part.__dask_graph__() for part in stored])
        done = [key for part in stored for key in flatten(part.__dask_keys__())]
        names = {part.name for part in stored}
    else:  # blocks that are not an array's chunks
        name = "to_raster-" + tokenize(write.store, write.keys)
        puts = {
            (name, n): (write.store.put, key, window)
            for n, (key, window) in enumerate(zip(write.keys, write.windows))
        }
        graph = HighLevelGraph(
            {**write.graph.layers, name: MaterializedLayer(puts)},
            {**write.graph.dependencies, name: set(write.graph.layers)},
        )
        done = list(puts)
        names = {name}
    key = prefix + name
    layers = {**graph.layers, key: MaterializedLayer({key: (func, write.store, done)})}
    return _Delayed(key, HighLevelGraph(layers, {**graph.dependencies, key: names}))


def _in_store(store, _done) -> None:
    return None


class RasterWrite(_Delayed):
    """A write not yet computed: ``to_raster(..., compute=False)``.

    A ``dask.delayed`` object whose value is the output path.  Its graph
    holds the array's own keys, one task per block that hands the block to
    the store, and a commit task, so ``dask.compute(w1, w2)`` computes work
    shared by several writes once (on the threaded and synchronous
    schedulers, which run in this process).  ``w.compute(scheduler=...)``
    and :func:`compute` run on every scheduler, clusters included, and
    publish the outputs only once all of them are finished.
    """

    __slots__ = ("write",)

    def __init__(self, write: Write):
        then = _then(write, _commit, "commit-")
        super().__init__(then.key, then.dask)
        self.write = write

    @property
    def dask(self) -> HighLevelGraph:
        # dask.compute reads a collection's graph here, after choosing its scheduler:
        # on a cluster the store would be pickled and fail in distributed's
        # serializer (a TypeError after a logging dump); say what to do instead
        if _computed_on_a_cluster():
            raise SchedulerError(
                "dask.compute of a write from to_raster(..., compute=False) on a "
                "dask.distributed client cannot work: the blocks must come back to the one "
                "writer in this process.  Use riomucho_dask.compute(write, *others, "
                "scheduler=client) (rmd.compute: writes and any dask collections "
                "together, one graph) or write.compute(scheduler=client)")
        return self._dask

    def compute(self, scheduler: Any = None, report: bool = False, **config):
        """Write, on any scheduler (``scheduler=`` as in ``dask.compute``); other
        keywords (``num_workers=``) are dask configuration for this write.
        Returns the path, or with ``report=True`` a
        :class:`~riomucho_dask.timings.Report`."""
        with dask.config.set(config):
            done = compute(self, scheduler=scheduler, report=report)
        return done if report else done[0]


def _computed_on_a_cluster() -> bool:
    """Whether the caller is inside ``dask.compute`` (or ``dask.persist``) whose
    scheduler is a dask.distributed client (its ``schedule`` local, set before
    the collections' graphs are read)."""
    import dask.base

    codes = {dask.base.compute.__code__, dask.base.persist.__code__}
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in codes:
            owner = getattr(frame.f_locals.get("schedule"), "__self__", None)
            return type(owner).__module__.startswith("distributed")
        frame = frame.f_back
    return False


def compute(*things: Any, scheduler: Any = None,
            report: bool = False) -> tuple[Any, ...] | timings.Report:
    """Compute ``to_raster(..., compute=False)`` writes and any other dask
    collections as one graph.

    Work they share (the same ``map_windows`` array, a reduction such as
    ``out.mean()``) is computed once, on any scheduler: each key once.  The
    outputs are moved into place (or uploaded) only once every one of them is
    finished; on a failure before that, none is left.

    Parameters
    ----------
    *things : RasterWrite, dask collection or any object
        Writes from ``to_raster(..., compute=False)``, dask collections (arrays,
        delayed objects...), in any order; other objects are returned as they are
        (as ``dask.compute`` does).
    scheduler : str or distributed.Client, optional
        As ``dask.compute``'s; default the active one.
    report : bool, optional
        Print where the time went (reading, run function, encoding, waiting
        for the writer, per worker; receiving, writing and finishing in this
        process) and return it.

    Returns
    -------
    tuple
        One result per argument, in order: a write's output path, a
        collection's value.
    Report
        With ``report=True`` (writes only): a
        :class:`~riomucho_dask.timings.Report`, its ``paths`` the output paths.

    Raises
    ------
    SchedulerError
        ``report=True`` with collections that are not writes.

    Examples
    --------
    >>> import riomucho_dask as rmd
    >>> arr = rmd.open_raster("scene_a.tif")
    >>> w1 = rmd.to_raster(arr, "a.tif", like="scene_a.tif", compute=False)
    >>> w2 = rmd.to_raster(arr // 2, "b.tif", like="scene_a.tif", compute=False)
    >>> rmd.compute(w1, w2)
    ('a.tif', 'b.tif')
    >>> path, mean = rmd.compute(w1, arr.mean())  # a write and a reduction, one graph
    >>> path, round(float(mean), 3) > 0
    ('a.tif', True)
    """
    writes = [thing.write for thing in things if isinstance(thing, RasterWrite)]
    collections = [thing for thing in things if not isinstance(thing, RasterWrite)
                   and dask.is_dask_collection(thing)]
    if report:
        if collections:
            raise SchedulerError(
                "report=True reports writes only: compute the other collections apart, or "
                "without report=True")
        done = run(writes, scheduler, report=report)
        print(done)
        return done
    paths, values = run(writes, scheduler, collections=collections)
    paths, values = iter(paths), iter(values)
    return tuple(next(paths) if isinstance(thing, RasterWrite) else
                 next(values) if dask.is_dask_collection(thing) else thing
                 for thing in things)


def run(writes: Sequence[Write], scheduler: Any = None, *, report: bool = False,
        collections: Sequence[Any] | None = None) -> Any:
    """Compute ``writes`` on ``scheduler``, then finish every output and only then
    publish them (move into place, upload); on any failure, abort them all.

    With ``report``, return a :class:`~riomucho_dask.timings.Report` of where
    the time went instead of the paths (it holds them).  With ``collections``
    (dask collections computed in the same graph, each key once), return
    ``(paths, their values)``."""
    others = [Other.of(collection) for collection in collections or ()]
    which = schedulers.kind(scheduler)
    client = schedulers.client_of(scheduler) if which == "distributed" else None
    tables: dict = {}
    if report:  # start from empty tables, here and on the cluster's workers
        timings.harvest()
        if client is not None:
            client.run(timings.harvest)
    started = time.perf_counter()
    for write in writes:  # (a write computed again writes again)
        write.store.renew()
    try:
        for write in writes:  # (part files written by the workers, where they can)
            write.store.prepare(which, client)
        if which == "distributed":
            values = run_distributed(writes, client, others)
        elif which == "processes":
            table, values = run_processes(writes, others)
            timings.merge(tables, table)
        else:
            with dask.config.set({"optimization.fuse.active": False}):  # (see optimize)
                values = dask.compute(*[_then(w, _in_store, "in-store-") for w in writes],
                                      *collections or (), scheduler=scheduler)[len(writes):]
        with timings.timed("finish"):
            for write in writes:
                write.store.finish()
            paths = tuple(write.store.publish() for write in writes)
        for write in writes:
            _ready_again(write.store)
    except BaseException as err:
        explained = err
        for write in writes:  # (a worker's part file on a full disk: say so)
            if explained is err:
                explained = write.store.explain(err)
        for write in writes:
            write.store.abort()
        if explained is not err:
            raise explained from err
        raise
    if not report:
        return paths if collections is None else (paths, tuple(values))
    wall = time.perf_counter() - started
    if client is not None:
        for worker_tables in client.run(timings.harvest).values():
            timings.merge(tables, worker_tables)
    timings.merge(tables, timings.harvest())
    return timings.build_report(paths, wall, which, tables, len(block_targets(writes)))
