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

One module per command (``run.py``, ``info.py``, ``zonal.py``), the options they share
parsed in ``options.py``, ``MODULE:FUNCTION`` resolved in ``loader.py``,
errors told in one line in ``context.py``.
"""

from __future__ import annotations

import click

from .. import __version__
from . import info, run, zonal
from .loader import load_function

__all__ = ["mucho", "main", "load_function"]


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


mucho.add_command(run.run)
mucho.add_command(info.info)
mucho.add_command(zonal.zonal)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``riomucho-dask`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments; default ``sys.argv[1:]``.
    """
    mucho.main(args=argv, prog_name="riomucho-dask")
