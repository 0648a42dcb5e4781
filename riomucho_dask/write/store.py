"""The store target: blocks from any scheduler, one writer thread.

Every write goes through one :class:`RasterStore`.  Blocks arrive from
dask's worker threads (``store[bands, rows, cols] = block``, as
``da.store`` calls it) or from the thread that streams results back from
worker processes (:meth:`RasterStore.put`).  They wait in a queue bounded
in bytes, drained by one writer thread that alone calls the
:class:`~riomucho_dask.write.writers.gdal.Writer` (a GDAL dataset, or encoded
tiles placed by :class:`~riomucho_dask.write.writers.tiled.TiledWriter`): workers
never wait on compression, and wait on the queue only when the writer is
behind.  The bytes go to an :class:`~riomucho_dask.write.sinks.output.OutputFile`
(temporary files, moved into place or uploaded when complete).
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections import deque
from typing import Any

import numpy as np
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from .. import config, gdal_options, timings
from ..errors import (
    OutputPathError,
    SchedulerError,
    StoreClosedError,
    gdal_message,
    is_gdal_error,
)
from ..progress import BlockProgress
from ..windows import slices_to_window
from .journal import Journal
from .kernels.statistics import BlockStatistics, Measured
from .sinks.multipart import describe
from .sinks.output import OutputFile
from .sinks.parts import PartSink
from .spec.layout import Encoding
from .spec.metadata import Metadata
from .writers import upload
from .writers.gdal import GDALWriter, Writer
from .writers.tiled import TiledWriter

__all__ = ["RasterStore"]

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
        Draw a progress bar of blocks written (with ``encoding``: of the
        output's full-resolution tiles), out of ``total``.
    total : int, optional
        Number of blocks (tiles) expected, for the progress bar.
    encoding : Encoding, optional
        The output's tiles arrive encoded (:mod:`riomucho_dask.write.graph.encode`,
        one object array of one :class:`~riomucho_dask.write.tiff.codec.Tiles`
        per block) and a :class:`~riomucho_dask.write.writers.tiled.TiledWriter`
        places them; default: blocks of pixels, written by GDAL.
    journal : Journal, optional
        With ``encoding``: a resumable write (:mod:`riomucho_dask.write.journal`):
        the tiles and their journal stay when the write stops, and go once
        the output is in place.
    parts : PartSink, optional
        With ``encoding``: the sink of the graph's encoding tasks, which
        :meth:`prepare` may point at part files the workers write
        (:mod:`riomucho_dask.write.sinks.parts`).
    masked : bool, optional
        The blocks may be masked arrays (the array's meta is one).
    metadata : Metadata, optional
        Descriptions, tags, units, scale/offset and colour table to write
        (:func:`~riomucho_dask.write.spec.metadata.output_metadata`).

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
                 journal: Journal | None = None, parts: PartSink | None = None,
                 masked: bool = False, metadata: Metadata | None = None):
        dataset = path if isinstance(path, DatasetWriter) else None
        self._dataset = dataset
        self.path = path.name if dataset is not None else os.fspath(path)
        self.profile = profile
        self._owns = dataset is None
        self.encoding = encoding if dataset is None else None
        self._journal = journal
        self._parts = parts
        self._resumable = journal is not None
        self._maybe_masked = masked
        self._metadata = metadata
        self._lock = lock if lock is not None else threading.Lock()
        self._gdal_env = gdal_options.captured_env()  # (the options of when it was made)
        self._show_progress, self._total = progress, total
        self._start()

    def _start(self) -> None:
        """The state of one run: the output's files, the writer, the queue."""
        #: Where the bytes go (None when writing into an open dataset).
        self.output = OutputFile(self.path, self.profile) if self._owns else None
        self._finished: str | None = None
        self._writer: Writer
        if self.encoding is not None:
            self._writer = TiledWriter(self.profile, self.encoding, self.output.temporary,
                                       self._journal, sink=self._parts,
                                       metadata=self._metadata)
            if self._parts is not None:
                self.output.also_remove(self._parts)
        else:
            self._writer = GDALWriter(self.profile, self._temporary, dataset=self._dataset,
                                      staged=self.output.staged if self._owns else None,
                                      metadata=self._metadata)
        self._writer.on_finish = self._close_progress
        self._cond = threading.Condition()
        self._queue: deque[tuple[Any, Window | None, int, Any]] = deque()
        self._queued = 0  # bytes in the queue
        self._limit = int(config.get("queue-bytes"))
        self._thread: threading.Thread | None = None
        self._stopping = False  # no more blocks: drain and stop
        self._closed = False
        self._error: BaseException | None = None
        self.written = 0
        # the statistics each written block carried, by its place
        # (``to_raster(..., stats=True)``)
        self._measured: dict[tuple[int, int], BlockStatistics] = {}
        #: On a cluster, run on each block where it was computed; only its result
        #: travels here (:meth:`put_remote`); None: blocks travel whole.
        self.remote_result: Any = None
        self._progress = (
            BlockProgress(self._total, label=os.path.basename(self.path),
                          unit="blocks" if self.encoding is None else "tiles")
            if self._show_progress else None
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
    @property
    def resumable(self) -> bool:
        """A resumable write (``resume=True``): it runs once."""
        return self._resumable

    def renew(self) -> None:
        """Make a store that finished (or was aborted) ready to write its output
        again: a ``to_raster(..., compute=False)`` write computed a second time
        writes again.  A no-op on a store not yet closed.

        Raises
        ------
        StoreClosedError
            For a resumable write, which runs once (its graph left out what an
            earlier run had written): call ``to_raster(..., resume=True)`` again.
        """
        with self._cond:
            if not self._closed:
                return
        if self._resumable:
            raise StoreClosedError(
                f"the resumable write of {self.path!r} has run: a resumable write runs "
                "once; call to_raster(..., resume=True) again to resume or write it again")
        self._start()

    def prepare(self, scheduler: str, client: Any = None) -> bool:
        """Called once the scheduler is known, before anything is computed: the
        writer may have the workers write (part files, see
        :meth:`~riomucho_dask.write.writers.gdal.Writer.from_workers`), or, for an
        output on S3 computed on a cluster, upload its parts
        (:mod:`riomucho_dask.write.writers.upload`).  Returns whether they do."""
        if self.output is None:
            return False
        if (self.output.remote and self.encoding is not None and not self._resumable
                and scheduler == "distributed" and config.get("upload-parts")):
            with gdal_options.env(self._gdal_env):
                writer = upload.for_output(self.path, self.profile, self.encoding,
                                           self._gdal_env, client, self._maybe_masked,
                                           self._metadata)
            if writer is not None:
                writer.on_finish = self._close_progress
                self._writer = writer
                self.remote_result = describe
                return True
        return self._writer.from_workers(scheduler, client, self.output.beside)

    # -- receiving blocks (any thread) ----------------------------------------
    def __setitem__(self, key: tuple[slice, ...], block: np.ndarray) -> None:
        if block.dtype == object:  # one chunk of encoded tiles: they know their place
            self.put(block.item(), None)
            return
        rows, cols = key[-2:]
        self.put(block, slices_to_window(rows, cols))

    def put(self, block: Any, window: Window | list | None) -> None:
        """Queue ``block`` (``(count, h, w)``) for ``window``, or encoded tiles
        or a :class:`~riomucho_dask.write.kernels.statistics.Measured` block (``window``
        None: they know their place), or a list of blocks for a list of windows;
        wait while the queue is full.  The statistics a block carries are added
        to :attr:`statistics` once it is written."""
        if isinstance(window, list):  # (a task of several windows)
            for one, place in zip(block, window, strict=True):
                self.put(one, place)
            return
        if isinstance(block, np.ndarray) and block.dtype == object:
            block = block.item()
        stats = getattr(block, "stats", None)  # (measured in the block's task)
        if isinstance(block, Measured):  # (pixels for GDAL, with their place)
            block, window = block.block, block.window
            stats = ((int(window.row_off), int(window.col_off)), stats)
        elif stats is not None:
            stats = ((block.row, block.col), stats)
        nbytes = int(getattr(block, "nbytes", 0))
        with self._cond:
            self._check(window)
            if self._queued and self._queued + nbytes > self._limit:
                with timings.timed("wait"):
                    while self._queued and self._queued + nbytes > self._limit:
                        self._cond.wait()
                        self._check(window)
            self._queue.append((block, window, nbytes, stats))
            self._queued += nbytes
            if self._thread is None:  # (re)started here, after the block is in
                self._thread = threading.Thread(target=self._drain, daemon=True,
                                                 name=f"riomucho-writer-{self.path}")
                self._thread.start()
            self._cond.notify_all()

    def put_remote(self, result: Any, future: Any) -> None:
        """Queue a block still on a cluster worker (``future``), from what
        :attr:`remote_result` made of it there."""
        result.part.future = future
        self.put(result, None)

    def _check(self, window: Window) -> None:
        if self._error is not None:
            raise _again(self._error) from self._error
        if self._closed or self._stopping:
            raise StoreClosedError(
                f"{self.path!r} is closed (its write finished or failed); window {window!r} "
                "not written.  Compute the write again with w.compute() or "
                "riomucho_dask.compute(w): it writes again")

    @property
    def statistics(self) -> BlockStatistics | None:
        """The band statistics of the blocks written so far, when they carry
        them (``to_raster(..., stats=True)``), else None: added up pairwise in
        the blocks' order, so the same on every scheduler, to the last bit."""
        with self._cond:
            measured = [self._measured[place] for place in sorted(self._measured)]
        while len(measured) > 1:
            pairs = [a + b for a, b in zip(measured[::2], measured[1::2])]
            measured = pairs + measured[len(pairs) * 2:]
        return measured[0] if measured else None

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
                        block, window, nbytes, stats = self._queue[0]
                    with self._lock, timings.timed("write"):
                        try:
                            self._writer.write(block, window)
                        except Exception as err:
                            if not is_gdal_error(err):
                                raise
                            raise self._write_failed(err, block, window) from err
                    with self._cond:
                        if self._queue:  # (an abort may have emptied it meanwhile)
                            self._queue.popleft()
                            self._queued -= nbytes
                        self.written += 1
                        if stats is not None:
                            self._measured[stats[0]] = stats[1]
                        self._cond.notify_all()
                    if self._progress is not None:
                        with contextlib.suppress(Exception):  # a bar never fails a write
                            step = 1 if self.encoding is None else (
                                block.rows * block.cols if block.level == 0 else 0)
                            if step:  # (tiles at full resolution; overviews apart)
                                self._progress.update(step)
        except BaseException as err:  # handed to the producers and to commit
            with self._cond:
                self._error = self.explain(err)
                self._queue.clear()
                self._queued = 0
                self._thread = None
                self._cond.notify_all()

    def _write_failed(self, err: BaseException, block: Any, window: Any) -> BaseException:
        """A GDAL failure writing ``block``: a full disk said so, else an
        :class:`~riomucho_dask.errors.OutputPathError` naming the output, the
        place and GDAL's own message."""
        explained = self.explain(err)
        if explained is not err:
            return explained
        if window is None and hasattr(block, "level"):
            where = f"tiles at tile row {block.row}, column {block.col} of level {block.level}"
        elif isinstance(window, str):
            where = window
        else:
            where = f"window {window!r}"
        message = gdal_message(err)
        if self.output is not None:  # (GDAL names the temporary file: name the output)
            message = self.output.as_target(message)
        return OutputPathError(f"writing {self.path!r} ({where}) failed: {message}")

    def explain(self, err: BaseException) -> BaseException:
        """``err`` (raised while computing, maybe on a worker, or by the writer),
        or the :class:`~riomucho_dask.errors.NoSpaceError` it means."""
        return self.output.explain(err) if self.output is not None else err

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
        return self.output.temporary()

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
                    statistics = self.statistics
                    if statistics is not None:
                        self._writer.add_band_tags(statistics.band_tags())
                    self._finished = self._writer.close()
                except Exception as err:
                    if is_gdal_error(err):
                        raise self._write_failed(err, None, "finishing the file") from err
                    raise self.explain(err) from err
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
            with self._lock, gdal_options.env(self._gdal_env):
                if self._finished is not None:
                    self.output.publish(self._finished)
                self._writer.publish()
        except BaseException:
            self._abort_files()
            raise
        finally:
            self._closed = True
            self._close_progress()
        self._remove_temporaries()
        self._writer.discard()
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
        if self.output is not None:
            self.output.remove_temporaries()

    def _close_progress(self, then: str | None = None) -> None:
        if self._progress is not None:
            with contextlib.suppress(Exception):  # a bar never fails a write
                self._progress.close(then=then)
