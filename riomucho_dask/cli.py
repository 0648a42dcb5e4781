"""The command line: ``riomucho-dask`` and ``rio mucho``.

One click group, :func:`mucho`, with three sub-commands:

``run MODULE:FUNCTION INPUT... OUTPUT``
    Runs a rio-mucho run function over the inputs' windows through
    :func:`~riomucho_dask.map_windows` and writes the result with
    :func:`~riomucho_dask.to_raster`.
``info INPUT...``
    Describes the inputs (size, bands, dtype, CRS, block grid) and says
    whether they line up.
``zonal RASTER SHAPES``
    Statistics of the raster's pixels under each shape
    (:func:`~riomucho_dask.zonal_stats`), as JSON or CSV.

The group is installed twice: as the ``riomucho-dask`` console script
(:func:`main`) and as a rasterio CLI plugin, ``rio mucho`` (entry point
group ``rasterio.rio_plugins``).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib
import importlib.util
import json
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import click
import cloudpickle
import dask
import rasterio.errors
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.rio.options import creation_options, output_opt, overwrite_opt

from . import __version__
from .errors import (
    InputMismatchError,
    OutputDtypeError,
    OutputShapeError,
    RioMuchoDaskError,
    WindowError,
    is_gdal_error,
)
from .execute import schedulers
from .map import MODES, map_windows
from .map.inputs import GRID_NAMES, check_alignment, names_crs, resolve_inputs
from .map.overlap import BOUNDARIES
from .nodata import nodata_fits
from .paths import is_remote
from .read import raster_info
from .read.grid import Grid
from .read.stac import stac_series
from .vector import zonal_stats
from .windows import block_chunks, window_chunks
from .write import remote, to_raster

__all__ = ["mucho", "main", "load_function"]

#: Errors turned into a one-line ``Error: ...`` message (exit code 1).
CLEAN_ERRORS: tuple[type[BaseException], ...] = (
    RioMuchoDaskError,
    rasterio.errors.RasterioError,
    rasterio.errors.DriverRegistrationError,
    rasterio.errors.CRSError,
)


def _clean(err: BaseException) -> bool:
    """Whether ``err`` becomes a one-line message: ours, rasterio's, or GDAL's
    (``CPLE_*``, told by their classes: :func:`~riomucho_dask.errors.is_gdal_error`)."""
    return isinstance(err, CLEAN_ERRORS) or is_gdal_error(err)

#: Output dtypes rasterio can write.
DTYPES = (
    "ubyte", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
    "float32", "float64", "complex64", "complex128",
)

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):\d+$")

# Set on modules loaded from a file, so a later load of a file with the same
# name may replace them (and only them) in sys.modules.
_FILE_MARK = "__riomucho_dask_file__"


# -- helpers ----------------------------------------------------------------


def one_line(message: str) -> str:
    """``message`` on one line: non-blank lines stripped and joined by ``"; "``.

    Examples
    --------
    >>> one_line("first\\n  second\\n")
    'first; second'
    """
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _ensure_cwd_on_path() -> None:
    # As ``python -m`` does: MODULE may live in the working directory, which
    # a console script does not put on sys.path.  Spawned worker processes
    # inherit sys.path, so they find it too.
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def _prepend_path(directory: str) -> None:
    if directory in sys.path:
        sys.path.remove(directory)
    sys.path.insert(0, directory)


def _is_path(module: str) -> bool:
    return module.endswith(".py") or "/" in module or os.sep in module


def _load_file(path: str):
    """Import the Python file ``path`` and return ``(module, importable)``.

    The module is named after the file (``funcs.py`` -> ``funcs``) and its
    directory is put first on ``sys.path``, so worker processes re-import it
    by that name.  When the name is taken by another module (``json.py``) or
    is not a module name (``my.funcs.py``), it gets a private name and its
    functions are pickled by value instead; ``importable`` is then False.
    """
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise click.ClickException(f"module file {path!r} does not exist")
    directory = os.path.dirname(path)
    name = os.path.splitext(os.path.basename(path))[0]
    existing = sys.modules.get(name)
    importable = name.isidentifier() and (
        existing is None or getattr(existing, _FILE_MARK, None) is not None
    )
    if not importable:
        digest = hashlib.sha1(path.encode()).hexdigest()[:12]
        name = f"_riomucho_dask_user_{re.sub(r'[^0-9A-Za-z_]', '_', name)}_{digest}"
        existing = sys.modules.get(name)
    _prepend_path(directory)  # also lets the module import its neighbours
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise click.ClickException(f"cannot import {path!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    setattr(module, _FILE_MARK, path)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        if existing is not None:
            sys.modules[name] = existing
        else:
            sys.modules.pop(name, None)
        raise click.ClickException(
            one_line(f"cannot import {path!r}: {type(err).__name__}: {err}")
        ) from err
    if not importable:
        cloudpickle.register_pickle_by_value(module)
    return module, importable


def _import_module(name: str):
    _ensure_cwd_on_path()
    try:
        return importlib.import_module(name)
    except Exception as err:
        raise click.ClickException(
            one_line(f"cannot import module {name!r}: {type(err).__name__}: {err}")
        ) from err


def load_function(spec: str) -> tuple[Callable, str | None]:
    """Resolve ``MODULE:FUNCTION`` to the function.

    Parameters
    ----------
    spec : str
        ``package.module:function`` or ``path/to/file.py:function``;
        ``FUNCTION`` may be dotted (``module:Class.method``).

    Returns
    -------
    function : callable
    upload : str or None
        The module's file when it was loaded from a path under its own name
        (a dask.distributed cluster can be sent it), else None.

    Raises
    ------
    click.ClickException
        The spec is malformed, the module cannot be imported, or it has no
        such callable.
    """
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute or _is_path(attribute):
        raise click.ClickException(
            f"{spec!r} is not MODULE:FUNCTION (a dotted module name or a .py file, a colon, "
            "and the function's name)"
        )
    upload = None
    if _is_path(module_name):
        module, importable = _load_file(module_name)
        where = repr(os.path.abspath(module_name))
        if importable:
            upload = module.__file__
    else:
        module = _import_module(module_name)
        where = f"module {module_name!r}"
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise click.ClickException(f"{where} has no attribute {attribute!r}") from None
    if not callable(obj):
        raise click.ClickException(
            f"{where}:{attribute} is a {type(obj).__name__}, not a function"
        )
    return obj, upload


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


def _cb_args(ctx, param, value) -> dict:
    """Collect ``--arg KEY=VALUE`` into a dict; values parsed as JSON when they parse."""
    return _key_values(value, _parse_value)


def _cb_overviews(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``auto``, ``none`` or comma-separated reduction factors (``2,4,8``)."""
    if value is None or value.strip().lower() in ("auto", "none"):
        return value if value is None else value.strip().lower()
    try:
        return [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give auto, none or factors such as 2,4,8") from None


def _cb_tags(ctx, param, value) -> dict:
    """Collect ``--tag KEY=VALUE`` into a dict of texts (kept as given)."""
    return _key_values(value, str)


def _cb_global_args(ctx, param, value) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as err:
        raise click.BadParameter(f"not valid JSON: {err}") from None


def _cb_scheduler(ctx, param, value) -> str:
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


def _cb_boundary(ctx, param, value) -> Any:
    text = value.strip()
    if text.lower() in BOUNDARIES:
        return text.lower()
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is none of {', '.join(BOUNDARIES)} nor a number"
        ) from None


