"""Writing: ``to_raster`` and the store target it writes through."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
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
from .graph import encode
from .journal import Journal
from .kernels.statistics import measured_blocks
from .sinks import remote
from .sinks.parts import PartSink
from .spec import drivers
from .spec.metadata import DRIVERS, output_metadata
from .spec.profile import align_chunks, build_profile
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
    descriptions: Sequence[str | None] | None = None,
    tags: Mapping[str, Any] | None = None,
    band_tags: Sequence[Mapping[str, Any] | None] | None = None,
    units: Sequence[str | None] | None = None,
    scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
    colormap: Mapping[int, tuple[int, ...]] | None = None,
    stats: bool = False,
    overviews: str | Sequence[int] | None = None,
    overview_resampling: str | None = None,
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
        once complete (see :mod:`riomucho_dask.write.sinks.remote`).  An open
        dataset is written into as it is.
    profile : dict, optional
        Creation profile; updates ``like``'s.
    like : str or os.PathLike, optional
        A raster whose CRS, transform, nodata, driver and layout the output
        copies.  ``profile`` or ``like`` is required, unless ``array`` is a
        georeferenced DataArray.  When it has the output's band count, a
        GeoTIFF or COG output also takes its band descriptions, units and
        (one-band uint8 or uint16 outputs) colour table, unless given below.
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
    descriptions : list of str or None, optional
        One description per band (None: none), e.g. ``["red", "nir"]``.
    tags : dict, optional
        The dataset's tags, ``{KEY: value}`` (values written as text;
        ``TIFFTAG_*`` keys become the matching TIFF tags, as in GDAL).
    band_tags : list of dict or None, optional
        One dict of tags per band.
    units : list of str or None, optional
        One unit per band (``"m"``, ``"K"``...).
    scales, offsets : list of float, optional
        One scale and one offset per band: the stored pixels times the scale,
        plus the offset, are the values meant (GDAL's, rasterio's
        ``src.scales`` and ``src.offsets``).
    colormap : dict, optional
        Band 1's colour table, ``{value: (r, g, b)}`` or ``(r, g, b, a)``
        as rasterio's ``write_colormap``; a one-band uint8 or uint16 output
        only (a GeoTIFF palette).

        The metadata arguments need a GeoTIFF or COG output; GDAL writes them
        into the file itself (``GDAL_METADATA``, the TIFF palette and text
        tags), the same on every route, with no ``.aux.xml`` beside it.
    stats : bool, optional
        Write each band's statistics over its valid pixels (not nodata, not
        masked, not NaN) as GDAL's band metadata: ``STATISTICS_MINIMUM``,
        ``STATISTICS_MAXIMUM``, ``STATISTICS_MEAN``, ``STATISTICS_STDDEV``
        (population) and ``STATISTICS_VALID_PERCENT``, which ``gdalinfo``,
        QGIS and ``src.statistics(band)`` read as they are.  Each block is
        measured in the task that computed it and only the numbers travel:
        the output is neither read back nor computed again.  A GeoTIFF or
        COG output of real numbers (not ``resume=True``).
    overviews : "auto", list of int or None, optional
        Internal overviews: reduction factors (``[2, 4, 8]``), or ``"auto"``
        (2, 4, 8... until a level fits in one tile), made in the same graph
        as the full resolution, from the blocks as they are computed (the
        output is not read back).  A tiled GeoTIFF gets GDAL's levels and
        pixels, those ``BuildOverviews`` would give it; a COG has overviews
        by default (``"auto"``; ``"none"`` for none; a list of factors 2, 4,
        8... sets their number).
    overview_resampling : str, optional
        ``"nearest"`` (the default for a GeoTIFF, and for a COG of integers),
        ``"average"`` (a COG of real numbers), ``"mode"`` (class rasters;
        GeoTIFF), all three equal to GDAL's; ``"bilinear"``, ``"cubic"``,
        ``"cubicspline"`` (or ``"cubic_spline"``), ``"lanczos"`` made by GDAL chunk by chunk
        (a GeoTIFF; a COG through GDAL's COG driver).
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
        ``resume=True`` for an output GDAL must write itself; or metadata
        (``stats=True`` too) of the wrong shape (naming the argument: a
        description per band, a colour table for a one-band integer output,
        tags as a dict), or for an output other than a GeoTIFF or COG.  All
        before anything is computed.
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
    >>> to_raster(out, "half_described.tif", like="scene_a.tif",
    ...           descriptions=["red / 2", "green / 2", "blue / 2"],
    ...           tags={"source": "scene_a.tif"})
    'half_described.tif'
    >>> to_raster(out, "half_stats.tif", like="scene_a.tif", stats=True)
    'half_stats.tif'
    >>> import rasterio
    >>> with rasterio.open("half_stats.tif") as src:
    ...     src.tags(1)["STATISTICS_VALID_PERCENT"]
    '100'
    >>> to_raster(out, "half_overviews.tif", like="scene_a.tif", tiled=True,
    ...           blockxsize=64, blockysize=64, overviews="auto",
    ...           overview_resampling="average")
    'half_overviews.tif'
    >>> with rasterio.open("half_overviews.tif") as src:
    ...     src.overviews(1)
    [2, 4]
    """
    if is_dataarray(array):
        array, georef = for_writing(array)
        if like is None:  # georeferencing from the DataArray, unless given
            profile = {**georef, **(profile or {})}
    if not isinstance(array, da.Array):
        array = da.asarray(array)
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim == 4:
        raise ProfileError(
            f"to_raster needs a (count, rows, cols) array, not the (time, band, rows, cols) "
            f"{array.shape} of a series: reduce it over time first (e.g. "
            "array.median(axis=0) or nanmedian of a masked series' filled values), or "
            "reshape the dates into bands (array.reshape((-1, rows, cols)))")
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
        if not is_remote(path):
            check_target(path, str(out_profile["driver"]))
    metadata = output_metadata(
        array.shape[0], out_profile["dtype"],
        path.driver if isinstance(path, DatasetWriter) else str(out_profile["driver"]), like,
        descriptions=descriptions, tags=tags, band_tags=band_tags, units=units, scales=scales,
        offsets=offsets, colormap=colormap,
        profile=dict(path.profile) if isinstance(path, DatasetWriter) else out_profile,
        stats=stats)
    if stats:
        _check_stats(path.driver if isinstance(path, DatasetWriter)
                     else str(out_profile["driver"]), out_profile["dtype"], resume)
    factors = None
    if not isinstance(path, DatasetWriter):
        # (given in a profile, as RioMucho's options pass them: as the keywords,
        # which win)
        given = out_profile.pop("overviews", None)
        overviews = given if overviews is None else overviews
        given = out_profile.pop("overview_resampling", None)
        overview_resampling = given if overview_resampling is None else overview_resampling
    if str(out_profile.get("driver", "")).upper() == "COG" and "resampling" in out_profile:
        out_profile["resampling"] = _resampling_name(out_profile["resampling"])
    if overviews is not None or overview_resampling is not None:
        factors, overview_resampling = _overviews(path, out_profile, overviews,
                                                  overview_resampling)
    if np.dtype(out_profile["dtype"]) != array.dtype:
        array = array.astype(out_profile["dtype"])
    array = align_chunks(array, out_profile)

    encoding = None
    if not isinstance(path, DatasetWriter) and config.get("encode-tiles"):
        encoding = encode.for_profile(out_profile, factors, overview_resampling)
        if encoding is not None and stats:  # (measured as they are encoded)
            encoding = dataclasses.replace(encoding, stats=True)
        if encoding is not None and encoding.factors and encoding.nodata is None \
                and isinstance(array._meta, np.ma.MaskedArray):
            # said to be masked: its levels are made as GDAL makes a masked
            # file's, so it is one, even if no pixel turns out masked
            encoding = dataclasses.replace(encoding, mask=True)
    if factors and encoding is None:
        raise ProfileError(
            "overviews= on a GeoTIFF needs a tiled one (tiled=True; CLI --co tiled=true) "
            f"with compress one of {sorted(encode.CODECS)}, blocks multiples of 16 and the "
            "tiles encoded in the graph (riomucho_dask.encode-tiles); not these options: "
            f"{ {k: v for k, v in out_profile.items() if k not in ('crs', 'transform')} }")
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
                        parts=sink, masked=isinstance(array._meta, np.ma.MaskedArray),
                        metadata=metadata)
    if encoding is not None:
        write = tiles_write(store, arrays, skip)
    elif stats:  # (each block measured in its own task, on its way to GDAL)
        write = tiles_write(store, [measured_blocks(array, out_profile.get("nodata"))])
    else:
        write = array_write(store, array)
    if not compute:
        return RasterWrite(write)
    done = run([write], scheduler, report=report)
    if report:
        print(done)
        return done
    return done[0]


