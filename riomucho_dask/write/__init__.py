"""Writing: ``to_raster`` and the store target it writes through."""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from rasterio.io import DatasetWriter

from .. import config
from ..dataarrays import for_writing, is_dataarray
from ..errors import OutputPathError, ProfileError, RioMuchoDaskWarning
from ..execute.engine import RasterWrite, array_write, compute, run, tiles_write
from ..paths import is_remote
from . import encode, remote
from .journal import Journal
from .parts import PartSink
from .profile import align_chunks, build_profile
from .store import RasterStore

__all__ = ["to_raster", "RasterStore", "RasterWrite", "compute", "build_profile"]


def to_raster(
    array: Any,
    path: str | os.PathLike | DatasetWriter,
    profile: dict | None = None,
    *,
    like: str | os.PathLike | None = None,
    scheduler: Any = None,
    lock: Any = None,
    compute: bool = True,
    progress: bool = False,
    resume: bool = False,
    report: bool = False,
    **creation_options: Any,
):
    """Write a ``(count, rows, cols)`` dask array to a raster, window by window.

    Parameters
    ----------
    array : dask.array.Array, numpy.ndarray or xarray.DataArray
        ``(count, rows, cols)`` or ``(rows, cols)``; usually from
        :func:`map_windows`.  A DataArray (``(band, y, x)`` or ``(y, x)``) brings
        its own CRS, transform and nodata (``.rio``), used unless ``like`` is
        given; ``profile`` and creation options still apply.
    path : str, os.PathLike or rasterio.io.DatasetWriter
        Output path.  It is written to a temporary file beside it and moved
        into place only when every window is written; on any failure the
        temporary file is removed and an existing file at ``path`` is
        untouched.  On object storage (``s3://``, ``/vsis3/``, any GDAL
        virtual path), it is written in local scratch space and uploaded
        once complete (see :mod:`riomucho_dask.write.remote`).  An open
        dataset is written into as it is.
    profile : dict, optional
        Creation profile; updates ``like``'s.
    like : str or os.PathLike, optional
        A raster whose CRS, transform, nodata, driver and layout the output
        copies.  ``profile`` or ``like`` is required, unless ``array`` is a
        georeferenced DataArray.
    scheduler : str or distributed.Client, optional
        As dask's ``compute(scheduler=...)``: ``"threads"``, ``"sync"``,
        ``"processes"`` or a client; default the active one.  The whole
        graph runs on that scheduler, each key once; finished blocks go to
        one writer thread in this process (from dask's worker threads, or
        streamed back from worker processes and cluster workers), which
        alone touches the output file.
    lock : lock, optional
        Lock around every write (default: a new ``threading.Lock``).
    compute : bool, optional
        If False, return a :class:`RasterWrite`, a ``dask.delayed`` object
        that writes when computed and returns the path: with
        ``dask.compute(w1, w2)`` on the threaded or synchronous scheduler,
        or with :func:`riomucho_dask.compute` (``w.compute()``) on any
        scheduler; work shared by writes computed together runs once.
    progress : bool, optional
        Draw blocks done / total, rate and ETA on stderr.
    resume : bool, optional
        Make the write resumable: the tiles written so far and a journal of
        them stay beside ``path`` (hidden ``.NAME.resume-tiles`` and
        ``.NAME.resume-journal``; in scratch space for object storage) when
        the run stops for any reason, and the same job run again with
        ``resume=True`` computes only the chunks not yet written (their run
        functions are not called again).  Another job's leftovers at the
        same path are discarded with a warning.  Needs an output written
        from encoded tiles (a tiled GeoTIFF or a COG, see the README).
    report : bool, optional
        Print where the time went, per worker and in total (reading, run
        function, encoding, waiting for the writer; in this process,
        receiving blocks, writing and finishing) and return it as a
        :class:`~riomucho_dask.timings.Report` (its ``path`` the output)
        instead of the path.
    **creation_options
        GDAL creation options (``compress="deflate"``, ``tiled=True``...).
        Compressed GeoTIFFs get ``NUM_THREADS=ALL_CPUS`` and
        ``BIGTIFF=IF_SAFER`` unless given.

    Returns
    -------
    str, Report or RasterWrite
        The output path; with ``report=True`` the report; the delayed write
        when ``compute=False`` (``report`` is then given to its ``compute``).

    Raises
    ------
    ProfileError
        No georeferencing, or a profile contradicting the array; or
        ``resume=True`` for an output GDAL must write itself.
    OutputPathError
        The output directory, or the bucket of an object-storage output,
        does not exist or cannot be reached (before anything is computed);
        or the upload failed (nothing is left at ``path`` then).

    Examples
    --------
    >>> from riomucho_dask import map_windows
    >>> def halve(data, window, ij, g):
    ...     return data[0] // 2
    >>> out = map_windows(halve, ["scene_a.tif"])
    >>> to_raster(out, "half.tif", like="scene_a.tif", compress="deflate")
    'half.tif'
    """
    if is_dataarray(array):
        array, georef = for_writing(array)
        if like is None:  # georeferencing from the DataArray, unless given
            profile = {**georef, **(profile or {})}
    if not isinstance(array, da.Array):
        array = da.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3:
        raise ProfileError(f"to_raster needs a (count, rows, cols) array, not shape {array.shape}")
    if lock is False:
        raise ProfileError("lock=False is refused: concurrent writes corrupt a GDAL dataset")
    if isinstance(path, DatasetWriter):
        out_profile = dict(path.profile)
        if (path.count, path.height, path.width) != array.shape:
            raise ProfileError(
                f"the array's shape {array.shape} does not match the open dataset "
                f"{path.name!r} {(path.count, path.height, path.width)}"
            )
    else:
        path = os.fspath(path)
        if is_remote(path):
            remote.check_writable(path)
        else:
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                raise OutputPathError(f"output directory {directory!r} does not exist")
            check_directory(path, directory)
        out_profile = build_profile(array, profile, like, creation_options, path)
    if np.dtype(out_profile["dtype"]) != array.dtype:
        array = array.astype(out_profile["dtype"])
    array = align_chunks(array, out_profile)

    encoding = None
    if not isinstance(path, DatasetWriter) and config.get("encode-tiles"):
        encoding = encode.for_profile(out_profile)
    journal = _journal(path, array, out_profile, encoding) if resume else None
    sink = None
    if encoding is None:
        total = array.npartitions
    else:
        sink = PartSink()  # (told at compute time whether the workers write part files)
        pairs = encode.encoded_arrays(array, encoding, journal, sink)
        arrays = [encoded for encoded, _ in pairs]
        skip = None
        if journal is not None and journal.entries:
            skip = [[place in journal.entries for place in places] for _, places in pairs]
        by, bx = encoding.block  # (the bar counts full-resolution tiles)
        total = -(-out_profile["height"] // by) * -(-out_profile["width"] // bx)
        if skip:
            total -= sum(e.rows * e.cols for e in journal.entries.values() if e.level == 0)
    store = RasterStore(path, out_profile, lock=lock if lock not in (None, True) else None,
                        progress=progress, total=total, encoding=encoding, journal=journal,
                        parts=sink, masked=isinstance(array._meta, np.ma.MaskedArray))
    write = array_write(store, array) if encoding is None else tiles_write(store, arrays, skip)
    if not compute:
        return RasterWrite(write)
    done = run([write], scheduler, report=report)
    if report:
        print(done)
        return done
    return done[0]


def check_directory(path: str, directory: str) -> None:
    """Raise :class:`OutputPathError` naming ``path`` when nothing can be created in
    ``directory`` (read-only, no permission), before anything is computed."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".riomucho-probe-", dir=directory)
    except OSError as err:
        raise OutputPathError(
            f"output {path!r} cannot be written: {directory!r} is not writable "
            f"({err.strerror or err})") from err
    os.close(fd)
    os.remove(probe)


def _journal(path: Any, array: da.Array, profile: dict,
             encoding: encode.Encoding | None) -> Journal:
    """The journal of a resumable write, with what an earlier run of the same
    job left (another job's leftovers are discarded, with a warning)."""
    if encoding is None or isinstance(path, DatasetWriter):
        raise ProfileError(
            "resume=True needs an output written from encoded tiles: a tiled GeoTIFF "
            f"or a COG with compress one of {sorted(encode.CODECS)} (and, for a COG, "
            "overview_resampling 'nearest' or 'average'), written to a path; "
            f"not {profile.get('driver')!r} with these options"
            + ("; for a GeoTIFF, pass tiled=True (CLI: --co tiled=true)"
               if str(profile.get("driver", "")).upper() == "GTIFF"
               and str(profile.get("tiled", "")).upper() not in ("TRUE", "YES", "1", "ON")
               else "")
        )
    job = tokenize(array.name, encoding, sorted((k, str(v)) for k, v in profile.items()))
    journal = Journal(path, job)
    journal.lock()
    journal.load()
    if journal.reason is not None:
        warnings.warn(RioMuchoDaskWarning(
            f"{path!r} was not resumed and starts over: {journal.reason}"), stacklevel=3)
    return journal