def _cb_crs(ctx, param, value) -> CRS | None:
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


def _cb_grid_res(ctx, param, value) -> float | tuple[float, float] | None:
    """``RES`` or ``XRES,YRES``, positive."""
    if value is None:
        return None
    numbers = _numbers(value, "RES or XRES,YRES (positive numbers)", (1, 2))
    if not all(number > 0 for number in numbers):
        raise click.BadParameter(f"{value!r}: a resolution is a positive number")
    return numbers[0] if len(numbers) == 1 else tuple(numbers)


def _cb_grid_bounds(ctx, param, value) -> tuple[float, float, float, float] | None:
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


def _verbosity(ctx: click.Context) -> int:
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    return int(obj.get("mucho_verbosity", 0)) + int(obj.get("verbosity", 0) or 0)


def _clean_error(ctx: click.Context, err: BaseException) -> click.ClickException:
    """A one-line ``click.ClickException`` for ``err`` (its traceback with -v)."""
    message = str(err) or type(err).__name__
    if isinstance(err, InputMismatchError):
        message = f"inputs do not line up: {message}"
    elif isinstance(err, OutputDtypeError):
        message += " (on the command line: --dtype)"
    elif isinstance(err, OutputShapeError):
        message += " (on the command line, --count sets the band count)"
    if _verbosity(ctx) > 0:
        details = err.formatted_traceback if isinstance(err, WindowError) else None
        if details:
            click.echo(details.rstrip(), err=True)
    return click.ClickException(one_line(message))


