"""The options of the commands: parsing and checking what they are given.

Callbacks (``cb_*``) turn an option's text into what :func:`~riomucho_dask.to_raster`
and :func:`~riomucho_dask.map_windows` take, or raise ``click.BadParameter``
quoting it; :func:`grid_option` and :func:`merge_global_args` combine
options that go together.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import click
import rasterio.errors
from rasterio.crs import CRS

from ..errors import RioMuchoDaskError
from ..execute import schedulers
from ..map.inputs import GRID_NAMES, names_crs
from ..map.overlap import BOUNDARIES
from ..paths import is_remote
from ..read.grid import Grid
from .context import one_line

__all__ = ["DTYPES", "NOT_CREATION_OPTIONS", "grid_option", "merge_global_args"]

#: Output dtypes rasterio can write.
DTYPES = (
    "ubyte", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
    "float32", "float64", "complex64", "complex128",
)

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):\d+$")

#: to_raster's own keywords: never creation options (``--co stats=yes`` would clash).
NOT_CREATION_OPTIONS = frozenset({
    "profile", "like", "scheduler", "lock", "compute", "progress", "resume", "report",
    "stats", "descriptions", "tags", "band_tags", "units", "scales", "offsets", "colormap",
})


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _key_values(pairs, parse) -> dict:
    """``KEY=VALUE`` texts as a dict, each value through ``parse``."""
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        out[key] = parse(text)
    return out


def cb_args(ctx, param, value) -> dict:
    """Collect ``--arg KEY=VALUE`` into a dict; values parsed as JSON when they parse."""
    return _key_values(value, _parse_value)


def cb_overviews(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``auto``, ``none`` or comma-separated reduction factors (``2,4,8``)."""
    if value is None or value.strip().lower() in ("auto", "none"):
        return value if value is None else value.strip().lower()
    try:
        return [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give auto, none or factors such as 2,4,8") from None


def cb_tags(ctx, param, value) -> dict:
    """Collect ``--tag KEY=VALUE`` into a dict of texts (kept as given)."""
    return _key_values(value, str)


def cb_global_args(ctx, param, value) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as err:
        raise click.BadParameter(f"not valid JSON: {err}") from None


def cb_scheduler(ctx, param, value) -> str:
    text = value.strip()
    local = schedulers.by_name(text)
    if local is not None:
        return local
    if "://" in text or _HOST_PORT.match(text):
        return text
    raise click.BadParameter(
        f"{value!r} is neither threads, processes, sync nor a scheduler address "
        "(tcp://host:port or host:port)"
    )


def cb_boundary(ctx, param, value) -> Any:
    text = value.strip()
    if text.lower() in BOUNDARIES:
        return text.lower()
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is none of {', '.join(BOUNDARIES)} nor a number"
        ) from None


def cb_crs(ctx, param, value) -> CRS | None:
    """A CRS rasterio can parse (``EPSG:32633``, WKT, a PROJ string)."""
    if value is None:
        return None
    try:
        return CRS.from_user_input(value)
    except (rasterio.errors.CRSError, ValueError) as err:
        raise click.BadParameter(
            f"{value!r} is not a CRS rasterio can parse (EPSG:32633, a WKT or PROJ string): "
            f"{one_line(str(err))}") from None


def _numbers(value: str, what: str, counts: tuple[int, ...]) -> list[float]:
    """Comma-separated finite numbers, as many as one of ``counts``."""
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        numbers = None
    if numbers is None or len(numbers) not in counts or not all(
            abs(number) < float("inf") for number in numbers):
        raise click.BadParameter(f"{value!r} is not {what}")
    return numbers


def cb_grid_res(ctx, param, value) -> float | tuple[float, float] | None:
    """``RES`` or ``XRES,YRES``, positive."""
    if value is None:
        return None
    numbers = _numbers(value, "RES or XRES,YRES (positive numbers)", (1, 2))
    if not all(number > 0 for number in numbers):
        raise click.BadParameter(f"{value!r}: a resolution is a positive number")
    return numbers[0] if len(numbers) == 1 else tuple(numbers)


def cb_grid_bounds(ctx, param, value) -> tuple[float, float, float, float] | None:
    """``LEFT,BOTTOM,RIGHT,TOP`` with left < right and bottom < top."""
    if value is None:
        return None
    left, bottom, right, top = _numbers(value, "LEFT,BOTTOM,RIGHT,TOP (4 numbers)", (4,))
    if left >= right or bottom >= top:
        raise click.BadParameter(f"{value!r} is empty: LEFT,BOTTOM,RIGHT,TOP needs "
                                 "LEFT < RIGHT and BOTTOM < TOP")
    return (left, bottom, right, top)


#: The options that make a grid from a CRS, a resolution and bounds (all three).
_GRID_OPTIONS = {"grid_crs": "--grid-crs", "grid_res": "--grid-res",
                 "grid_bounds": "--grid-bounds"}


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def grid_option(grid: str | None, **made: Any) -> str | Grid | None:
    """What ``--grid`` and ``--grid-crs/--grid-res/--grid-bounds[/--grid-bounds-crs]``
    say: ``grid`` as given (a path made absolute), a :class:`Grid` made by
    ``Grid.from_bounds``, or None.

    Raises
    ------
    click.UsageError
        Some of ``--grid-crs``, ``--grid-res`` and ``--grid-bounds`` but not
        all, any of them with ``--grid``, or ``--grid`` given a CRS.
    click.BadParameter
        Bounds that cannot be transformed from ``--grid-bounds-crs``.
    """
    given = [option for key, option in _GRID_OPTIONS.items() if made.get(key) is not None]
    if made.get("grid_bounds_crs") is not None:
        given.append("--grid-bounds-crs")
    if grid is not None:
        if given:
            raise click.UsageError(
                f"--grid and {given[0]} exclude each other: --grid names a grid, "
                "--grid-crs, --grid-res and --grid-bounds make one")
        if grid in GRID_NAMES or is_remote(grid):
            return grid
        if names_crs(grid):
            raise click.UsageError(
                f"--grid {grid!r} is a CRS, not a grid (a CRS has no resolution or "
                "extent): give --grid-crs, --grid-res and --grid-bounds instead")
        return os.path.abspath(grid)
    if not given:
        return None
    missing = [option for key, option in _GRID_OPTIONS.items() if made.get(key) is None]
    if missing:
        raise click.UsageError(
            f"{_and(given)} also need{'s' if len(given) == 1 else ''} {_and(missing)}: "
            "--grid-crs, --grid-res and --grid-bounds go together")
    try:
        return Grid.from_bounds(made["grid_bounds"], made["grid_crs"], made["grid_res"],
                                bounds_crs=made.get("grid_bounds_crs"))
    except RioMuchoDaskError as err:  # (what the callbacks let through: the transform)
        raise click.BadParameter(str(err), param_hint="'--grid-bounds'") from err


def merge_global_args(global_args: Any, args: dict) -> Any:
    """``--arg`` values merged over ``--global-args``.

    Raises
    ------
    click.BadParameter
        ``--arg`` given while ``--global-args`` is not a JSON object.

    Examples
    --------
    >>> merge_global_args({"a": 1, "b": 2}, {"b": 3})
    {'a': 1, 'b': 3}
    >>> merge_global_args(None, {})
    """
    if not args:
        return global_args
    if global_args is None:
        return dict(args)
    if not isinstance(global_args, dict):
        raise click.BadParameter(
            f"--arg needs --global-args to be a JSON object, not {type(global_args).__name__}",
            param_hint="'--global-args'",
        )
    return {**global_args, **args}
