"""Writing: ``to_raster`` and the store target it writes through."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
from dask.base import tokenize
from rasterio.io import DatasetWriter

from ..errors import ProfileError, RioMuchoDaskWarning
from ..execute.engine import RasterWrite, array_write, compute, run, tiles_write
from .graph import encode
from .journal import Journal
from .kernels.statistics import measured_blocks
from .sinks import remote
from .sinks.parts import PartSink
from .spec.decide import OutputSpec, decide, output_array
from .spec.profile import build_profile
from .store import RasterStore

__all__ = ["to_raster", "RasterStore", "RasterWrite", "compute", "build_profile", "remote"]


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
    array, profile = output_array(array, profile, like)
    spec, array = decide(
        array, path, profile, like=like, lock=lock, resume=resume, descriptions=descriptions,
        tags=tags, band_tags=band_tags, units=units, scales=scales, offsets=offsets,
        colormap=colormap, stats=stats, overviews=overviews,
        overview_resampling=overview_resampling, creation_options=creation_options)
    write = _write(spec, array, lock=lock, progress=progress)
    if not compute:
        return RasterWrite(write)
    done = run([write], scheduler, report=report)
    if report:
        print(done)
        return done
    return done[0]


def _write(spec: OutputSpec, array: da.Array, *, lock: Any, progress: bool):
    """The engine's :class:`~riomucho_dask.execute.engine.Write` of ``spec``: the
    store, and the graph of what goes into it (blocks, or encoded tiles and
    their overview levels)."""
    encoding, profile = spec.encoding, spec.profile
    journal = _journal(spec.path, array, profile, encoding) if spec.resume else None
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
        total = -(-profile["height"] // by) * -(-profile["width"] // bx)
        if skip:
            total -= sum(e.rows * e.cols for e in journal.entries.values() if e.level == 0)
    store = RasterStore(spec.path, profile, lock=lock if lock not in (None, True) else None,
                        progress=progress, total=total, encoding=encoding, journal=journal,
                        parts=sink, masked=spec.masked, metadata=spec.metadata)
    if encoding is not None:
        return tiles_write(store, arrays, skip)
    if spec.stats:  # (each block measured in its own task, on its way to GDAL)
        return tiles_write(store, [measured_blocks(array, profile.get("nodata"))])
    return array_write(store, array)


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