@contextlib.contextmanager
def _rasterio_env(ctx: click.Context):
    # Under ``rio``, the main group leaves a rasterio.Env (AWS session, CPL_DEBUG)
    # in ctx.obj["env"] for sub-commands to enter, as rasterio's own do.
    env = ctx.obj.get("env") if isinstance(ctx.obj, dict) else None
    with env if env is not None else contextlib.nullcontext():
        yield


# -- the group ----------------------------------------------------------------


#: to_raster's own keywords: never creation options (``--co stats=yes`` would clash).
_NOT_CREATION_OPTIONS = frozenset({
    "profile", "like", "scheduler", "lock", "compute", "progress", "resume", "report",
    "stats", "descriptions", "tags", "band_tags", "units", "scales", "offsets", "colormap",
})


@click.group(name="mucho")
@click.version_option(__version__, "--version", prog_name="riomucho_dask",
                      message="%(prog)s %(version)s")
@click.option("-v", "--verbose", count=True,
              help="On a run function's error, also print its traceback.")
@click.pass_context
def mucho(ctx: click.Context, verbose: int) -> None:
    """Run rio-mucho style functions over big rasters, lazily, on Dask."""
    ctx.ensure_object(dict)
    ctx.obj["mucho_verbosity"] = verbose


@mucho.command(short_help="Run a function over the windows of rasters.")
@click.argument("function", metavar="MODULE:FUNCTION")
@click.argument("files", nargs=-1, required=True, metavar="INPUT... [OUTPUT]")
@click.option("--mode", type=click.Choice(MODES), default="simple_read", show_default=True,
              help="What the function gets as data: one array per input (simple_read), one "
                   "array of every band (array_read) or the open datasets (manual_read).")
@click.option("--global-args", "global_args", metavar="JSON", callback=_cb_global_args,
              help="The function's global_args (4th argument), as JSON.  Default: {}.")
@click.option("--arg", "args", metavar="KEY=VALUE", multiple=True, callback=_cb_args,
              help="One global_args item; VALUE is parsed as JSON when it parses, else kept "
                   "as a string.  Merged over --global-args.  Repeatable.")
@click.option("--count", type=click.IntRange(min=1), default=None,
              help="Bands the function returns.  Default: the first input's band count.")
@click.option("-t", "--dtype", type=click.Choice(DTYPES), default=None,
              help="Output data type.  Default: the first input's (and a float result for "
                   "an integer input is then an error, not silently truncated).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Threads or processes to run on (threads and processes schedulers).  "
                   "Default: one per CPU.")
@click.option("--scheduler", default="threads", show_default=True, callback=_cb_scheduler,
              metavar="threads|processes|sync|ADDRESS",
              help="Dask scheduler, or the address of a dask.distributed scheduler "
                   "(tcp://host:8786).")
@creation_options
@click.option("-f", "--format", "--driver", "driver", metavar="NAME", default=None,
              help="Output format driver.  Default: from OUTPUT's extension (.tif: GTiff), "
                   "else GTiff.")
@click.option("--nodata", metavar="NUMBER|nan", default=None,
              help="The output's nodata.  Default: the first input's (when it fits the "
                   "output's dtype).")
@click.option("--description", "descriptions", metavar="TEXT", multiple=True,
              help="A band's description, band 1 first: one per band.  Repeatable.  "
                   "Default: the first input's (without --grid), when it has as many bands.")
