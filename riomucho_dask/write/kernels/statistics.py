"""Band statistics of the output, computed in the graph that writes it.

``to_raster(..., stats=True)`` writes each band's minimum, maximum, mean and
standard deviation over its valid pixels as GDAL's band metadata
(``STATISTICS_MINIMUM``, ``STATISTICS_MAXIMUM``, ``STATISTICS_MEAN``,
``STATISTICS_STDDEV``, ``STATISTICS_VALID_PERCENT``), which ``gdalinfo``,
QGIS and rasterio's ``src.statistics(band)`` read without scanning the
pixels.  Nothing is read back and nothing is computed twice:

- the task that computes a block also measures it (:func:`measure`): a
  :class:`BlockStatistics` of a few numbers per band, computed on the pixels
  as the file holds them (:func:`~riomucho_dask.write.kernels.pixels.as_written`:
  masked pixels as nodata, or under the internal mask).  It rides with the
  block to the writer: in the encoded tiles
  (:class:`~riomucho_dask.write.tiff.codec.Tiles`, their ``stats``), or, on
  GDAL's route, in a :class:`Measured` block (:func:`measured_blocks`);
- the store adds them up as the blocks are written (Chan et al.'s pairwise
  update of counts, means and sums of squared deviations: numerically
  stable) and hands the band tags (:meth:`BlockStatistics.band_tags`) to the
  writer before it closes the file.

Valid pixels are those not masked (internal mask), not equal to nodata and,
for floating-point outputs, not NaN, as GDAL's ``ComputeStatistics``
counts them; the standard deviation is the population one (GDAL's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from rasterio.windows import Window

from ... import timings
from ...nodata import invalid
from ...windows import offsets
from .pixels import as_written

__all__ = ["BlockStatistics", "Measured", "measure", "measured_blocks"]


@dataclass(frozen=True)
class BlockStatistics:
    """Per-band statistics of some pixels (a block, or the whole output).

    One value per band in each tuple: ``count`` valid pixels, their ``mean``,
    ``m2`` (sum of squared deviations from the mean), ``minimum`` and
    ``maximum`` (None where no pixel is valid; values of the output's dtype,
    as Python numbers); ``pixels`` is the number of pixels of each band,
    valid or not.
    """

    count: tuple
    mean: tuple
    m2: tuple
    minimum: tuple
    maximum: tuple
    pixels: int

    def __add__(self, other: BlockStatistics) -> BlockStatistics:
        """The statistics of both blocks' pixels together."""
        count, mean, m2, low, high = [], [], [], [], []
        for n in range(len(self.count)):
            na, nb = self.count[n], other.count[n]
            total = na + nb
            if not nb:
                parts = (na, self.mean[n], self.m2[n], self.minimum[n], self.maximum[n])
            elif not na:
                parts = (nb, other.mean[n], other.m2[n], other.minimum[n], other.maximum[n])
            else:
                delta = other.mean[n] - self.mean[n]
                parts = (total, self.mean[n] + delta * (nb / total),
                         self.m2[n] + other.m2[n] + delta * delta * (na * nb / total),
                         min(self.minimum[n], other.minimum[n]),
                         max(self.maximum[n], other.maximum[n]))
            for values, value in zip((count, mean, m2, low, high), parts):
                values.append(value)
        return BlockStatistics(tuple(count), tuple(mean), tuple(m2), tuple(low), tuple(high),
                               self.pixels + other.pixels)

    def band_tags(self) -> list[dict[str, str]]:
        """GDAL's ``STATISTICS_*`` band metadata, one dict per band.

        As GDAL's ``ComputeStatistics`` writes them, except that the numbers
        keep every digit a float64 has (GDAL writes 14): a band without a
        valid pixel gets ``STATISTICS_VALID_PERCENT=0`` only.

        Examples
        --------
        >>> s = measure(np.array([[[1, 2], [3, 255]]], "uint8"), None, 255)
        >>> s.band_tags()[0]["STATISTICS_MEAN"], s.band_tags()[0]["STATISTICS_VALID_PERCENT"]
        ('2', '75')
        """
        out = []
        for n in range(len(self.count)):
            valid = self.count[n]
            tags = {"STATISTICS_VALID_PERCENT":
                    "%.4g" % (100.0 * valid / self.pixels if self.pixels else 0.0)}
            if valid:
                tags.update(STATISTICS_MINIMUM=_text(self.minimum[n]),
                            STATISTICS_MAXIMUM=_text(self.maximum[n]),
                            STATISTICS_MEAN=_text(self.mean[n]),
                            STATISTICS_STDDEV=_text(math.sqrt(max(self.m2[n], 0.0) / valid)
                                                    if not math.isnan(self.m2[n]) else math.nan))
            out.append(tags)
        return out