def _overviews(path: Any, profile: dict, overviews: Any,
               resampling: str | None) -> tuple[Any, str | None]:
    """Check ``overviews=`` and ``overview_resampling=``; a COG's go into its
    ``profile``; a GeoTIFF's factors (or "auto"; None: none) are returned, and
    the resampling's name."""
    driver = str(path.driver if isinstance(path, DatasetWriter)
                 else profile.get("driver", "")).upper()
    if isinstance(path, DatasetWriter) or driver not in ("GTIFF", "COG"):
        raise ProfileError(f"overviews= and overview_resampling= need a GeoTIFF or COG output "
                           f"written to a path, not {driver!r}")
    text = overviews.lower() if isinstance(overviews, str) else None
    if resampling is not None:
        resampling = _resampling_name(resampling)
    if text is not None and text not in (_COG_OVERVIEWS if driver == "COG" else ("auto", "none")):
        raise ProfileError(f"overviews={overviews!r}: give 'auto', 'none' or a list of "
                           "reduction factors such as [2, 4, 8]")
    factors = None
    if overviews is not None and text is None:
        try:
            factors = [int(f) for f in overviews]
        except (TypeError, ValueError):
            factors = None
        if not factors or any(f < 2 or f != g for f, g in zip(factors, overviews)) \
                or factors != sorted(set(factors)):
            raise ProfileError(f"overviews={overviews!r}: give increasing whole reduction "
                               "factors of at least 2, such as [2, 4, 8], or 'auto'")
    if driver == "COG":  # (the COG driver's own options)
        if text is not None:
            profile["overviews"] = text
        elif factors is not None:
            if factors != [2 ** (n + 1) for n in range(len(factors))]:
                raise ProfileError(f"overviews={overviews!r}: a COG's overviews halve level "
                                   "after level: give [2, 4, 8, ...], 'auto' or 'none'")
            profile["overview_count"] = len(factors)
        if resampling is not None:
            profile["overview_resampling"] = resampling
        return None, resampling
    if resampling is not None and resampling not in encode.GTIFF_RESAMPLINGS:
        raise ProfileError(
            f"overview_resampling={resampling!r}: a GeoTIFF's overviews are made with one of "
            f"{sorted(encode.GTIFF_RESAMPLINGS)}")
    if resampling is not None and (overviews is None or text == "none"):
        raise ProfileError(f"overview_resampling={resampling!r} without overviews=: a "
                           "GeoTIFF gets overviews only when asked (overviews='auto' or "
                           "factors such as [2, 4, 8])")
    return (None if text == "none" else (factors or text)), resampling