@click.option("--tag", "tags", metavar="KEY=VALUE", multiple=True, callback=_cb_tags,
              help="A tag of the output (GeoTIFF and COG).  Repeatable.")
@click.option("--stats", is_flag=True, default=False,
              help="Write each band's statistics (minimum, maximum, mean, standard "
                   "deviation, valid percent) into OUTPUT as GDAL's STATISTICS_* metadata, "
                   "computed while writing (GeoTIFF and COG).")
@click.option("--overviews", metavar="auto|none|2,4,8", default=None, callback=_cb_overviews,
              help="Internal overviews of a tiled GeoTIFF (--co tiled=true), made while "
                   "writing as GDAL's BuildOverviews makes them: 'auto' (2, 4, 8... until a "
                   "level fits in one tile) or reduction factors.  A COG has 'auto' by default.")
@click.option("--overview-resampling", "overview_resampling", default=None,
              type=click.Choice(["nearest", "average", "mode", "bilinear", "cubic",
                                 "cubicspline", "lanczos"], case_sensitive=False),
              help="How overview pixels are made (default nearest; average for a COG of "
                   "real numbers); as to_raster's overview_resampling=.")
@click.option("--grid", "grid", metavar="PATH|first|union|intersection", default=None,
              help="Read every input onto this grid: a raster's, the first input's, or the "
                   "union or intersection of the inputs' footprints (or one made by "
                   "--grid-crs, --grid-res and --grid-bounds).  Default: the inputs "
                   "must line up.")
@click.option("--grid-crs", "grid_crs", metavar="CRS", default=None, callback=_cb_crs,
              help="With --grid-res and --grid-bounds, read every input onto the grid of "
                   "this CRS (EPSG:32633, WKT, a PROJ string) that covers the bounds, its "
                   "edges snapped outward to whole multiples of the resolution "
                   "(riomucho_dask.Grid.from_bounds).  Not with --grid.")
@click.option("--grid-res", "grid_res", metavar="RES|XRES,YRES", default=None,
              callback=_cb_grid_res,
              help="The pixel size of --grid-crs's grid, in its units.")
@click.option("--grid-bounds", "grid_bounds", metavar="LEFT,BOTTOM,RIGHT,TOP", default=None,
              callback=_cb_grid_bounds,
              help="The area --grid-crs's grid covers, in --grid-bounds-crs.")
@click.option("--grid-bounds-crs", "grid_bounds_crs", metavar="CRS", default=None,
              callback=_cb_crs,
              help="The CRS of --grid-bounds (EPSG:4326 for longitudes and latitudes).  "
                   "Default: --grid-crs.")
@click.option("--resampling", type=click.Choice([r.name for r in Resampling if r.value < 1000]),
              default=None, help="With --grid (or --grid-crs), how inputs on other "
                                 "pixels are resampled (default nearest).")
@click.option("--masked", is_flag=True, default=False,
              help="The function gets numpy masked arrays (nodata, internal masks, alpha).")
@click.option("--stac", "stac", metavar="ITEMS.json", default=None,
              type=click.Path(exists=True, dir_okay=False),
              help="A STAC ItemCollection (or FeatureCollection) file: its items, one "
                   "band per --assets key, are the first input, a series the function gets "
                   "as (time, band, rows, cols).  Needs a grid (--grid or --grid-crs...).")
@click.option("--assets", "assets", metavar="KEY,KEY...", default=None,
              help="With --stac, the asset keys, in band order (each asset's first band).")
@click.option("--groupby", "groupby", default="solar_day", show_default=True,
              type=click.Choice(["solar_day", "time", "none"]),
              help="With --stac, which items make one date: those of one local solar day, "
                   "of one datetime, or each item its own.")
@click.option("--progress/--no-progress", default=None,
              help="Draw a progress bar on stderr.  Default: on when stderr is a terminal.")
@click.option("--overlap", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pixels of neighbourhood around each window the function sees "
                   "(for slope, hillshade, focal filters).")
