"""The grid: the CRS, transform and size that inputs are read onto.

A :class:`Grid` is a small immutable value.  ``map_windows(..., grid=...)``
makes one from ``"first"``, a raster path, a DataArray, ``"union"`` or
``"intersection"`` of the inputs' footprints, or takes one as it is (one made
by :meth:`Grid.from_bounds` from a CRS, a resolution and bounds, say); every
input is then read onto it, window by window (see :mod:`.sources`).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import transform_bounds

from ..errors import InputError
from ..paths import is_remote
from .info import raster_info


def apply(transform: Affine, other: Any) -> Any:
    """``transform`` applied to an (x, y) pair, or composed with another Affine:
    ``@`` where affine has it (affine 3 deprecates ``*`` for this), ``*`` before.

    Examples
    --------
    >>> apply(Affine.translation(10, 20), (1, 2))
    (11.0, 22.0)
    """
    if hasattr(Affine, "__matmul__"):
        return transform @ other
    return transform * other

__all__ = ["Grid", "union", "intersection", "resolve", "names_crs", "GRID_NAMES"]

#: The grids named by a word rather than given.
GRID_NAMES = ("first", "union", "intersection")

#: What an error about a CRS given as a grid suggests.
FROM_BOUNDS = ("riomucho_dask.Grid.from_bounds(bounds, crs, resolution) makes one from a "
               "CRS, a resolution and bounds (on the command line: --grid-crs, --grid-res "
               "and --grid-bounds)")

#: How far (in pixels) an offset or a pixel size may be from a whole one and
#: still count as the same pixel grid (floating-point noise of transforms).
_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, transform, width and height (no pixels).

    Parameters
    ----------
    crs : rasterio.crs.CRS, str or None
        Anything ``rasterio.crs.CRS.from_user_input`` takes (``"EPSG:32633"``).
    transform : affine.Affine
        The transform of the grid's top-left pixel.
    width, height : int
        Size in pixels.

    Examples
    --------
    >>> from affine import Affine
    >>> g = Grid("EPSG:32631", Affine(10, 0, 500000, 0, -10, 4200000), width=131, height=97)
    >>> g.res, g.bounds
    ((10.0, 10.0), (500000.0, 4199030.0, 501310.0, 4200000.0))
    >>> Grid.from_raster("scene_a.tif") == g
    True
    """

    crs: Any
    transform: Affine
    width: int
    height: int

    def __post_init__(self):
        crs = self.crs
        if crs is not None and not isinstance(crs, CRS):
            crs = CRS.from_user_input(crs)
        object.__setattr__(self, "crs", crs)
        object.__setattr__(self, "transform", Affine(*tuple(self.transform)[:6]))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        if self.width < 1 or self.height < 1:
            raise InputError(f"a grid needs a width and height of at least 1, not "
                             f"{self.width} x {self.height}")

    def __dask_tokenize__(self):
        return ("Grid", None if self.crs is None else self.crs.to_wkt(),
                tuple(self.transform)[:6], self.width, self.height)

    def __repr__(self) -> str:
        crs = None if self.crs is None else (self.crs.to_string() or "custom CRS")
        return (f"Grid(crs={crs!r}, transform={tuple(self.transform)[:6]}, "
                f"width={self.width}, height={self.height})")

    @classmethod
    def from_raster(cls, path: str | os.PathLike) -> Grid:
        """The grid of a raster file (its CRS, transform and size)."""
        return cls.from_info(raster_info(path))

    @classmethod
    def from_bounds(cls, bounds: Sequence[float], crs: Any,
                    resolution: float | tuple[float, float], *,
                    bounds_crs: Any = None) -> Grid:
        """The grid of ``crs`` and ``resolution`` that covers ``bounds``.

        Its edges are whole multiples of the resolution, snapped outward from
        ``bounds``, so every grid of one CRS and resolution lines up with every
        other (an input already on those pixels is read as it is, without
        resampling).

        Parameters
        ----------
        bounds : sequence of 4 numbers
            ``(left, bottom, right, top)`` in ``bounds_crs``.
        crs : rasterio.crs.CRS, str or int
            The grid's CRS: anything ``rasterio.crs.CRS.from_user_input``
            takes (``"EPSG:32633"``, ``32633``, WKT, a PROJ string).
        resolution : float or (float, float)
            Pixel size in ``crs``'s units: one for both axes, or ``(xres, yres)``;
            positive.
        bounds_crs : rasterio.crs.CRS, str or int, optional
            The CRS of ``bounds``; default ``crs``.  Otherwise ``bounds`` are
            transformed into ``crs`` first (densified along the edges, as
            ``rasterio.warp.transform_bounds(..., densify_pts=21)``), and the grid
            covers the transformed box.

        Returns
        -------
        Grid
            North up, left = floor(left / xres) * xres, right =
            ceil(right / xres) * xres, and likewise bottom and top with yres
            (within a millionth of a pixel, floating-point noise is not a pixel
            more).

        Raises
        ------
        InputError
            ``bounds`` not 4 finite numbers, or left >= right or bottom >= top;
            ``resolution`` not a positive number or pair of them; ``crs`` or
            ``bounds_crs`` that rasterio cannot parse.  The message names the
            argument and quotes its value.

        Examples
        --------
        >>> g = Grid.from_bounds((500003, 4199035, 501305, 4199999), "EPSG:32631", 10)
        >>> g.bounds, g.width, g.height
        ((500000.0, 4199030.0, 501310.0, 4200000.0), 131, 97)
        >>> Grid.from_raster("scene_a.tif") == g
        True
        >>> Grid.from_bounds((100.0000000001, 0, 200, 50), "EPSG:32631", (10, 25)).bounds
        (100.0, 0.0, 200.0, 50.0)
        >>> utm = Grid.from_bounds((2.99, 37.9, 3.01, 37.91), "EPSG:32631", 10,
        ...                        bounds_crs="EPSG:4326")
        >>> utm.bounds, utm.width, utm.height
        ((499120.0, 4194710.0, 500880.0, 4195830.0), 176, 112)
        >>> Grid.from_bounds((0, 0, 10, 10), "EPSG:32631", 0)
        Traceback (most recent call last):
        ...
        riomucho_dask.errors.InputError: resolution must be a positive number or a pair \
(xres, yres) of them, not 0
        """
        crs = _parse_crs(crs, "crs")
        bounds_crs = crs if bounds_crs is None else _parse_crs(bounds_crs, "bounds_crs")
        left, bottom, right, top = _parse_bounds(bounds)
        xres, yres = _parse_resolution(resolution)
        if bounds_crs != crs:
            try:
                box = transform_bounds(bounds_crs, crs, left, bottom, right, top,
                                       densify_pts=21)
            except Exception as err:  # (rasterio's CRSError, GDAL's own)
                raise InputError(f"bounds {tuple(bounds)!r} in {_crs_name(bounds_crs)} "
                                 f"cannot be transformed into {_crs_name(crs)}: {err}"
                                 ) from err
            if not all(math.isfinite(v) for v in box) or box[0] >= box[2] or box[1] >= box[3]:
                raise InputError(f"bounds {tuple(bounds)!r} in {_crs_name(bounds_crs)} are "
                                 f"{box} in {_crs_name(crs)}: not a box there")
            left, bottom, right, top = box
        col0, col1 = _snap_outward(left / xres, right / xres)
        row0, row1 = _snap_outward(bottom / yres, top / yres)
        return cls(crs, Affine(xres, 0.0, col0 * xres, 0.0, -yres, row1 * yres),
                   col1 - col0, row1 - row0)

    @classmethod
    def from_info(cls, info) -> Grid:
        """The grid of a :class:`~riomucho_dask.read.RasterInfo` (no I/O)."""
        return cls(info.crs, info.transform, info.width, info.height)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size ``(x, y)``, positive, as rasterio's ``dataset.res``."""
        t = self.transform
        return (math.hypot(t.a, t.d), math.hypot(t.b, t.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the grid's CRS."""
        t = self.transform
        xs = [t.c, t.c + t.a * self.width, t.c + t.b * self.height,
              t.c + t.a * self.width + t.b * self.height]
        ys = [t.f, t.f + t.d * self.width, t.f + t.e * self.height,
              t.f + t.d * self.width + t.e * self.height]
        return (min(xs), min(ys), max(xs), max(ys))

    def differences(self, other: Grid) -> list[str]:
        """What differs between two grids, in words (empty when they are the same).

        Examples
        --------
        >>> from affine import Affine
        >>> a = Grid("EPSG:32631", Affine(10, 0, 0, 0, -10, 0), 10, 10)
        >>> b = Grid("EPSG:4326", Affine(20, 0, 0, 0, -20, 0), 10, 5)
        >>> a.differences(b)
        ['CRS EPSG:4326, not EPSG:32631', 'resolution (20.0, 20.0), not (10.0, 10.0)', \
'size 5 x 10 (height x width), not 10 x 10']
        """
        said = []
        if self.crs != other.crs:
            said.append(f"CRS {_crs_name(other.crs)}, not {_crs_name(self.crs)}")
        if not _close(self.res, other.res):
            said.append(f"resolution {other.res}, not {self.res}")
        elif not other.transform.almost_equals(self.transform):
            said.append(f"transform {tuple(other.transform)[:6]}, not "
                        f"{tuple(self.transform)[:6]}")
        if other.shape != self.shape:
            said.append(f"size {other.height} x {other.width} (height x width), not "
                        f"{self.height} x {self.width}")
        return said

    def offset_in(self, other: Grid) -> tuple[int, int] | None:
        """``(row, col)`` of this grid's first pixel in ``other``'s pixels, when the
        two share CRS, pixel size and pixel edges (no resampling needed to read
        ``other`` onto this grid); None otherwise.

        Examples
        --------
        >>> from affine import Affine
        >>> a = Grid(None, Affine(10, 0, 100, 0, -10, 500), 4, 4)
        >>> a.offset_in(Grid(None, Affine(10, 0, 80, 0, -10, 530), 9, 9))
        (3, 2)
        >>> a.offset_in(Grid(None, Affine(10, 0, 85, 0, -10, 530), 9, 9)) is None
        True
        """
        mine, theirs = self.transform, other.transform
        if self.crs != other.crs or not _close((mine.a, mine.b, mine.d, mine.e),
                                               (theirs.a, theirs.b, theirs.d, theirs.e)):
            return None
        col, row = apply(~theirs, (mine.c, mine.f))
        if abs(col - round(col)) > _TOLERANCE or abs(row - round(row)) > _TOLERANCE:
            return None
        return (int(round(row)), int(round(col)))

    def footprint(self, crs: Any) -> tuple[float, float, float, float]:
        """The grid's bounds in ``crs`` (densified, as GDAL's warper would see them)."""
        if crs == self.crs or crs is None or self.crs is None:
            return self.bounds
        return transform_bounds(self.crs, crs, *self.bounds, densify_pts=21)

    def covering(self, bounds: tuple[float, float, float, float], *,
                 outward: bool = True) -> Grid:
        """The grid on this one's pixel edges over ``bounds`` (same CRS and pixel
        size): the pixels that touch ``bounds`` (``outward``), or only those
        wholly inside them."""
        t = self.transform
        if t.b or t.d:
            raise InputError("grid='union' and 'intersection' need a first input without "
                             "rotation")
        left, bottom, right, top = bounds
        cols = sorted(((left - t.c) / t.a, (right - t.c) / t.a))
        rows = sorted(((top - t.f) / t.e, (bottom - t.f) / t.e))
        low, high = (math.floor, math.ceil) if outward else (math.ceil, math.floor)
        slack = _TOLERANCE if outward else -_TOLERANCE
        col0, col1 = low(cols[0] + slack), high(cols[1] - slack)
        row0, row1 = low(rows[0] + slack), high(rows[1] - slack)
        if col1 <= col0 or row1 <= row0:
            raise InputError(f"the grid covering {bounds} would be empty")
        return Grid(self.crs, apply(t, Affine.translation(col0, row0)), col1 - col0,
                    row1 - row0)


def _snap_outward(low: float, high: float) -> tuple[int, int]:
    """Whole pixels ``(first, end)`` covering ``low`` to ``high`` (in pixels), at
    least one; within _TOLERANCE of a whole one, a value counts as that one."""
    first = math.floor(low + _TOLERANCE)
    end = math.ceil(high - _TOLERANCE)
    return first, max(end, first + 1)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _parse_crs(value: Any, name: str) -> CRS:
    if isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as err:
        raise InputError(f"{name} {value!r} is not a CRS rasterio can parse: {err}") from err


def _parse_bounds(bounds: Any) -> tuple[float, float, float, float]:
    try:
        values = tuple(bounds)
    except TypeError:
        values = None
    if (values is None or len(values) != 4 or not all(_is_number(v) for v in values)
            or not all(math.isfinite(v) for v in values)):
        raise InputError(f"bounds must be 4 finite numbers (left, bottom, right, top), "
                         f"not {bounds!r}")
    left, bottom, right, top = map(float, values)
    if left >= right or bottom >= top:
        raise InputError(f"bounds {values!r} are empty: (left, bottom, right, top) needs "
                         "left < right and bottom < top")
    return left, bottom, right, top


def _parse_resolution(resolution: Any) -> tuple[float, float]:
    values = (resolution, resolution) if _is_number(resolution) else resolution
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if (values is None or len(values) != 2 or not all(_is_number(v) for v in values)
            or not all(math.isfinite(v) and v > 0 for v in values)):
        raise InputError(f"resolution must be a positive number or a pair (xres, yres) "
                         f"of them, not {resolution!r}")
    return float(values[0]), float(values[1])


def _close(a, b) -> bool:
    return all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a, b))