def _text(value: Any) -> str:
    """``value`` with every digit it needs to read back the same float64 (an
    integer value without a decimal point, as GDAL writes it)."""
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def measure(data: np.ndarray, mask: np.ndarray | None, nodata: Any) -> BlockStatistics:
    """The :class:`BlockStatistics` of ``data`` (``(count, h, w)``), pixels as
    the file holds them, and ``mask`` its internal mask (``(h, w)``, 0 for
    masked pixels; None without one), as :func:`~riomucho_dask.write.kernels.pixels.as_written`
    gives them.

    Examples
    --------
    >>> s = measure(np.array([[[1.0, np.nan], [3.0, -9.0]]]), None, -9)
    >>> s.count, s.mean, s.minimum, s.maximum
    ((2,), (2.0,), (1.0,), (3.0,))
    """
    data = np.asarray(data)
    valid_all = None if mask is None else np.asarray(mask) != 0
    count, mean, m2, low, high = [], [], [], [], []
    for band in data:
        valid = valid_all
        bad = invalid(band, nodata)
        if bad is not None:  # (a copy of the valid pixels only where some are not)
            valid = ~bad if valid is None else valid & ~bad
        pixels = (band if valid is None else band[valid]).ravel()
        n = int(pixels.size)
        count.append(n)
        if not n:
            mean.append(0.0)
            m2.append(0.0)
            low.append(None)
            high.append(None)
            continue
        average, squares = _moments(pixels)
        mean.append(average)
        m2.append(squares)
        low.append(pixels.min().item())
        high.append(pixels.max().item())
    return BlockStatistics(tuple(count), tuple(mean), tuple(m2), tuple(low), tuple(high),
                           int(data.shape[1] * data.shape[2]))


#: Pixels taken at a time by :func:`_moments` (their float64 copy stays in cache).
_SLICE = 2**16


def _moments(pixels: np.ndarray) -> tuple[float, float]:
    """(mean, sum of squared deviations) of the 1-d ``pixels``, in float64, a
    slice at a time merged as Chan et al. (no float64 copy of the whole block:
    two threads copying 12 MB blocks slowed each other's compression by 30%)."""
    n, mean, m2 = 0, 0.0, 0.0
    for start in range(0, pixels.size, _SLICE):
        part = pixels[start:start + _SLICE].astype(np.float64)
        k = part.size
        part_mean = float(np.add.reduce(part)) / k
        part -= part_mean
        part *= part  # (not np.dot: BLAS would start threads of its own beside dask's)
        part_m2 = float(np.add.reduce(part))
        total = n + k
        delta = part_mean - mean
        mean += delta * (k / total)
        m2 += part_m2 + delta * delta * (n * k / total)
        n = total
    return mean, m2


@dataclass(frozen=True)
class Measured:
    """A block of pixels for GDAL's route, its place, and its statistics."""

    block: np.ndarray
    window: Window
    stats: BlockStatistics

    @property
    def nbytes(self) -> int:
        return int(self.block.nbytes)


def _measure_block(block: np.ndarray, nodata: Any, row_offsets: np.ndarray,
                   col_offsets: np.ndarray, block_id=None) -> np.ndarray:

    row, col = int(row_offsets[block_id[1]]), int(col_offsets[block_id[2]])
    window = Window(col, row, block.shape[2], block.shape[1])
    with timings.timed("encode"):
        stats = measure(*as_written(block, nodata, window=f"window {window!r}"), nodata)
    out = np.empty((1, 1, 1), dtype=object)
    out[0, 0, 0] = Measured(block, window, stats)
    return out


def measured_blocks(array: da.Array, nodata: Any) -> da.Array:
    """An object array of one :class:`Measured` per chunk of ``array``
    (``(count, rows, cols)``, all bands in each chunk): the chunk, where it
    goes and its statistics, computed in the chunk's own task (fused with
    it), for an output written by GDAL."""
    chunks = ((1,), (1,) * len(array.chunks[1]), (1,) * len(array.chunks[2]))
    return array.map_blocks(_measure_block, nodata, np.asarray(offsets(array.chunks[1])),
                            np.asarray(offsets(array.chunks[2])), chunks=chunks,
                            dtype=object, meta=np.empty((0, 0, 0), dtype=object),
                            name=f"{array.name}-stats-" + da.core.tokenize(array, nodata))