@click.option("--boundary", default="nodata", show_default=True, callback=_cb_boundary,
              metavar="nodata|reflect|edge|NUMBER",
              help="With --overlap, what the function sees outside the raster.")
@click.option("--resume", is_flag=True, default=False,
              help="Make the write resumable: when interrupted, the tiles written so far stay "
                   "beside OUTPUT (hidden .NAME.resume-* files), and the same command with "
                   "--resume computes only the rest.  A tiled GeoTIFF or a COG.")
@click.option("--report", is_flag=True, default=False,
              help="Print on stderr where the time went: reading, the function, encoding, "
                   "waiting for the writer (per worker), writing and finishing.")
@output_opt
@overwrite_opt
@click.pass_context
def run(ctx: click.Context, function: str, files: tuple[str, ...], mode: str, global_args: Any,
        args: dict, count: int | None, dtype: str | None, workers: int | None, scheduler: str,
        creation_options: dict, driver: str | None, nodata: str | None,
        descriptions: tuple[str, ...], tags: dict, stats: bool, overviews: Any,
        overview_resampling: str | None, grid: str | None, grid_crs: CRS | None,
        grid_res: Any, grid_bounds: Any, grid_bounds_crs: CRS | None, stac: str | None,
        assets: str | None, groupby: str,
        resampling: str | None, masked: bool, progress: bool | None, overlap: int,
        boundary: Any, resume: bool, report: bool, output: str | None, overwrite: bool) -> None:
    """Run MODULE:FUNCTION over the windows of INPUT... and write OUTPUT.

    FUNCTION has rio-mucho's signature, f(data, window, ij, global_args),
    and returns an array of shape (count, window.height, window.width).
    MODULE is a dotted module name (found from the working directory too) or
    a path to a .py file.  Windows are the first input's blocks (strips
    grouped into windows of at least 256 rows); the output has its
    georeferencing and nodata (the grid's with --grid or --grid-crs), and its
    layout when both are GeoTIFFs.

    \b
    Example:
        riomucho-dask run ndvi.py:ndvi rgb.tif nir.tif ndvi.tif \\
            --count 1 --dtype float32 --co compress=deflate

    \b
    On a 10 m UTM grid over a box of longitudes and latitudes:
        riomucho-dask run ndvi.py:ndvi rgb.tif nir.tif ndvi.tif \\
            --count 1 --dtype float32 --grid-crs EPSG:32631 --grid-res 10 \\
            --grid-bounds 2.9,37.8,3.1,38.0 --grid-bounds-crs EPSG:4326

    Prints the output path when done.
    """
    if (stac is None) != (assets is None):
        raise click.UsageError("--stac and --assets go together")
    if output is None:
        if len(files) < (1 if stac else 2):
            raise click.UsageError("give at least one INPUT and the OUTPUT (or -o OUTPUT)")
        *inputs, output = files
    else:
        inputs = list(files)
    if stac is not None:
        keys = [key.strip() for key in assets.split(",") if key.strip()]
        try:
            inputs = [stac_series(stac, keys, groupby=None if groupby == "none" else groupby),
                      *inputs]
        except Exception as err:
            if not _clean(err):
                raise
            raise _clean_error(ctx, err) from err
    elif not inputs:
        raise click.UsageError("give at least one INPUT and the OUTPUT (or -o OUTPUT)")
    if os.path.isdir(output):
        raise click.UsageError(f"OUTPUT {output!r} is a directory")
    with _rasterio_env(ctx):
        output_exists = remote.exists(output)
    if output_exists and not overwrite:
        raise click.UsageError(
            f"OUTPUT {output!r} exists and won't be overwritten without --overwrite"
        )
    grid = grid_option(grid, grid_crs=grid_crs, grid_res=grid_res, grid_bounds=grid_bounds,
                       grid_bounds_crs=grid_bounds_crs)
    global_args = merge_global_args(global_args, args)
    run_function, upload = load_function(function)
    if progress is None:
        isatty = getattr(sys.stderr, "isatty", None)
        progress = bool(isatty and isatty())
    options = dict(creation_options)
    taken = sorted(set(map(str.lower, options)) & _NOT_CREATION_OPTIONS)
    if taken:
        raise click.UsageError(
            f"--co {taken[0]}=... is not a creation option: "
            + ("use --stats" if taken[0] == "stats" else
               "use --description/--tag" if taken[0] in ("descriptions", "tags") else
               "it is not taken on the command line"))
    if driver:
        options["driver"] = driver
    if overviews is not None:
        options["overviews"] = overviews
    if overview_resampling is not None:
        options["overview_resampling"] = overview_resampling.lower()
    if nodata is not None:
        options["nodata"] = nodata

    client = None
    try:
        with _rasterio_env(ctx):
            if schedulers.by_name(scheduler) is None:
                client = _connect(scheduler, upload)
            out = map_windows(run_function, inputs, mode=mode, global_args=global_args,
                              count=count, dtype=dtype, overlap=overlap, boundary=boundary,
                              grid=grid, resampling=resampling, masked=masked)
            # --workers reaches the threaded scheduler and the process pool alike.
            config = dask.config.set(num_workers=workers) if workers else contextlib.nullcontext()
            with config:
                # on another grid, the array's own georeferencing (the first input's
                # nodata still comes along)
                like = inputs[0] if grid in (None, "first") and stac is None else None
                if like is None and "nodata" not in options and stac is None:
                    nodata = raster_info(inputs[0]).nodata
                    if nodata is not None and nodata_fits(nodata, out.dtype):
                        options["nodata"] = nodata
                with contextlib.redirect_stdout(sys.stderr):  # (the report; stdout: the path)
                    written = to_raster(out, output, like=like,
                                        scheduler=client if client is not None else scheduler,
                                        progress=progress, resume=resume, report=report,
                                        descriptions=list(descriptions) or None,
                                        tags=tags or None, stats=stats, **options)
                if report:
                    written = written.path
    except Exception as err:
        if not _clean(err):
            raise
        raise _clean_error(ctx, err) from err
    finally:
        if client is not None:
            client.close()
    click.echo(written)