def _crs_name(crs: Any) -> str:
    if crs is None:
        return "none"
    return crs.to_string() or "a custom CRS"


def union(first: Grid, grids: list[Grid]) -> Grid:
    """The grid covering every grid's footprint, on ``first``'s pixels and CRS."""
    boxes = [g.footprint(first.crs) for g in grids]
    return first.covering((min(b[0] for b in boxes), min(b[1] for b in boxes),
                           max(b[2] for b in boxes), max(b[3] for b in boxes)))


def intersection(first: Grid, grids: list[Grid]) -> Grid:
    """The grid covering the footprint all grids share, on ``first``'s pixels and CRS.

    Raises
    ------
    InputError
        When the footprints do not all overlap.
    """
    boxes = [g.footprint(first.crs) for g in grids]
    box = (max(b[0] for b in boxes), max(b[1] for b in boxes),
           min(b[2] for b in boxes), min(b[3] for b in boxes))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise InputError("grid='intersection': the inputs' footprints do not overlap")
    return first.covering(box, outward=False)


def names_crs(text: str) -> bool:
    """``text`` is no file or URL but a CRS (``"EPSG:3857"``): a path that
    exists stays a path, whatever it looks like."""
    if is_remote(text) or os.path.exists(text):
        return False
    try:
        CRS.from_user_input(text)
    except (CRSError, ValueError, TypeError):
        return False
    return True


