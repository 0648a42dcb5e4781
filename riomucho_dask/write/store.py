"""The store target: blocks from any scheduler, one writer thread, atomic output.

Every write goes through one :class:`RasterStore`.  Blocks arrive from
dask's worker threads (``store[bands, rows, cols] = block``, as
``da.store`` calls it) or from the thread that streams results back from
worker processes (:meth:`RasterStore.put`).  They wait in a queue bounded
in bytes, drained by one writer thread that owns the output: workers never
wait on compression, and wait on the queue only when the writer is behind.
A new output is written to a hidden temporary file beside the target and
moved into place only when every block is in; an output on object storage
is written in local scratch space and uploaded when complete.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import shutil
import tempfile
import threading
import weakref
from collections import deque
from typing import Any

import numpy as np
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from .. import config, gdal_options, timings
from ..errors import NoSpaceError, SchedulerError, StoreClosedError
from ..paths import is_remote
from ..progress import BlockProgress
from ..windows import slices_to_window
from . import remote
from .encode import Encoding
from .journal import Journal
from .parts import PartSink
from .tiled import TiledWriter
from .writer import GDALWriter

__all__ = ["RasterStore"]

#: A write error with less room than this left on the device is a full disk.
NO_SPACE_MARGIN = 2**20


def _remove_all(paths: list[str]) -> None:
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _umask() -> int:
    """This process's umask, read without changing it where Linux tells it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)  # elsewhere: set and restore, once, at import
    os.umask(mask)
    return mask


#: Permissions of new outputs, as a plain ``open`` would give them.
UMASK = _umask()


def _again(err: BaseException) -> BaseException:
    """A copy of ``err`` to raise in one more thread (its traceback its own)."""
    try:
        copied = copy.copy(err)
    except Exception:
        return err
    return copied if type(copied) is type(err) else err


