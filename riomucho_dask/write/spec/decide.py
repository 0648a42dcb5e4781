"""The output decided once: what ``to_raster`` writes, checked before computing.

:func:`decide` takes the array, the path, ``like=``, the profile and the
keywords, and makes one :class:`OutputSpec`: the profile (driver from the
extension, georeferencing, the nodata rule, creation options checked against
the driver's list), the metadata, the overview levels, the statistics, the
TIFF layout (:class:`~riomucho_dask.write.spec.layout.Encoding`) when tiles are
encoded in the tasks.  Every refusal happens here, before any run function
runs; every route (a GDAL dataset, encoded tiles, a COG, part files, a
multipart upload) reads the spec as it is.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from rasterio.io import DatasetWriter

from ... import config
from ...dataarrays import for_writing, is_dataarray
from ...errors import OutputPathError, ProfileError
from ...paths import is_remote
from .. import drivers
from ..sinks import remote
from .layout import CODECS, GTIFF_RESAMPLINGS, Encoding, for_profile
from .metadata import DRIVERS, Metadata, output_metadata
from .profile import align_chunks, build_profile

__all__ = ["OutputSpec", "decide", "output_array", "check_target", "check_directory"]


@dataclass(frozen=True)
class OutputSpec:
    """Everything about one output, decided once (see :func:`decide`).

    Attributes
    ----------
    path : str or rasterio.io.DatasetWriter
        The output as given (a path made a ``str``), or an open dataset.
    profile : dict
        The creation profile: driver, size, dtype, georeferencing, nodata,
        creation options.
    metadata : Metadata
        Descriptions, tags, units, scales, offsets, colormap.
    stats : bool
        Band statistics written into the file.
    resume : bool
        A resumable write (journaled).
    factors : list of int, "auto" or None
        A GeoTIFF's overview levels (a COG's are in its profile).
    overview_resampling : str or None
    encoding : Encoding or None
        The TIFF layout when the tiles are encoded in the tasks; None: GDAL
        writes the output through a dataset.
    masked : bool
        The array says its blocks are masked.
    """

    path: Any
    profile: dict
    metadata: Metadata
    stats: bool = False
    resume: bool = False
    factors: Any = None
    overview_resampling: str | None = None
    encoding: Encoding | None = None
    masked: bool = False

    @property
    def dataset(self) -> DatasetWriter | None:
        """The open dataset written into, if that is what was given."""
        return self.path if isinstance(self.path, DatasetWriter) else None


def output_array(array: Any, profile: dict | None, like: Any) -> tuple[da.Array, dict | None]:
    """``array`` as the ``(count, rows, cols)`` dask array written, and the profile
    with a DataArray's georeferencing (unless ``like`` gives it).

    Raises
    ------
    ProfileError
        A 4-D array (a series: reduce it over time first), or another shape.
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
    return array, profile


def decide(array: da.Array, path: Any, profile: dict | None = None, *, like: Any = None,
           lock: Any = None, resume: bool = False, descriptions: Sequence[str] | None = None,
           tags: Mapping[str, Any] | None = None,
           band_tags: Sequence[Mapping[str, Any] | None] | None = None,
           units: Sequence[str | None] | None = None,
           scales: Sequence[float] | None = None, offsets: Sequence[float] | None = None,
           colormap: Any = None, stats: bool = False, overviews: Any = None,
           overview_resampling: str | None = None,
           creation_options: Mapping[str, Any] | None = None) -> tuple[OutputSpec, da.Array]:
    """The :class:`OutputSpec` of writing ``array`` (``(count, rows, cols)``) to
    ``path``, and the array as written (cast to the output's dtype, chunks made
    whole tiles).  Arguments as :func:`~riomucho_dask.to_raster`'s.

    Raises
    ------
    ProfileError, OutputPathError
        Anything that cannot be written as asked, before anything is computed.
    """
    creation_options = dict(creation_options or {})
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
        encoding = for_profile(out_profile, factors, overview_resampling)
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
            f"with compress one of {sorted(CODECS)}, blocks multiples of 16 and the "
            "tiles encoded in the graph (riomucho_dask.encode-tiles); not these options: "
            f"{ {k: v for k, v in out_profile.items() if k not in ('crs', 'transform')} }")
    spec = OutputSpec(path, out_profile, metadata, stats=stats, resume=resume,
                      factors=factors, overview_resampling=overview_resampling,
                      encoding=encoding, masked=isinstance(array._meta, np.ma.MaskedArray))
    return spec, array

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
    if resampling is not None and resampling not in GTIFF_RESAMPLINGS:
        raise ProfileError(
            f"overview_resampling={resampling!r}: a GeoTIFF's overviews are made with one of "
            f"{sorted(GTIFF_RESAMPLINGS)}")
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
