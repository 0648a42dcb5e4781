"""Series: inputs with a time axis, read onto a grid window by window.

A :class:`Series` is a list of dated sources: each date (a *step*) is a file,
or a mosaic of files (the first valid pixel wins), or, for a STAC catalog
(:mod:`.stac`), one mosaic per asset (band).  It is accepted wherever a path
is, with a ``grid=``: ``open_raster(series, grid=...)`` gives a lazy
``(time, band, rows, cols)`` array, ``map_windows`` gives the run function a
``(time, band, rows, cols)`` array per window.

Reading a window reads, for each step, each of its files that reach the
window, through the same :class:`~.sources.Source` as a path or a mosaic
(a plain windowed read where the file is on the grid's pixels, GDAL's warper
where it is not): a window no file reaches costs no read.  The graph holds
one :class:`SeriesSource` (paths and metadata, never an open dataset), so
its size follows the windows, not the number of files.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from dask.base import tokenize
from rasterio.enums import Resampling
from rasterio.windows import Window

from .. import gdal_options, timings
from ..errors import InputError, InputNotFoundError, InputReadError
from .grid import Grid
from .info import raster_info
from .sources import Source, native_grid

__all__ = ["Series", "SeriesSource", "as_time"]


def as_time(value: Any, label: str = "time") -> dt.datetime:
    """A timezone-aware datetime from a datetime, a date, an ISO 8601 string or
    a numpy datetime64; naive values are taken as UTC.

    Examples
    --------
    >>> as_time("2024-05-01T10:30:00Z")
    datetime.datetime(2024, 5, 1, 10, 30, tzinfo=datetime.timezone.utc)
    >>> as_time(dt.date(2024, 5, 1))
    datetime.datetime(2024, 5, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").item()
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError as err:
            raise InputError(f"{label} {value!r} is not an ISO 8601 date or datetime") from err
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise InputError(f"{label} {value!r} is not a datetime, a date or an ISO 8601 string")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def _is_path(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike))


class _FirstBand(str):
    """A file of a series (a STAC asset) whose first band is read: a path opened
    when the graph is built."""

    __slots__ = ()

    first_band = True


@dataclass(frozen=True)
class _Step:
    """One date: for each band group, the files of its mosaic (in order).  A file is
    a path (opened, headers only, when the graph is built) or a RasterInfo known
    from metadata (never opened before compute)."""

    time: dt.datetime
    groups: tuple  # tuple (per band group) of tuples of str | RasterInfo
    label: str = ""  # how errors name the step (e.g. its items' ids)


