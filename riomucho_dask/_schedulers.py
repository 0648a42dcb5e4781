"""Which scheduler runs a write, and the streaming writer.

On the synchronous scheduler (and for ``compute=False`` graphs) ``da.store``
calls the store target.  On threads, process pools and clusters, each
output chunk's sub-graph (read + run function, fused; small chunks grouped)
runs as one task on a worker, and the finished blocks come back to the
calling thread, the one writer: workers never wait on its lock, never share
a GDAL dataset, and on a cluster need not see the output path.  A bounded
number of tasks is in flight, so the caller's memory stays flat.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
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
from .windows import as_window

#: GDAL block cache per worker process, in MB, unless GDAL_CACHEMAX is set.
#: GDAL's own default is 5% of RAM in every process.
WORKER_GDAL_CACHEMAX_MB = 64


def kind(scheduler: Any = None) -> str:
    """One of ``"sync"``, ``"threads"``, ``"processes"``, ``"distributed"``, or
    ``"local"`` for another callable or executor dask runs in this process."""
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
    return "local"


def client_of(scheduler: Any = None):
    return get_scheduler(scheduler=scheduler).__self__


def configure_worker() -> None:
    """Give a worker process a bounded GDAL block cache (unless set), and
    undo the nanny's malloc setting (see :func:`tune_malloc`)."""
    if "GDAL_CACHEMAX" not in os.environ:
        os.environ["GDAL_CACHEMAX"] = str(WORKER_GDAL_CACHEMAX_MB)
    tune_malloc()


_malloc_tuned = False


