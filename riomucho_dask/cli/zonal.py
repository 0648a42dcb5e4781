"""``riomucho-dask zonal RASTER SHAPES``: statistics of a raster under each shape."""

from __future__ import annotations

import csv
import json
import math

import click
from rasterio.crs import CRS

from ..vector import zonal_stats
from .context import command
from .options import cb_crs, cb_scheduler

__all__ = ["zonal"]


@click.command(short_help="Statistics of a raster under each shape of a vector file.")
@click.argument("raster")
@click.argument("shapes")
@click.option("--stats", default="count,min,max,mean,sum,std", show_default=True,
              help="Statistics, separated by commas: count, min, max, mean, sum, std, range; "
                   "on integer rasters of up to 16 bits also median, percentile_Q, majority, "
                   "minority, unique.")
@click.option("--band", default=1, show_default=True, type=int, help="The band (from 1).")
@click.option("--all-touched", is_flag=True,
              help="Every pixel a shape touches, not only those whose centre is inside.")
@click.option("--nodata", type=float, default=None,
              help="Pixels of this value are left out (default: the raster's nodata).")
@click.option("--crs", "shapes_crs", callback=cb_crs, default=None,
              help="The shapes' CRS, where the file does not say it.")
@click.option("--scheduler", default="threads", show_default=True, callback=cb_scheduler,
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
    with command(ctx, scheduler) as client:
        found = zonal_stats(raster, shapes, stats=stats, band=band,
                            all_touched=all_touched, nodata=nodata, crs=shapes_crs,
                            scheduler=client if client is not None else scheduler)
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
