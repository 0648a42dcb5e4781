"""GDAL options that travel with a graph.

rasterio sets GDAL options per thread, so options set around a call do not
reach dask's worker threads or processes by themselves: the graph pieces
that touch GDAL capture the options when they are built and re-enter them
where they run.
"""

from __future__ import annotations

import contextlib

import rasterio

__all__ = ["captured_env", "env"]


def captured_env() -> dict:
    """The GDAL options of the ``rasterio.Env`` active here, or ``{}``."""
    from rasterio.env import getenv, hasenv

    if not hasenv():
        return {}
    return {key: value for key, value in getenv().items() if key != "RASTERIO_ENV"}


def env(options: dict):
    """A context re-entering captured options (a no-op for ``{}``)."""
    if not options:
        return contextlib.nullcontext()
    return rasterio.Env(**options)