def tune_malloc() -> bool:
    """Keep numpy's block-sized temporaries off mmap in nanny-started workers.

    dask.distributed's nanny exports ``MALLOC_TRIM_THRESHOLD_=65536`` into its
    workers (``distributed.nanny.pre-spawn-environ``).  Setting it switches
    off glibc's adaptive mmap threshold, so every temporary over 128 kB (a
    512 x 512 float64 band is 2 MB) is mapped and unmapped again: page
    faults on every numpy operation.  Once per process, where that variable
    is set, raise the mmap threshold to 32 MB and the trim threshold to
    128 MB (``mallopt``).  Opt out with the environment variable
    ``RIOMUCHO_DASK_TUNE_MALLOC=0``.  Returns whether it changed anything.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return False
    _malloc_tuned = True
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    if os.environ.get("RIOMUCHO_DASK_TUNE_MALLOC", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 * 2**20)) and bool(
        libc.mallopt(m_trim_threshold, 128 * 2**20)
    )


#: Output bytes per task on process pools and clusters.  Small blocks are
#: grouped into one task until they add up to this, so per-task costs
#: (pickling, scheduling, transfer) stay small next to the work.  Override
#: with ``dask.config.set({"riomucho_dask.task-bytes": N})``.
TASK_BYTES = 2 * 2**20


def task_bytes() -> int:
    return int(dask.config.get("riomucho_dask.task-bytes", TASK_BYTES))


def run_payload(payload: bytes) -> list:
    """Run one pickled ``(function, args)`` on a worker; return its list of blocks."""
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


def _groups(items, nbytes, target: int):
    """Consecutive items, grouped until their ``nbytes(item)`` reach ``target``."""
    group, total = [], 0
    for item in items:
        group.append(item)
        total += nbytes(item)
        if total >= target:
            yield group
            group, total = [], 0
    if group:
        yield group


def _compute_keys(dsk, keys) -> list:
    return list(dask.local.get_sync(dsk, keys))


def array_tasks(array: da.Array, *, target: int | None = None):
    """(windows, (function, args)) per task: a culled sub-graph of the optimized array.

    Read and compute of a group of neighbouring chunks run as one task on
    one worker and return the group's blocks.
    """
    (array,) = dask.optimize(array)
    dsk = dict(array.__dask_graph__())
    itemsize = array.dtype.itemsize * array.shape[0]

    def nbytes(item):
        window = item[1]
        return int(window.height) * int(window.width) * itemsize

    for group in _groups(_windows(array).items(), nbytes, target or task_bytes()):
        keys = [key for key, _ in group]
        sub, _ = cull(dsk, keys)
        yield [window for _, window in group], (_compute_keys, (sub, keys))


def _call_many(func, pairs) -> list:
    return [func(window, ij) for window, ij in pairs]


def call_tasks(func, windows, *, bytes_per_pixel: int, target: int | None = None):
    """(windows, (function, args)) per task, for ``func(window, ij)`` over ``(window, ij)``
    pairs.  On processes and clusters ``func`` (with what it holds, such as
    global_args) is pickled into each task."""

    def nbytes(pair):
        window = as_window(pair[0])
        return int(window.height) * int(window.width) * bytes_per_pixel

    for group in _groups(windows, nbytes, target or task_bytes()):
        yield [as_window(w) for w, _ in group], (_call_many, (func, [tuple(p) for p in group]))


def in_flight_limit(workers: int) -> int:
    return max(2, 2 * workers)


def stream_write(
    work, store, scheduler: Any = None, *, num_workers: int | None = None
) -> None:
    """Compute blocks on workers and write each in this process as it arrives.

    ``work`` is a dask array or an iterable of ``(windows, (function, args))``
    from :func:`call_tasks`; each task returns one block per window.  The
    writes happen in the calling thread, so workers never wait on the
    writer's lock, and at most :func:`in_flight_limit` tasks are pending.
    """
    if isinstance(work, da.Array):
        work = array_tasks(work)
    which = kind(scheduler)
    if which == "distributed":
        _stream_distributed(work, store, client_of(scheduler))
        return
    workers = num_workers or dask.config.get("num_workers", None) or os.cpu_count() or 1
    if which == "threads":
        with ThreadPoolExecutor(workers, thread_name_prefix="riomucho") as pool:
            _stream_pool(pool, workers, work, store)
    elif which == "processes":
        context = multiprocessing.get_context(dask.config.get("multiprocessing.context", "spawn"))
        with ProcessPoolExecutor(workers, mp_context=context, initializer=configure_worker) as pool:
            pickled = ((w, (run_payload, (cloudpickle.dumps(task),))) for w, task in work)
            _stream_pool(pool, workers, pickled, store)
    else:
        raise SchedulerError(
            f"stream_write runs on threads, processes or distributed, not {which!r}"
        )


def _stream_pool(pool, workers: int, work, store) -> None:
    limit = in_flight_limit(workers)
    pending: dict = {}
    try:
        for windows, (func, args) in work:
            while len(pending) >= limit:
                _drain(pending, store)
            pending[pool.submit(func, *args)] = windows
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
        windows = pending.pop(future)
        try:
            blocks = _result(future)
        except BrokenProcessPool as err:
            raise SchedulerError(
                f"a worker process died while computing window {windows[0]!r} "
                f"(or one of the {len(windows) - 1} after it): killed, out of memory, or "
                "os._exit in the run function; the process pool cannot recover: "
                "run on a dask.distributed cluster to have lost blocks recomputed"
            ) from err
        _write_all(store, windows, blocks)


def _write_all(store, windows, blocks) -> None:
    for window, block in zip(windows, blocks, strict=True):
        store.write(block, window)


def _stream_distributed(work, store, client) -> None:
    from distributed import as_completed

    workers = max(1, sum(client.nthreads().values()))
    limit = in_flight_limit(workers)
    tasks = iter(work)
    in_flight: dict = {}  # future -> its windows
    running = as_completed(loop=client.loop)

    def submit_next() -> bool:
        for windows, task in tasks:
            future = client.submit(run_payload, cloudpickle.dumps(task), pure=False)
            in_flight[future] = windows
            running.add(future)
            return True
        return False

    try:
        for _ in range(limit):
            if not submit_next():
                break
        for future in running:
            _write_all(store, in_flight[future], _result(future))
            del in_flight[future]
            future.release()
            submit_next()
    except BaseException:
        client.cancel(list(in_flight))
        raise