def _connect(address: str, upload: str | None):
    """A ``distributed.Client`` on ``address``, with the module file uploaded."""
    from distributed import Client

    try:
        client = Client(address)
    except (OSError, TimeoutError, ValueError) as err:
        raise click.ClickException(
            one_line(f"cannot connect to the dask scheduler at {address!r}: {err}")
        ) from err
    if upload is not None:
        try:
            client.upload_file(upload)
        except Exception as err:
            client.close()
            raise click.ClickException(
                one_line(f"cannot send {upload!r} to the cluster's workers: {err}")
            ) from err
    return client


# -- info ---------------------------------------------------------------------


def describe(info) -> dict:
    """What ``info`` reports of one input, from its :class:`~riomucho_dask.read.RasterInfo`."""
    row_chunks, col_chunks = block_chunks(info.height, info.width, info.block_shape)
    window_rows, window_cols = window_chunks(info.height, info.width, info.block_shape)
    return {
        "path": info.path,
        "width": info.width,
        "height": info.height,
        "count": info.count,
        "dtype": info.dtype,
        "crs": info.crs.to_string() if info.crs else None,
        "transform": list(info.transform)[:6],
        "nodata": info.nodata,
        "block_shape": list(info.block_shape),
        "block_grid": [len(row_chunks), len(col_chunks)],
        "windows": len(window_rows) * len(window_cols),
    }


def _text_report(item: dict) -> str:
    rows, cols = item["block_shape"]
    grid_rows, grid_cols = item["block_grid"]
    return "\n".join([
        item["path"],
        f"  size:       {item['width']} x {item['height']} (width x height)",
        f"  bands:      {item['count']}",
        f"  dtype:      {item['dtype']}",
        f"  crs:        {item['crs'] or 'none'}",
        f"  nodata:     {item['nodata']}",
        f"  block:      {rows} x {cols} (rows x cols)",
        f"  block grid: {grid_rows} x {grid_cols} (rows x cols of blocks)",
        f"  windows:    {item['windows']}",
    ])


