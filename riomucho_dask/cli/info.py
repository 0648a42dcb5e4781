"""``info INPUT...``: the inputs described, and whether they line up."""

from __future__ import annotations

import json

import click

from ..errors import InputMismatchError
from ..map.inputs import check_alignment, resolve_inputs
from ..windows import block_chunks, window_chunks
from .context import command, one_line

__all__ = ["info", "describe"]


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


@click.command(short_help="Describe inputs and check that they line up.")
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
    with command(ctx):
        resolved = resolve_inputs(list(inputs), "simple_read")
        reason = None
        try:
            check_alignment(resolved)
        except InputMismatchError as err:
            reason = str(err)
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
