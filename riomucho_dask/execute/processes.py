"""Writes on dask's multiprocessing scheduler (``"processes"``).

dask computes the blocks in a pool of processes; a scheduler callback hands
each finished block, in this process, to its store; a small task per block
lets dask release it once handed over.  The pool is started from a fork
server that has imported the tasks' modules, and kept for the next writes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

import dask
import dask.multiprocessing
from dask.base import tokenize
from dask.callbacks import Callback

from .. import config, timings
from ..errors import SchedulerError, WindowError
from ..workers import PRELOAD
from .writes import Other, Write, block_targets, merged_graph, reraise

__all__ = ["run_processes", "process_pool"]


def _release(block) -> dict:
    return timings.harvest()  # (the clocks of the process that ran it, so far)


def run_processes(writes: Sequence[Write], others: Sequence[Other] = ()) -> tuple[dict, list]:
    """Run ``writes`` (and ``others``) on dask's multiprocessing scheduler; return
    the stage clocks of the pool's processes, and the others' values."""
    targets = block_targets(writes)
    name = "riomucho-release-" + tokenize(list(targets))
    graph = merged_graph(writes, list(targets), others)
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