@mucho.command(short_help="Describe inputs and check that they line up.")
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def info(ctx: click.Context, inputs: tuple[str, ...], as_json: bool) -> None:
    """Describe INPUT... and check that they line up.

    For each input: size, bands, dtype, CRS, nodata, block shape, the grid
    of blocks and the number of windows run would use.  Then whether the
    inputs line up (same height and width, transform and CRS), as run
    requires in its reading modes.

    Exits with 0 when they line up, 1 (and the reason) when they don't.
    """
    try:
        with _rasterio_env(ctx):
            resolved = resolve_inputs(list(inputs), "simple_read")
            reason = None
            try:
                check_alignment(resolved)
            except InputMismatchError as err:
                reason = str(err)
    except Exception as err:
        if not _clean(err):
            raise
        raise _clean_error(ctx, err) from err
    items = [describe(item.infos[0]) for item in resolved]
    if as_json:
        click.echo(json.dumps({"inputs": items, "aligned": reason is None, "reason": reason},
                              indent=2))
    else:
        for item in items:
            click.echo(_text_report(item))
        if reason is not None:
            click.echo(f"inputs do not line up: {one_line(reason)}")
        elif len(items) == 1:
            click.echo("one input: nothing to line up")
        else:
            click.echo(f"inputs line up: {len(items)} inputs, same size, transform and CRS")
    if reason is not None:
        ctx.exit(1)


@mucho.command(short_help="Statistics of a raster under each shape of a vector file.")
@click.argument("raster")
@click.argument("shapes")
@click.option("--stats", default="count,min,max,mean,sum,std", show_default=True,
              help="Statistics, separated by commas: count, min, max, mean, sum, std, range.")
@click.option("--band", default=1, show_default=True, type=int, help="The band (from 1).")
@click.option("--all-touched", is_flag=True,
              help="Every pixel a shape touches, not only those whose centre is inside.")
@click.option("--nodata", type=float, default=None,
              help="Pixels of this value are left out (default: the raster's nodata).")
@click.option("--crs", "shapes_crs", callback=_cb_crs, default=None,
              help="The shapes' CRS, where the file does not say it.")
@click.option("--scheduler", default="threads", show_default=True, callback=_cb_scheduler,
              help="Dask scheduler, or the address of a dask.distributed scheduler.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file: .json or .csv (default: JSON to stdout).")
@click.pass_context
def zonal(ctx: click.Context, raster: str, shapes: str, stats: str, band: int,
          all_touched: bool, nodata: float | None, shapes_crs: CRS | None, scheduler: str,
          output: str | None) -> None:
    """Statistics of RASTER's pixels under each shape of SHAPES (a vector file
    GDAL reads), one record per shape, in order (null statistics for a shape
    with no valid pixel).
    """
    if output is not None and not output.lower().endswith((".json", ".csv")):
        raise click.BadParameter(f"{output!r}: write to a .json or a .csv file",
                                 param_hint="-o/--output")
    client = None
    try:
        with _rasterio_env(ctx):
            if schedulers.by_name(scheduler) is None:
                client = _connect(scheduler, None)
            found = zonal_stats(raster, shapes, stats=stats, band=band,
                                all_touched=all_touched, nodata=nodata, crs=shapes_crs,
                                scheduler=client if client is not None else scheduler)
    except CLEAN_ERRORS as err:
        raise _clean_error(ctx, err) from err
    finally:
        if client is not None:
            client.close()
    if output is not None and output.lower().endswith(".csv"):
        names = list(found[0]) if found else stats.replace(",", " ").split()
        with open(output, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["feature", *names])
            for i, record in enumerate(found):
                writer.writerow([i, *("" if record[n] is None else record[n] for n in names)])
        return
    # (strict JSON: an infinite or NaN statistic is null)
    text = json.dumps([{name: None if isinstance(value, float) and not math.isfinite(value)
                        else value for name, value in record.items()} for record in found],
                      indent=2, allow_nan=False)
    if output is None:
        click.echo(text)
    else:
        with open(output, "w") as file:
            file.write(text + "\n")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``riomucho-dask`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments; default ``sys.argv[1:]``.
    """
    mucho.main(args=argv, prog_name="riomucho-dask")


if __name__ == "__main__":  # pragma: no cover
    main()