class RasterStore:
    """A dask store target writing each block as a window of one raster.

    ``store[bands, rows, cols] = block`` (or ``store.put(block, window)``)
    queues ``block`` for the writer thread and returns at once, unless the
    queue is full.  :meth:`commit` waits for the queue to drain, finishes
    the file and moves it to ``path``; :meth:`abort` drops the queue and
    removes the temporary file.  Once either ran, writes raise
    :class:`~riomucho_dask.errors.StoreClosedError`; once the writer failed,
    they raise its error.

    Parameters
    ----------
    path : str or rasterio.io.DatasetWriter
        Output path, or an open dataset to write into (it is neither moved
        nor closed).
    profile : dict
        Creation profile (driver, size, count, dtype, CRS, transform...).
    lock : lock, optional
        A lock (a context manager, such as ``threading.Lock``), held around
        every write to the dataset; default ``threading.Lock()``.
    progress : bool, optional
        Draw a progress bar of blocks written, out of ``total``.
    total : int, optional
        Number of blocks expected, for the progress bar.
    encoding : Encoding, optional
        The output's tiles arrive encoded (:mod:`riomucho_dask.write.encode`,
        one object array of one :class:`~riomucho_dask.write.encode.Tiles`
        per block) and a :class:`~riomucho_dask.write.tiled.TiledWriter`
        places them; default: blocks of pixels, written by GDAL.
    journal : Journal, optional
        With ``encoding``: a resumable write (:mod:`riomucho_dask.write.journal`):
        the tiles and their journal stay when the write stops, and go once
        the output is in place.
    parts : PartSink, optional
        With ``encoding``: the sink of the graph's encoding tasks, which
        :meth:`prepare` may point at part files the workers write
        (:mod:`riomucho_dask.write.parts`).

    Examples
    --------
    >>> import rasterio
    >>> profile = dict(rasterio.open("scene_a.tif").profile)
    >>> store = RasterStore("copy.tif", profile)
    >>> store[:, 0:32, 0:32] = np.zeros((3, 32, 32), "uint16")
    >>> store.commit()
    'copy.tif'
    """

    def __init__(self, path: str | DatasetWriter, profile: dict, *, lock: Any = None,
                 progress: bool = False, total: int = 0, encoding: Encoding | None = None,
                 journal: Journal | None = None, parts: PartSink | None = None):
        dataset = path if isinstance(path, DatasetWriter) else None
        self.path = path.name if dataset is not None else os.fspath(path)
        self.profile = profile
        self._owns = dataset is None
        self._remote = self._owns and is_remote(self.path)
        self._target = self.path if self._remote else os.path.abspath(self.path)
        self._finished: str | None = None
        self._temporaries: list[str] = []
        self._cleanup = None
        self.encoding = encoding if dataset is None else None
        self._resumable = journal is not None
        self._parts = parts if self.encoding is not None else None
        if self.encoding is not None:
            self._writer = TiledWriter(profile, self.encoding, self._temporary, journal)
        else:
            self._writer = GDALWriter(profile, self._temporary, dataset=dataset)
        self._writer.on_finish = self._close_progress
        self._lock = lock if lock is not None else threading.Lock()
        self._gdal_env = gdal_options.captured_env()
        self._cond = threading.Condition()
        self._queue: deque[tuple[np.ndarray, Window, int]] = deque()
        self._queued = 0  # bytes in the queue
        self._limit = int(config.get("queue-bytes"))
        self._thread: threading.Thread | None = None
        self._stopping = False  # no more blocks: drain and stop
        self._closed = False
        self._error: BaseException | None = None
        self.written = 0
        self._progress = (
            BlockProgress(total, label=os.path.basename(self.path)) if progress else None
        )

    def __dask_tokenize__(self):
        # one token per store object: never pickled, never shared
        return ("RasterStore", self.path, id(self))

    def __reduce__(self):
        raise SchedulerError(
            "a RasterStore cannot be sent to another process: its blocks are written in "
            "the process that made it.  Compute to_raster(..., compute=False) results with "
            "riomucho_dask.compute(...) (any scheduler) or dask.compute(...) on the "
            "threaded or synchronous scheduler"
        )

    # -- before computing ---------------------------------------------------------
    def prepare(self, scheduler: str, client: Any = None) -> bool:
        """Called once the scheduler is known, before anything is computed: for
        an output of encoded tiles computed on other processes (``"processes"``,
        or ``"distributed"`` when every worker sees the directory), the workers
        write their tiles into part files beside the output (or its spool, for
        object storage) rather than sending them back.  Returns whether they do.
        """
        if self._parts is None or scheduler not in ("processes", "distributed"):
            return False
        beside = os.path.join(remote.scratch_dir(), os.path.basename(self.path.rstrip("/"))) \
            if self._remote else self._target
        try:
            directory = self._parts.use(beside)
        except OSError:
            return False  # (an unwritable place: GDAL's own error comes with the output)
        if client is not None:
            try:
                seen = client.run(os.path.isdir, directory)
            except Exception:
                seen = {}
            if not seen or not all(seen.values()):  # workers elsewhere: tiles come back
                self._parts.remove()
                return False
        return True

    # -- receiving blocks (any thread) ----------------------------------------
    def __setitem__(self, key: tuple[slice, ...], block: np.ndarray) -> None:
        if block.dtype == object:  # one chunk of encoded tiles: they know their place
            self.put(block.item(), None)
            return
        rows, cols = key[-2:]
        self.put(block, slices_to_window(rows, cols))

    def put(self, block: Any, window: Window | list | None) -> None:
        """Queue ``block`` (``(count, h, w)``) for ``window``, or encoded tiles
        (``window`` None), or a list of blocks for a list of windows; wait while
        the queue is full."""
        if isinstance(window, list):  # (a task of several windows)
            for one, place in zip(block, window, strict=True):
                self.put(one, place)
            return
        if isinstance(block, np.ndarray) and block.dtype == object:
            block = block.item()
        nbytes = int(getattr(block, "nbytes", 0))
        with self._cond:
            self._check(window)
            if self._queued and self._queued + nbytes > self._limit:
                with timings.timed("wait"):
                    while self._queued and self._queued + nbytes > self._limit:
                        self._cond.wait()
                        self._check(window)
            self._queue.append((block, window, nbytes))
            self._queued += nbytes
            if self._thread is None:  # (re)started here, after the block is in
                self._thread = threading.Thread(target=self._drain, daemon=True,
                                                 name=f"riomucho-writer-{self.path}")
                self._thread.start()
            self._cond.notify_all()

    def _check(self, window: Window) -> None:
        if self._error is not None:
            raise _again(self._error) from self._error
        if self._closed or self._stopping:
            raise StoreClosedError(f"{self.path!r} is closed; window {window!r} not written")

    # -- the writer thread ----------------------------------------------------
    def _drain(self) -> None:
        # Runs while blocks are queued, then ends: an idle store holds no
        # thread (a store dropped after a failed graph is collected, and its
        # temporary file removed).
        try:
            with gdal_options.env(self._gdal_env):
                while True:
                    with self._cond:
                        if not self._queue:
                            self._thread = None
                            return
                        block, window, nbytes = self._queue[0]
                    with self._lock, timings.timed("write"):
                        self._writer.write(block, window)
                    with self._cond:
                        if self._queue:  # (an abort may have emptied it meanwhile)
                            self._queue.popleft()
                            self._queued -= nbytes
                        self.written += 1
                        self._cond.notify_all()
                    if self._progress is not None:
                        with contextlib.suppress(Exception):  # a bar never fails a write
                            self._progress.update()
        except BaseException as err:  # handed to the producers and to commit
            with self._cond:
                self._error = self._explain(err)
                self._queue.clear()
                self._queued = 0
                self._thread = None
                self._cond.notify_all()

    def explain(self, err: BaseException) -> BaseException:
        """``err`` (raised while computing, maybe on a worker), or the
        :class:`NoSpaceError` it means."""
        return self._explain(err)

    def _explain(self, err: BaseException) -> BaseException:
        """``err``, or a :class:`NoSpaceError` saying so when the disk is full.

        GDAL reports a full disk as "Write failed", the cause only on stderr:
        a write error with (almost) no room left on the device is taken as one.
        """
        if not isinstance(err, Exception) or isinstance(err, NoSpaceError):
            return err
        if self._temporaries:
            directory = os.path.dirname(self._temporaries[0])
        elif self._parts is not None and self._parts.directory is not None:
            directory = os.path.dirname(self._parts.directory)  # (the workers' part files)
        else:
            return err
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            return err
        chain, cause = [], err
        while cause is not None and len(chain) < 10:
            chain.append(cause)
            cause = cause.__cause__ or cause.__context__
        enospc = any(getattr(e, "errno", None) == errno.ENOSPC for e in chain)
        if not enospc and free >= NO_SPACE_MARGIN:
            return err
        profile = self.profile
        needed = (int(profile["count"]) * int(profile["height"]) * int(profile["width"])
                  * np.dtype(profile["dtype"]).itemsize)
        cog = str(profile.get("driver", "")).upper() == "COG"
        if cog:
            needed *= 2  # the tiled intermediate, then the COG
        explained = NoSpaceError(
            f"no space left on the device of {directory!r} while writing {self.path!r}: "
            f"{free / 2**20:.1f} MB free, and the output needs up to about "
            f"{needed / 2**20:.1f} MB (its uncompressed size{', twice for a COG' if cog else ''}"
            "; compressed, less)"
        )
        explained.__cause__ = err
        return explained

    def _stop(self, *, drop: bool) -> None:
        with self._cond:
            self._stopping = True
            if drop:
                self._queue.clear()
                self._queued = 0
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- ending ---------------------------------------------------------------
    def _temporary(self) -> str:
        if self._remote:  # written in scratch space, uploaded when complete
            directory, name = remote.scratch_dir(), self.path.rstrip("/").rsplit("/", 1)[-1]
        else:
            directory, name = os.path.split(self._target)
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        os.close(fd)
        self._temporaries.append(path)
        if self._cleanup is None:
            # Remove temporary files if the store is dropped without commit
            # (a compute=False graph that failed, an interrupted kernel).
            self._cleanup = weakref.finalize(self, _remove_all, self._temporaries)
        return path

    def finish(self) -> None:
        """Wait for every queued block and finish the file (a COG gets its
        overviews), without moving it into place yet: see :meth:`publish`."""
        with self._cond:
            if self._closed or self._stopping:
                raise StoreClosedError(f"{self.path!r} was already closed")
        self._stop(drop=False)
        try:
            if self._error is not None:
                raise _again(self._error) from self._error
            with self._lock, gdal_options.env(self._gdal_env):
                try:
                    self._finished = self._writer.close()
                except Exception as err:
                    raise self._explain(err) from err
        except BaseException:
            self._closed = True
            self._abort_files()
            self._close_progress()
            raise

    def publish(self) -> str:
        """Move the finished file into place (or upload it); return the path."""
        if self._closed or not self._stopping:
            raise StoreClosedError(f"{self.path!r} is closed or not finished")
        try:
            finished = self._finished
            if finished is not None and self._remote:
                with self._lock, gdal_options.env(self._gdal_env):
                    remote.upload(finished, self.path)
            elif finished is not None:
                os.chmod(finished, 0o666 & ~UMASK)
                os.replace(finished, self._target)
        except BaseException:
            self._abort_files()
            raise
        finally:
            self._closed = True
            self._close_progress()
        self._remove_temporaries()
        discard = getattr(self._writer, "discard", None)
        if discard is not None:
            discard()
        return self.path

    def commit(self) -> str:
        """:meth:`finish`, then :meth:`publish`: the output is in place."""
        self.finish()
        return self.publish()

    def abort(self) -> None:
        """Drop queued blocks (a resumable write writes them first: they are
        done work), close the dataset, remove the temporary file; idempotent."""
        with self._cond:
            if self._closed:
                return
        self._stop(drop=not self._resumable)
        self._closed = True
        self._abort_files()
        self._close_progress()

    def _abort_files(self) -> None:
        try:
            with self._lock:
                self._writer.abort()
        finally:
            if self._owns:
                self._remove_temporaries()

    def _remove_temporaries(self) -> None:
        _remove_all(self._temporaries)
        if self._parts is not None:
            self._parts.remove()
        if self._cleanup is not None:
            self._cleanup.detach()

    def _close_progress(self, then: str | None = None) -> None:
        if self._progress is not None:
            with contextlib.suppress(Exception):  # a bar never fails a write
                self._progress.close(then=then)