#: The COG driver's own OVERVIEWS values.
_COG_OVERVIEWS = ("auto", "none", "ignore_existing", "force_use_existing")


def _resampling_name(name: Any) -> str:
    """GDAL's name of an overview resampling (rasterio's ``cubic_spline`` is
    GDAL's ``cubicspline``)."""
    return str(getattr(name, "name", name)).lower().replace("cubic_spline", "cubicspline")


def _check_stats(driver: str, dtype: Any, resume: bool) -> None:
    """Raise :class:`ProfileError` where ``stats=True`` cannot be written."""
    if driver.upper() not in DRIVERS:
        raise ProfileError(f"stats=True: statistics are written into GeoTIFF and COG "
                           f"outputs only (GDAL keeps them in the file), not {driver!r}")
    if np.dtype(dtype).kind == "c":
        raise ProfileError(f"stats=True needs an output of real numbers, not {np.dtype(dtype)}")
    if resume:
        raise ProfileError("stats=True cannot be combined with resume=True: the chunks "
                           "written by an earlier run are not measured again")


def check_target(path: str, driver: str) -> None:
    """Raise :class:`OutputPathError` naming ``path`` when what is there cannot be
    replaced by the output: a directory where a file goes, a file (or anything
    but a directory) where a directory store (Zarr) goes."""
    store = driver.upper() in {name.upper() for name in drivers.DIRECTORY_STORES.values()}
    if os.path.isdir(path) and not store:
        raise OutputPathError(f"output {path!r} is a directory: a {driver} output is a "
                              "file; give a file name (e.g. inside it: out.tif)")
    if store and os.path.lexists(path) and not os.path.isdir(path):
        raise OutputPathError(f"output {path!r} is a file, where a {driver} output is a "
                              "directory: remove it, or give another name")


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

