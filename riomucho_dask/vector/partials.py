"""Partial statistics of features: what a window gives, how partials merge, and the
statistics read from the merged whole (pure numpy, in float64).

A :class:`Partial` holds, for some features, the count, sum, minimum, maximum and
the sum of squared deviations from its own mean (M2) of some of their pixels, and,
when the statistics need it, each feature's histogram.  Partials merge exactly (M2
by Chan et al.'s pairwise update: no cancellation as a sum of squares would have),
in any grouping, so a tree of tasks can combine the windows' partials.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..errors import InputError

__all__ = ["STATISTICS", "HISTOGRAM", "REFUSED", "LOWEST", "SPAN", "Partial", "check_stats",
           "histograms", "merge", "finish"]

#: The statistics computed (merged exactly from window partials), in rasterstats' names.
STATISTICS = ("count", "min", "max", "mean", "sum", "std", "range")

#: Statistics of the distribution (and ``percentile_q``), exact from a histogram of each
#: feature's values, kept for integer rasters of up to 16 bits.
HISTOGRAM = ("median", "majority", "minority", "unique")

#: rasterstats' statistics not computed.
REFUSED = ("nodata", "nan")

#: Histogram keys: ``feature * SPAN + value - LOWEST`` (every 8- and 16-bit integer fits).
LOWEST, SPAN = -(2**15), 2**17


class Partial(NamedTuple):
    """Statistics of some pixels of some features (``ids`` ascending, unique), and,
    when asked, their histograms: ``keys`` (feature and value, see :data:`SPAN`,
    ascending, unique) with the pixels of each in ``freq``."""

    ids: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    keys: np.ndarray | None = None
    freq: np.ndarray | None = None


def check_stats(stats: Any) -> tuple[str, ...]:
    """The statistics asked for, checked (a list, or a string separated by commas or
    spaces, as rasterstats takes it).

    Examples
    --------
    >>> check_stats("count mean percentile_90")
    ('count', 'mean', 'percentile_90')
    >>> check_stats(["count", "nodata"])
    Traceback (most recent call last):
    ...
    riomucho_dask.errors.InputError: statistic 'nodata' is not available; choose from \
count, min, max, mean, sum, std, range, median, majority, minority, unique, \
percentile_q
    """
    names = stats.replace(",", " ").split() if isinstance(stats, str) else list(stats)
    known = ", ".join(STATISTICS + HISTOGRAM) + ", percentile_q"
    if not names:
        raise InputError(f"stats is empty: name at least one of {known}")
    for name in names:
        if not isinstance(name, str):
            raise InputError(f"statistic {name!r} is not a name")
        if name in STATISTICS or name in HISTOGRAM:
            continue
        if name.startswith("percentile_"):
            _percentile(name)
            continue
        what = "is not available" if name in REFUSED else "is unknown"
        raise InputError(f"statistic {name!r} {what}; choose from {known}")
    return tuple(dict.fromkeys(names))


def _percentile(name: str) -> float:
    """``q`` of ``percentile_q`` (0 to 100)."""
    try:
        q = float(name[len("percentile_"):])
    except ValueError:
        q = math.nan
    if not 0 <= q <= 100:
        raise InputError(f"statistic {name!r}: q of percentile_q is a number from 0 to 100")
    return q


def histograms(stats: tuple[str, ...]) -> bool:
    """Whether ``stats`` need each feature's histogram."""
    return any(name in HISTOGRAM or name.startswith("percentile_") for name in stats)


