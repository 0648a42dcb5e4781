"""Which scheduler runs a write, and the streaming writer for process pools
and dask.distributed clusters.

On the synchronous and threaded schedulers, ``da.store`` calls the store
target in this process.  On process pools and clusters the workers cannot
share a GDAL dataset (nor, on a cluster, see the output path), so each
output chunk's sub-graph (read + run function, fused) runs on a worker and
the finished block comes back here to be written, with a bounded number of
blocks in flight so this process's memory stays flat.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import accumulate
from typing import Any

import cloudpickle
import dask
import dask.array as da
import dask.local
import dask.multiprocessing
import dask.threaded
from dask.base import get_scheduler
from dask.core import flatten
from dask.optimization import cull
from rasterio.windows import Window

from .errors import SchedulerError, WindowError

#: GDAL block cache per worker process, in MB, unless GDAL_CACHEMAX is set.
#: GDAL's own default is 5% of RAM in every process.
WORKER_GDAL_CACHEMAX_MB = 64


def kind(scheduler: Any = None) -> str:
    """One of ``"sync"``, ``"threads"``, ``"processes"``, ``"distributed"``."""
    try:
        get = get_scheduler(scheduler=scheduler)
    except (ValueError, RuntimeError) as err:
        raise SchedulerError(f"unknown scheduler {scheduler!r}: {err}") from err
    if get is None or get is dask.threaded.get:
        return "threads"
    if get is dask.local.get_sync:
        return "sync"
    if get is dask.multiprocessing.get:
        return "processes"
    owner = getattr(get, "__self__", None)
    if owner is not None and type(owner).__name__ == "Client":
        return "distributed"
    return "threads"  # an Executor or another callable dask runs in this process


def client_of(scheduler: Any = None):
    return get_scheduler(scheduler=scheduler).__self__


def configure_worker() -> None:
    """Give a worker process a bounded GDAL block cache (unless set)."""
    if "GDAL_CACHEMAX" not in os.environ:
        os.environ["GDAL_CACHEMAX"] = str(WORKER_GDAL_CACHEMAX_MB)


def run_payload(payload: bytes):
    """Run one pickled ``(function, args)`` on a worker and return the block."""
    configure_worker()
    func, args = cloudpickle.loads(payload)
    return func(*args)


def _windows(array: da.Array) -> dict:
    row_offsets = [0, *accumulate(array.chunks[1])]
    col_offsets = [0, *accumulate(array.chunks[2])]
    out = {}
    for key in flatten(array.__dask_keys__()):
        _, _, i, j = key
        out[key] = Window(
            col_offsets[j], row_offsets[i],
            col_offsets[j + 1] - col_offsets[j], row_offsets[i + 1] - row_offsets[i],
        )
    return out


def array_payloads(array: da.Array):
    """(window, pickled sub-graph) for every chunk, optimized and culled.

    Each chunk's read and compute run as one unit on one worker.
    """
    (array,) = dask.optimize(array)
    dsk = dict(array.__dask_graph__())
    for key, window in _windows(array).items():
        sub, _ = cull(dsk, [key])
        yield window, cloudpickle.dumps((dask.local.get_sync, (sub, key)))


def call_payloads(func, windows):
    """(window, pickled call) for ``func(window, ij)`` over ``(window, ij)`` pairs.

    ``func`` (with what it holds, such as global_args) is pickled into each payload.
    """
    from .windows import as_window

    for window, ij in windows:
        yield as_window(window), cloudpickle.dumps((func, (window, ij)))


def in_flight_limit(workers: int) -> int:
    return max(2, 2 * workers)


def stream_write(
    work, store, scheduler: Any = None, *, num_workers: int | None = None
) -> None:
    """Compute blocks on workers and write each in this process as it arrives.

    ``work`` is a dask array (one block per chunk) or an iterable of
    ``(window, payload)`` pairs from :func:`call_payloads`.
    """
    if isinstance(work, da.Array):
        work = array_payloads(work)
    which = kind(scheduler)
    if which == "processes":
        _stream_processes(work, store, num_workers)
    elif which == "distributed":
        _stream_distributed(work, store, client_of(scheduler))
    else:
        raise SchedulerError(f"stream_write is for processes and distributed, not {which!r}")


def _stream_processes(work, store, num_workers: int | None) -> None:
    workers = num_workers or dask.config.get("num_workers", None) or os.cpu_count() or 1
    context = multiprocessing.get_context(dask.config.get("multiprocessing.context", "spawn"))
    limit = in_flight_limit(workers)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=configure_worker) as pool:
        pending: dict = {}
        try:
            for window, payload in work:
                while len(pending) >= limit:
                    _drain(pending, store)
                pending[pool.submit(run_payload, payload)] = window
            while pending:
                _drain(pending, store)
        except BaseException:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _result(future):
    """``future.result()``, with the run function's exception as ``__cause__``.

    (A process pool sets the remote traceback text as the cause instead.)
    """
    try:
        return future.result()
    except WindowError as err:
        if err.original is not None:
            raise err from err.original
        raise


def _drain(pending: dict, store) -> None:
    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
    for future in done:
        window = pending.pop(future)
        try:
            block = _result(future)
        except BrokenProcessPool as err:
            raise SchedulerError(
                f"a worker process died while computing window {window!r} (killed, out of "
                "memory, or os._exit in the run function); the process pool cannot recover: "
                "run on a dask.distributed cluster to have lost blocks recomputed"
            ) from err
        store.write(block, window)


def _stream_distributed(work, store, client) -> None:
    from distributed import as_completed

    workers = max(1, sum(client.nthreads().values()))
    limit = in_flight_limit(workers)
    chunks = iter(work)
    windows: dict = {}
    running = as_completed(loop=client.loop)
    submitted = []

    def submit_next() -> bool:
        for window, payload in chunks:
            future = client.submit(run_payload, payload, pure=False)
            windows[future.key] = window
            submitted.append(future)
            running.add(future)
            return True
        return False

    try:
        for _ in range(limit):
            if not submit_next():
                break
        for future in running:
            block = _result(future)
            store.write(block, windows.pop(future.key))
            future.release()
            submit_next()
    except BaseException:
        client.cancel([f for f in submitted if not f.done()])
        raise
