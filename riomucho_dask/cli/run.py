"""``run MODULE:FUNCTION INPUT... OUTPUT``: a run function over the inputs' windows.

Runs a rio-mucho run function through :func:`~riomucho_dask.map_windows`
and writes the result with :func:`~riomucho_dask.to_raster`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import click
import dask
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.rio.options import creation_options, output_opt, overwrite_opt

from ..map import MODES, map_windows
from ..nodata import nodata_fits
from ..read import raster_info
from ..read.stac import stac_series
from ..write import remote, to_raster
from .context import command, rasterio_env
from .loader import load_function
from .options import (
    DTYPES,
    NOT_CREATION_OPTIONS,
    cb_args,
    cb_boundary,
    cb_crs,
    cb_global_args,
    cb_grid_bounds,
    cb_grid_res,
    cb_overviews,
    cb_scheduler,
    cb_tags,
    grid_option,
    merge_global_args,
)

__all__ = ["run"]


@click.command(short_help="Run a function over the windows of rasters.")
@click.argument("function", metavar="MODULE:FUNCTION")
@click.argument("files", nargs=-1, required=True, metavar="INPUT... [OUTPUT]")
@click.option("--mode", type=click.Choice(MODES), default="simple_read", show_default=True,
              help="What the function gets as data: one array per input (simple_read), one "
                   "array of every band (array_read) or the open datasets (manual_read).")
@click.option("--global-args", "global_args", metavar="JSON", callback=cb_global_args,
              help="The function's global_args (4th argument), as JSON.  Default: {}.")
@click.option("--arg", "args", metavar="KEY=VALUE", multiple=True, callback=cb_args,
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
@click.option("--scheduler", default="threads", show_default=True, callback=cb_scheduler,
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
@click.option("--tag", "tags", metavar="KEY=VALUE", multiple=True, callback=cb_tags,
              help="A tag of the output (GeoTIFF and COG).  Repeatable.")
@click.option("--stats", is_flag=True, default=False,
              help="Write each band's statistics (minimum, maximum, mean, standard "
                   "deviation, valid percent) into OUTPUT as GDAL's STATISTICS_* metadata, "
                   "computed while writing (GeoTIFF and COG).")
@click.option("--overviews", metavar="auto|none|2,4,8", default=None, callback=cb_overviews,
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
@click.option("--grid-crs", "grid_crs", metavar="CRS", default=None, callback=cb_crs,
              help="With --grid-res and --grid-bounds, read every input onto the grid of "
                   "this CRS (EPSG:32633, WKT, a PROJ string) that covers the bounds, its "
                   "edges snapped outward to whole multiples of the resolution "
                   "(riomucho_dask.Grid.from_bounds).  Not with --grid.")
@click.option("--grid-res", "grid_res", metavar="RES|XRES,YRES", default=None,
              callback=cb_grid_res,
              help="The pixel size of --grid-crs's grid, in its units.")
@click.option("--grid-bounds", "grid_bounds", metavar="LEFT,BOTTOM,RIGHT,TOP", default=None,
              callback=cb_grid_bounds,
              help="The area --grid-crs's grid covers, in --grid-bounds-crs.")
@click.option("--grid-bounds-crs", "grid_bounds_crs", metavar="CRS", default=None,
              callback=cb_crs,
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
@click.option("--boundary", default="nodata", show_default=True, callback=cb_boundary,
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
        with command(ctx):
            inputs = [stac_series(stac, keys, groupby=None if groupby == "none" else groupby),
                      *inputs]
    elif not inputs:
        raise click.UsageError("give at least one INPUT and the OUTPUT (or -o OUTPUT)")
    if os.path.isdir(output):
        raise click.UsageError(f"OUTPUT {output!r} is a directory")
    with rasterio_env(ctx):
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
    taken = sorted(set(map(str.lower, options)) & NOT_CREATION_OPTIONS)
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

    with command(ctx, scheduler, upload) as client:
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
    click.echo(written)