def merge(parts: list[Partial]) -> Partial:
    """One partial from several (exact for count, sum, min, max; M2 by Chan's update)."""
    histogram = any(part.keys is not None for part in parts)
    parts = [part for part in parts if len(part.ids)]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        empty = np.empty(0, np.int64)
        return Partial(empty, empty, *(np.empty(0) for _ in range(4)),
                       *((empty, empty) if histogram else ()))
    ids = np.concatenate([part.ids for part in parts])
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    fields = {name: np.concatenate([getattr(part, name) for part in parts])[order]
              for name in Partial._fields[1:6]}
    unique, starts = np.unique(ids, return_index=True)
    count = np.add.reduceat(fields["count"], starts)
    total = np.add.reduceat(fields["sum"], starts)
    group = np.repeat(np.arange(len(unique)), np.diff(np.append(starts, len(ids))))
    mean = total / count
    deviation = fields["sum"] / fields["count"] - mean[group]
    m2 = np.add.reduceat(fields["m2"] + fields["count"] * deviation * deviation, starts)
    keys = freq = None
    if histogram:  # the same (feature, value) from several partials: their pixels added
        keys, where = np.unique(np.concatenate([part.keys for part in parts]),
                                return_inverse=True)
        freq = np.bincount(where, weights=np.concatenate([part.freq for part in parts]),
                           minlength=len(keys)).astype(np.int64)
    return Partial(unique, count, total, m2, np.minimum.reduceat(fields["min"], starts),
                   np.maximum.reduceat(fields["max"], starts), keys, freq)


def _at(values: np.ndarray, ends: np.ndarray, rank: int) -> float:
    """The pixel of rank ``rank`` (from 0, ascending) of a histogram whose values'
    cumulative counts are ``ends``."""
    return float(values[np.searchsorted(ends, rank, side="right")])


def _quantile(values: np.ndarray, ends: np.ndarray, q: float) -> float:
    """``numpy.percentile(pixels, q)``, its ``linear`` method step for step."""
    n = int(ends[-1])
    virtual = (n - 1) * (q / 100)
    previous = math.floor(virtual)
    following = previous + 1
    if virtual >= n - 1:
        previous = following = n - 1
    a, b = _at(values, ends, previous), _at(values, ends, following)
    gamma = virtual - previous
    return b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma


def _distribution(values: np.ndarray, freq: np.ndarray, stats: tuple[str, ...]) -> dict:
    """The histogram statistics of one feature (sorted distinct ``values`` and their
    pixels), as rasterstats computes them from the pixels."""
    ends = np.cumsum(freq)
    n = int(ends[-1])
    out = {}
    for name in stats:
        if name == "median":  # numpy's: the mean of the middle pixel(s)
            out[name] = (_at(values, ends, (n - 1) // 2) + _at(values, ends, n // 2)) / 2
        elif name == "majority":  # of values as frequent, the lowest (rasterstats')
            out[name] = float(values[np.argmax(freq)])
        elif name == "minority":
            out[name] = float(values[np.argmin(freq)])
        elif name == "unique":
            out[name] = len(values)
        elif name.startswith("percentile_"):
            out[name] = _quantile(values, ends, _percentile(name))
    return out


def finish(part: Partial, features: int, stats: tuple[str, ...]) -> list[dict]:
    """One dict per feature, in order, as rasterstats gives them."""
    empty = {name: (0 if name == "count" else None) for name in stats}
    out = [dict(empty) for _ in range(features)]
    if part.keys is not None:
        owners = part.keys // SPAN
        bounds = np.searchsorted(owners, part.ids), np.searchsorted(owners, part.ids, "right")
    for k, i in enumerate(part.ids.tolist()):
        count = int(part.count[k])
        mean = float(part.sum[k]) / count
        value = {"count": count, "min": float(part.min[k]), "max": float(part.max[k]),
                 "mean": mean, "sum": float(part.sum[k]),
                 "std": math.sqrt(max(float(part.m2[k]), 0.0) / count),
                 "range": float(part.max[k] - part.min[k])}
        if part.keys is not None:
            mine = slice(bounds[0][k], bounds[1][k])
            value.update(_distribution(part.keys[mine] % SPAN + LOWEST, part.freq[mine],
                                       stats))
        out[i] = {name: value[name] for name in stats}
    return out
