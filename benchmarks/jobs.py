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

__all__ = ["heavy", "light", "noop", "JOBS"]


def heavy(data, window, ij, global_args):
    """Normalized difference of two bands, then a few transcendental ops per pixel.

    Band 3 of the first input against band 1 of the second, as an NDVI-like
    index, followed by arctan, sqrt, exp and log1p.  Returns ``(1, h, w)``
    float32.
    """
    a = data[0][2].astype(np.float32)
    b = data[1][0].astype(np.float32)
    nd = (b - a) / (b + a + np.float32(1.0))
    out = np.arctan(nd * np.float32(3.0))
    out += np.sqrt(np.abs(nd)) * np.exp(-nd * nd)
    out += np.log1p(a * np.float32(1e-3))
    return out[np.newaxis]


def light(data, window, ij, global_args):
    """A single division of two bands (input values are never zero).

    Returns ``(1, h, w)`` float32.
    """
    return (data[0][0].astype(np.float32) / data[1][1].astype(np.float32))[np.newaxis]


def noop(data, window, ij, global_args):
    """Return the first input's bands unchanged: measures per-window overhead."""
    return data[0]


#: Run functions by job name.
JOBS = {"heavy": heavy, "light": light, "noop": noop}
