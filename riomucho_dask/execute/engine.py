"""Writes run as one graph on dask's own schedulers; the store only writes.

A :class:`Write` is a store target plus the graph keys of the blocks it
writes, each with its window.  However the writes are computed, every key
of their graph is computed once, by dask:

- in this process (``"sync"``, ``"threads"``, an executor): the graph of
  :func:`store_graph` hands each block to its store from dask's worker
  threads (``da.store``-style); ``dask.compute`` runs it;
- ``"processes"``: dask's multiprocessing scheduler computes the blocks;
  a scheduler callback hands each finished block, in this process, to its
  store; a small task per block lets dask release it once handed over;
- ``"distributed"``: ``client.get`` of the blocks' keys (names kept, so the
  dashboard shows the user's graph); results stream back with
  ``as_completed`` and each future is released once its block is queued.

Array writes computed together are optimized together, so shared work
keeps shared keys.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

import dask
import dask.array as da
import dask.multiprocessing
from dask.array.optimization import optimize as optimize_array
from dask.base import tokenize
from dask.callbacks import Callback
from dask.core import flatten
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer

from .. import config, timings
from ..errors import SchedulerError, WindowError
from ..windows import chunk_window, offsets
from ..workers import PRELOAD
from . import schedulers

__all__ = ["Write", "RasterWrite", "array_write", "tiles_write", "compute"]


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


def _commit(store, _written) -> str:
    path = store.commit()
    _ready_again(store)
    return path


def _ready_again(store) -> None:
    """A store whose output is in place, ready to be written again (a write
    computed twice writes twice, by dask.compute too); a resumable one runs once."""
    if not store.resumable:
        store.renew()


def optimize(dsk, keys, **kwargs):
    """dask's array optimization without low-level linear fusion.

    Blockwise fusion keeps each block's read, run function and store call in
    one task; linear fusion would add little here and costs a graph
    ordering per fused task (about 0.5 ms a block with dask 2026).
    """
    with dask.config.set({"optimization.fuse.active": False}):
        return optimize_array(dsk, keys, **kwargs)


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
    others = [_Other.of(collection) for collection in collections or ()]
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
            values = _run_distributed(writes, client, others)
        elif which == "processes":
            table, values = _run_processes(writes, others)
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
    return timings.build_report(paths, wall, which, tables, len(_targets(writes)))


@dataclass(frozen=True)
class _Other:
    """A dask collection computed beside writes: its graph, its (nested) keys and
    how its value is made from their results."""

    graph: Any
    keys: Any
    finalize: Any
    args: tuple

    @classmethod
    def of(cls, collection: Any) -> _Other:
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


def _graph(writes: Sequence[Write], keys: list, others: Sequence[_Other] = ()) -> dict:
    """The writes' graphs (and other collections') merged and optimized together,
    as arrays are: each block's read and run function fused into one task, shared
    work kept under shared keys, the block keys (and the others') unchanged."""
    graph = HighLevelGraph.merge(*[write.graph for write in writes],
                                 *[other.graph for other in others])
    keys = list(keys) + [key for other in others for key in other.flat_keys()]
    return dict(optimize(graph, keys))


def _targets(writes: Iterable[Write]) -> dict:
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


#: Finished blocks fetched from the cluster in one round trip (at most).
GATHER = 8


def _release(block) -> dict:
    return timings.harvest()  # (the clocks of the process that ran it, so far)


def _run_processes(writes: Sequence[Write], others: Sequence[_Other] = ()) -> tuple[dict, list]:
    """Run ``writes`` (and ``others``) on dask's multiprocessing scheduler; return
    the stage clocks of the pool's processes, and the others' values."""
    targets = _targets(writes)
    name = "riomucho-release-" + tokenize(list(targets))
    graph = _graph(writes, list(targets), others)
    other_keys = [key for other in others for key in other.flat_keys()]
    sinks = {(name, n): (_release, key) for n, key in enumerate(targets)}
    graph.update(sinks)

    def posttask(key, result, dsk, state, worker_id):
        for store, window in targets.get(key, ()):
            store.put(result, window)

    callbacks = [*Callback.active, (None, None, None, posttask, None)]
    pool = process_pool()
    done = False
    try:
        # Not fused again: the block keys must stay visible to the callback.
        # One task at a time to each process (dask batches 6 by default): our tasks
        # are groups of windows already, and batches of 6 of 16 left one process idle
        # for the last 40% of an 8192^2 write.
        got = dask.multiprocessing.get(graph, list(sinks) + other_keys, optimize_graph=False,
                                       callbacks=callbacks, pool=pool,
                                       chunksize=dask.config.get("chunksize", 1))
        tables, results = got[:len(sinks)], dict(zip(other_keys, got[len(sinks):]))
        collected: dict = {}
        for table in tables:
            timings.merge(collected, table)
        if pool is not None:  # what ran after each process's last sink
            for table in [pool.submit(_harvest_late) for _ in range(_pool_workers(pool))]:
                timings.merge(collected, table.result())
        done = True
        return collected, [other.value(results) for other in others]
    except BrokenProcessPool as err:
        raise SchedulerError(
            "a worker process died (killed, out of memory, or os._exit in the run "
            "function); the process pool cannot recover: run on a dask.distributed "
            "cluster to have lost blocks recomputed"
        ) from err
    except WindowError as err:
        reraise(err)
    finally:
        # A failed graph's tasks may still run in the pool's processes: the pool
        # goes with them (waiting for them), and the next write starts another.
        if pool is not None and (not done or not config.get("keep-pool")):
            _discard_pool(pool)


def _harvest_late() -> dict:
    time.sleep(0.02)  # (so that each process of the pool takes one of these)
    return timings.harvest()


def _pool_workers(pool) -> int:
    return int(getattr(pool, "_max_workers", 1))


#: Modules the fork server imports once, so its worker processes start ready.


#: The pool of this session (kept between writes), and its number of workers.
_pool: dict = {}


def _discard_pool(pool) -> None:
    """Shut ``pool`` down, unless it is the user's own (``dask.config``'s ``pool``)."""
    if pool is None or pool is dask.config.get("pool", None):
        return
    if _pool.get("pool") is pool:
        _pool.clear()
    pool.shutdown(wait=True, cancel_futures=True)


def process_pool():
    """The pool dask's multiprocessing scheduler runs a write on.

    ``dask.config``'s ``pool`` when set.  Otherwise, where the platform has
    it and dask's start method is its default (``spawn``), a pool started
    from a fork server that has imported numpy, rasterio and dask once (2
    workers start in about 0.9 s instead of 1.3 s spawned), kept for the
    next writes of the session (``riomucho_dask.keep-pool``, default True):
    they start at once.  ``None`` leaves the choice to dask
    (``multiprocessing.context`` set to something else).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    configured = dask.config.get("pool", None)
    if configured is not None:
        return configured
    if dask.config.get("multiprocessing.context", "spawn") != "spawn":
        return None
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    workers = dask.config.get("num_workers", None) or multiprocessing.cpu_count()
    kept = _pool.get("pool")
    # (a pool started before sys.path grew, by the CLI loading a module file or
    # a notebook's sys.path.append, would not find the modules now importable)
    if kept is not None and _pool.get("workers") == workers and _pool.get(
            "path") == tuple(sys.path) and not getattr(kept, "_broken", False):
        return kept
    if kept is not None:
        _discard_pool(kept)
    pool = ProcessPoolExecutor(workers, mp_context=context)
    if config.get("keep-pool"):
        _pool.update(pool=pool, workers=workers, path=tuple(sys.path))
    return pool


def _remote_result(outs: list):
    """The function to run where a block was computed, when every store the
    block goes to takes only its result (the block stays on the worker)."""
    kept = {store.remote_result for store, _ in outs}
    return kept.pop() if len(kept) == 1 else None


def _run_distributed(writes: Sequence[Write], client, others: Sequence[_Other] = ()) -> list:
    """Stream the blocks of ``writes`` from the cluster to their stores; return the
    values of ``others``, computed in the same graph."""
    from distributed import as_completed

    targets = _targets(writes)
    other_keys = [key for other in others for key in other.flat_keys()]
    futures = client.get(_graph(writes, list(targets), others), list(targets) + other_keys,
                         sync=False)
    futures, other_futures = futures[:len(targets)], futures[len(targets):]
    # future to gather -> (stores and windows, the block's future when it stays
    # on its worker and only a small result of it travels here)
    pending: dict = {}
    for future, outs in zip(futures, targets.values()):
        remote = _remote_result(outs)
        if remote is None:
            pending[future] = (outs, None)
        else:
            small = client.submit(remote, future, key=f"{remote.__name__}-{future.key}",
                                  priority=1)  # (before more blocks: sizes, then uploads)
            pending[small] = (outs, future)
    del futures
    ready: list = []
    try:
        for batch in as_completed(list(pending), loop=client.loop).batches():
            ready.extend(batch)
            while ready:  # one round trip per few blocks, not per block
                some, ready = ready[:GATHER], ready[GATHER:]
                try:
                    with timings.timed("receive"):
                        blocks = client.gather(some)
                except WindowError as err:
                    reraise(err)
                for future, block in zip(some, blocks):
                    outs, kept = pending.pop(future)
                    for store, window in outs:
                        if kept is None:
                            store.put(block, window)
                        else:
                            store.put_remote(block, kept)
                    future.release()
                del blocks
        try:
            results = dict(zip(other_keys, client.gather(other_futures)))
        except WindowError as err:
            reraise(err)
    except BaseException:
        client.cancel([f for small, (_, kept) in pending.items()
                       for f in (small, kept) if f is not None] + list(other_futures))
        raise
    return [other.value(results) for other in others]
