"""Run functions timed by ``benchmarks/run.py``.

They follow rio-mucho's contract ``run(data, window, ij, global_args)``, with
``data`` a list of one ``(bands, rows, cols)`` array per input
(``simple_read``).  They live at module level in their own module so that
worker processes (rio-mucho's pool, dask's process pool, dask.distributed
workers) can import them by name: ``run.py`` puts this directory on the
children's ``PYTHONPATH``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["heavy", "light", "light_dataarrays", "noop", "hillshade", "hillshade_alone", "JOBS",
           "JOB_OPTIONS"]


def heavy(data, window, ij, global_args):
    """Normalized difference of two bands, then transcendental ops per pixel.

    Band 3 of the first input against band 1 of the second, as an NDVI-like
    index in float64, followed by arctan, sqrt, exp, log1p, sin, cos, tanh,
    power and arcsinh: compute-bound (about 30 ms per 512 x 512 block here,
    several times the block's read and compression).  Returns ``(1, h, w)``
    float32.
    """
    a = data[0][2].astype(np.float64)
    b = data[1][0].astype(np.float64)
    nd = (b - a) / (b + a + 1.0)
    out = np.arctan(nd * 3.0)
    out += np.sqrt(np.abs(nd)) * np.exp(-nd * nd)
    out += np.log1p(a * 1e-3) + np.sin(nd * 5.0) * np.cos(nd * 3.0) + np.tanh(nd)
    out += np.power(np.abs(nd) + 1.0, 1.7) + np.arcsinh(nd * 4.0)
    return out.astype(np.float32)[np.newaxis]


def light(data, window, ij, global_args):
    """A single division of two bands (input values are never zero).

    Returns ``(1, h, w)`` float32.
    """
    return (data[0][0].astype(np.float32) / data[1][1].astype(np.float32))[np.newaxis]


def light_dataarrays(a, b):
    """:func:`light` on two ``(band, y, x)`` DataArrays (rioxarray, dask-backed):
    band 1 of ``a`` divided by band 2 of ``b``, float32, ``(y, x)``.  The COG
    section's ``odc-geo`` route computes the light job with it."""
    return a.isel(band=0).astype(np.float32) / b.isel(band=1).astype(np.float32)


def noop(data, window, ij, global_args):
    """Return the first input's bands unchanged: measures per-window overhead."""
    return data[0]


#: Run functions by job name.
JOBS = {"heavy": heavy, "light": light, "noop": noop}  # hillshade jobs added below


def _hillshade(z):
    """Hillshade (0-255, float32) of the core of a padded elevation array, 30 m cells."""
    z = z.astype(np.float64)
    dx = (z[1:-1, 2:] - z[1:-1, :-2]) / 60.0
    dy = (z[2:, 1:-1] - z[:-2, 1:-1]) / 60.0
    slope, aspect = np.arctan(np.hypot(dx, dy)), np.arctan2(-dx, dy)
    altitude, azimuth = np.radians(45.0), np.radians(315.0)
    shade = (np.sin(altitude) * np.cos(slope)
             + np.cos(altitude) * np.sin(slope) * np.cos(azimuth - aspect))
    return (255 * np.clip(shade, 0, 1)).astype(np.float32)


def hillshade(data, window, ij, global_args):
    """3 x 3 hillshade of band 1 of the first input, run with ``overlap=1``: the data
    already holds the window's neighbours."""
    return _hillshade(data[0][0])[np.newaxis]


def hillshade_alone(data, window, ij, global_args):
    """The same hillshade without overlap: the window's own edges repeated around it
    (what a run function can do without its neighbours; seams at block edges)."""
    return _hillshade(np.pad(data[0][0], 1, mode="edge"))[np.newaxis]


#: map_windows options per job (the others use none).
JOB_OPTIONS = {"hillshade": {"overlap": 1, "boundary": "edge"}}

JOBS.update({"hillshade": hillshade, "hillshade-alone": hillshade_alone})