def resolve(grid: Any, first: Grid | None, grids: list[Grid], *,
            first_label: str = "the first input") -> Grid:
    """The grid ``grid`` names: a :class:`Grid` as it is, a georeferenced
    DataArray's, a raster's, or ``"first"`` / ``"union"`` / ``"intersection"``
    of ``grids`` on ``first``'s pixels: the one rule of ``map_windows`` and
    ``open_raster``.

    Raises
    ------
    InputError
        Anything else: a CRS alone, or a tuple such as ``("EPSG:3857", 100)``,
        is not a grid (the error points at :meth:`Grid.from_bounds`); a named
        grid without a georeferenced first input.
    """
    if isinstance(grid, Grid):
        return grid
    if hasattr(grid, "rio") and hasattr(grid, "sizes"):  # a DataArray (rioxarray)
        return Grid(grid.rio.crs, grid.rio.transform(), grid.sizes["x"], grid.sizes["y"])
    if isinstance(grid, str) and grid in GRID_NAMES:
        if first is None:
            raise InputError(
                f"grid={grid!r} needs a first input with georeferencing; "
                f"{first_label} has none (give grid= a raster path or a Grid)")
        if grid == "first":
            return first
        return (union if grid == "union" else intersection)(first, grids)
    if isinstance(grid, str) and names_crs(grid):
        raise InputError(
            f"grid={grid!r} is a CRS, not a grid (a CRS has no resolution or extent): "
            f"{FROM_BOUNDS}")
    if isinstance(grid, (str, os.PathLike)):
        return Grid.from_raster(grid)
    if isinstance(grid, (tuple, list)):
        raise InputError(
            f"grid={grid!r}: grid takes one grid, not a {type(grid).__name__}; "
            f"{FROM_BOUNDS}")
    raise InputError(
        f"grid must be {', '.join(map(repr, GRID_NAMES))}, a raster path, a "
        f"georeferenced DataArray or a riomucho_dask.Grid, not {grid!r}")