class Series:
    """Dated sources: inputs with a time axis.

    Parameters
    ----------
    steps : iterable of (time, source)
        ``time`` a datetime (naive ones are taken as UTC), a date or an ISO
        8601 string; ``source`` a path or URL, or a list of them (a mosaic:
        the first valid pixel wins, as ``rasterio.merge``).  Steps are sorted
        by time (steps of equal times keep their order).  Every step must have
        the same band count.

    Attributes
    ----------
    times : tuple of datetime
        Timezone-aware, ascending.
    bands : tuple of str or None
        The band names (a STAC series' asset keys), or None (band numbers).

    Examples
    --------
    >>> import riomucho_dask as rmd
    >>> s = rmd.Series([("2024-05-03", "scene_b.tif"), ("2024-05-01", "scene_a.tif")])
    >>> len(s), [t.day for t in s.times]
    (2, [1, 3])
    """

    def __init__(self, steps: Iterable[tuple[Any, Any]], *, bands: Iterable[str] | None = None):
        made = []
        for position, step in enumerate(steps):
            if isinstance(step, _Step):
                made.append(step)
                continue
            try:
                time, source = step
            except (TypeError, ValueError) as err:
                raise InputError(
                    f"series step {position} is {step!r}: expected (time, path) or "
                    "(time, [paths]) ") from err
            files = list(source) if isinstance(source, (list, tuple)) else [source]
            if not files or not all(_is_path(f) for f in files):
                raise InputError(
                    f"series step {position} has source {source!r}: expected a path or URL, "
                    "or a non-empty list of them (a mosaic)")
            made.append(_Step(as_time(time, f"series step {position}'s time"),
                              (tuple(os.fspath(f) for f in files),)))
        if not made:
            raise InputError("a Series needs at least one (time, source) step")
        made.sort(key=lambda step: step.time)
        self._steps = tuple(made)
        self.bands = None if bands is None else tuple(bands)
        self._resolved: dict = {}

    @property
    def times(self) -> tuple[dt.datetime, ...]:
        return tuple(step.time for step in self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def __repr__(self) -> str:
        files = sum(len(group) for step in self._steps for group in step.groups)
        first, last = self._steps[0].time, self._steps[-1].time
        bands = f", bands={list(self.bands)}" if self.bands is not None else ""
        return (f"Series({len(self)} steps from {first.isoformat()} to {last.isoformat()}, "
                f"{files} files{bands})")

    def __dask_tokenize__(self):
        return ("Series", tuple((s.time.isoformat(), tokenize(s.groups)) for s in self._steps),
                self.bands)

    # -- what it reads ------------------------------------------------------------
    def infos(self) -> tuple:
        """Per step, per band group, the RasterInfo of each file: from metadata
        where known, else read from the file's header (once, then kept).

        Headers are read 8 at a time; a band group (a STAC asset key) whose
        metadata says no data type takes it, and its nodata where the metadata
        says none, from the header of its first file.
        """
        if "infos" not in self._resolved:
            captured = gdal_options.captured_env()  # (this thread's rasterio.Env)

            def opened(item):
                with gdal_options.env(captured):
                    info = raster_info(item)
                if getattr(item, "first_band", False):  # (a STAC asset: its first band)
                    info = dataclasses.replace(info, count=1)
                return info

            where = {}
            for s, step in enumerate(self._steps):
                for g, group in enumerate(step.groups):
                    for f, item in enumerate(group):
                        if _is_path(item):
                            where[(s, g, f)] = item
            # a group whose metadata says no dtype: its first file's header
            for g in range(len(self._steps[0].groups)):
                for step in self._steps:
                    untyped = [f for f, item in enumerate(step.groups[g])
                               if not _is_path(item) and item.dtype is None]
                    if untyped:
                        where[("dtype", g)] = _FirstBand(step.groups[g][untyped[0]].path)
                        break
            found = {}
            with ThreadPoolExecutor(max_workers=8) as pool:
                futures = {key: pool.submit(opened, item) for key, item in where.items()}
                for key, future in futures.items():
                    try:
                        found[key] = future.result()
                    except InputNotFoundError as err:
                        time = self._steps[key[0]].time.isoformat() if key[0] != "dtype" \
                            else "(data type)"
                        raise InputNotFoundError(f"series step {time}: {err}") from err
            steps = []
            for s, step in enumerate(self._steps):
                groups = []
                for g, group in enumerate(step.groups):
                    files = []
                    for f, item in enumerate(group):
                        item = found.get((s, g, f), item)
                        if item.dtype is None:
                            sample = found[("dtype", g)]
                            item = dataclasses.replace(
                                item, dtype=sample.dtype,
                                nodata=sample.nodata if item.nodata is None else item.nodata)
                        files.append(item)
                    groups.append(tuple(files))
                steps.append(tuple(groups))
            counts = {tuple(g[0].count for g in groups) for groups in steps}
            if len(counts) > 1:
                raise InputError(
                    f"the steps of a series must have one band count, not "
                    f"{sorted(sum(c) for c in counts)}")
            self._resolved["infos"] = tuple(steps)
        return self._resolved["infos"]

    def all_infos(self) -> tuple:
        """Every file's RasterInfo, step by step."""
        return tuple(info for groups in self.infos() for group in groups for info in group)

    def native_grid(self) -> Grid:
        """The union of every file's footprint, on the first file's pixels and CRS."""
        return native_grid(self.all_infos())

    def source(self, grid: Grid, *, resampling: Resampling = Resampling.nearest,
               masked: bool = False, label: str = "") -> SeriesSource:
        """What reads this series onto ``grid`` (see :class:`SeriesSource`)."""
        steps = []
        for step, groups in zip(self._steps, self.infos()):
            steps.append(tuple(
                Source(group, grid, resampling, masked,
                       f"{label or 'series'} step {step.time.isoformat()}{step.label}")
                for group in groups))
        names = self.bands
        if names is not None and len(names) != sum(s.count for s in steps[0]):
            names = None
        return SeriesSource(tuple(steps), self.times, names, grid, masked,
                            label or f"series of {len(self)} steps")


@dataclass(frozen=True, eq=False)
class SeriesSource:
    """A series read onto a grid: per step, one :class:`~.sources.Source` per band
    group; :meth:`read` gives ``(time, band, rows, cols)``."""

    steps: tuple  # tuple (per step) of tuples (per band group) of Source
    times: tuple
    bands: tuple | None
    grid: Grid
    masked: bool
    label: str
    gdal_env: gdal_options.GDALOptions = dataclasses.field(
        default_factory=gdal_options.captured_env)

    def __post_init__(self):
        dtypes = {source.dtype for step in self.steps for source in step}
        if len(dtypes) > 1:
            object.__setattr__(self, "_dtype", np.result_type(*dtypes))
        else:
            object.__setattr__(self, "_dtype", next(iter(dtypes)))

    def __eq__(self, other) -> bool:
        return isinstance(other, SeriesSource) and tokenize(self) == tokenize(other)

    def __hash__(self) -> int:
        return hash(tokenize(self))

    def __dask_tokenize__(self):
        return ("SeriesSource", tokenize(self.steps), tuple(t.isoformat() for t in self.times),
                self.bands, self.grid, self.masked, sorted(self.gdal_env.options.items()))

    @property
    def count(self) -> int:
        """Bands per step."""
        return sum(source.count for source in self.steps[0])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.steps), self.count, *self.grid.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._dtype)

    @property
    def nodata(self) -> Any:
        """The files' nodata, when they all say one (None otherwise)."""
        values = {repr(source.nodata) for step in self.steps for source in step}
        return self.steps[0][0].nodata if len(values) == 1 else None

    @property
    def infos(self) -> tuple:
        return tuple(info for step in self.steps for source in step for info in source.infos)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(info.path for info in self.infos)

    def fill_value(self) -> Any:
        if self.nodata is None:
            return np.zeros((), self.dtype)[()]
        return self.steps[0][0].fill_value(self.dtype)

    def read(self, window: Window, steps: range | None = None,
             bands: list[int] | None = None) -> np.ndarray:
        """``(time, band, rows, cols)`` of ``window`` of the grid, for the steps
        ``steps`` (default all) and band positions ``bands`` (0-based, default
        all); a masked array when the series is ``masked``.

        Raises
        ------
        InputReadError
            A file that fails to open or read, named with its step's date and
            the window.
        """
        steps = range(len(self.steps)) if steps is None else steps
        count = self.count
        bands = list(range(count)) if bands is None else list(bands)
        shape = (len(steps), len(bands), int(window.height), int(window.width))
        data = np.empty(shape, self.dtype)
        mask = np.zeros(shape, bool) if self.masked else None
        # band position -> (group, band index in that group's files)
        where = []
        for g, source in enumerate(self.steps[0]):
            where.extend((g, index) for index in range(1, source.count + 1))
        with timings.timed("read", pixels_read=int(np.prod(shape))):
            for t, step in enumerate(steps):
                for g, source in enumerate(self.steps[step]):
                    wanted = [(b, where[band][1]) for b, band in enumerate(bands)
                              if where[band][0] == g]
                    if not wanted:
                        continue
                    try:
                        got = source._read(window, [index for _, index in wanted])
                    except (InputReadError, InputNotFoundError) as err:
                        raise InputReadError(
                            f"series step {self.times[step].isoformat()} at window "
                            f"(row {int(window.row_off)}, col {int(window.col_off)}, "
                            f"{int(window.height)} x {int(window.width)}): {err}") from err
                    places = [b for b, _ in wanted]
                    data[t, places] = np.ma.getdata(got)
                    if mask is not None:
                        mask[t, places] = np.ma.getmaskarray(got)
        if mask is None:
            return data
        return np.ma.MaskedArray(data, mask=mask, fill_value=self.fill_value())

