"""GDAL's overview levels: their sizes, which level each is computed from, and
the factors ``gdaladdo`` picks (the rules of GDAL 3.10's ``gcore/overview.cpp``
and ``gcore/gdaldefaultoverviews.cpp``; see :mod:`riomucho_dask.write.kernels.resample`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .sampling import check_method

__all__ = ["level_sizes", "source_levels", "mask_source_levels", "auto_factors"]


def _div_round_up(size: int, factor: int) -> int:
    return (size + factor - 1) // factor


def _ov_level_adjust(factor: int, width: int, height: int) -> int:
    """GDAL's ``GDALOvLevelAdjust2``: the factor a level of ``factor`` really has."""
    if width >= height // 2 and not (width < height and width < factor):
        size = _div_round_up(width, factor)
        return int(0.5 + width / size)
    size = _div_round_up(height, factor)
    return int(0.5 + height / size)


def _ov_factor(ov_width: int, width: int, ov_height: int, height: int) -> int:
    """GDAL's ``GDALComputeOvFactor``: the factor of an existing level."""
    if width != 1 and width >= height // 2:
        return int(0.5 + width / ov_width)
    return int(0.5 + height / ov_height)


def level_sizes(height: int, width: int, factors: Sequence[int]) -> list[tuple[int, int]]:
    """The ``(height, width)`` of each overview level GDAL's GTiff driver makes.

    A level of factor ``f`` is ``ceil(height / f) x ceil(width / f)``.  As
    GDAL does, a factor is skipped when a level already made has the same
    factor (``GDALComputeOvFactor``) as it or as its adjusted factor
    (``GDALOvLevelAdjust2``): 3 after 2 on a 7 x 7 raster, say.  Levels
    come in the order of ``factors`` (give them increasing).

    Parameters
    ----------
    height, width : int
        The full-resolution size.
    factors : sequence of int
        The overview factors, as given to ``build_overviews``.

    Returns
    -------
    list of (int, int)

    Examples
    --------
    >>> level_sizes(301, 257, [2, 4, 8])
    [(151, 129), (76, 65), (38, 33)]
    >>> level_sizes(7, 7, [2, 3, 5])
    [(4, 4), (2, 2)]
    """
    sizes: list[tuple[int, int]] = []
    for factor in factors:
        factor = int(factor)
        adjusted = _ov_level_adjust(factor, width, height)
        if any(_ov_factor(w, width, h, height) in (factor, adjusted) for h, w in sizes):
            continue
        sizes.append((_div_round_up(height, factor), _div_round_up(width, factor)))
    return sizes


def source_levels(height: int, width: int, factors: Sequence[int], method: str,
                  interleave: str = "pixel", masked: bool = False) -> list[int | None]:
    """The level GDAL computes the pixels of each level of :func:`level_sizes` from.

    ``-1`` is the full resolution, ``k`` the level ``k``; None a level GDAL
    makes but never fills (left all nodata, or 0 without nodata): one whose factor GDAL does not
    find again when it looks the levels up (``GDALComputeOvFactor`` on the
    X side, ``GDALOvLevelAdjust2`` on the Y side, as for a 5 x 3 raster
    and a factor 8).

    * Pixel-interleaved files of several bands go through
      ``GDALRegenerateOverviewsMultiBand``: a level is computed from the
      previous computed level when that level is wider, else from the full
      resolution, whatever the method.
    * Band-interleaved files, and one-band files whatever their interleave
      (give ``interleave="band"``), go band by band through
      ``GDALRegenerateOverviewsEx``: ``average``
      and ``mode`` cascade (each level from the previous one),
      ``nearest`` takes every level from the full resolution.  With an
      internal mask (``masked``) GDAL does not cascade: every level from
      the full resolution, whatever the method.

    The pixels are resampled with the mask of the level they come from
    (GDAL's own mask of that level: give the level as :func:`resample`
    returned it); the mask itself comes from :func:`mask_source_levels`.

    Examples
    --------
    >>> source_levels(301, 257, [2, 4, 8], "average")
    [-1, 0, 1]
    >>> source_levels(40, 1, [2, 4], "average")
    [-1, -1]
    >>> source_levels(45, 37, [2, 4], "nearest", interleave="band")
    [-1, -1]
    >>> source_levels(5, 3, [2, 4, 8], "average")
    [-1, 0, None]
    >>> source_levels(45, 37, [2, 4, 8], "mode", interleave="band", masked=True)
    [-1, -1, -1]
    """
    method = check_method(method)
    sizes = level_sizes(height, width, factors)
    filled = [False] * len(sizes)
    for factor in factors:
        adjusted = _ov_level_adjust(int(factor), width, height)
        for k, (h, w) in enumerate(sizes):
            if _ov_factor(w, width, h, height) in (int(factor), adjusted):
                filled[k] = True
                break
    out: list[int | None] = []
    previous = -1
    for k, (_, w) in enumerate(sizes):
        if not filled[k]:
            out.append(None)
            continue
        if interleave == "band":
            out.append(-1 if method == "nearest" or masked else previous)
        else:
            out.append(previous if previous >= 0 and sizes[previous][1] > w else -1)
        previous = k
    return out


def mask_source_levels(height: int, width: int, factors: Sequence[int],
                       method: str) -> list[int | None]:
    """The level GDAL computes the internal (per-dataset) mask of each level from.

    GDAL resamples the mask band alone, before the pixels, as one band of a
    band-interleaved file (:func:`source_levels` with ``interleave="band"``),
    whatever the file's interleave: ``nearest`` from the full resolution's
    mask, ``average`` and ``mode`` from the previous level's mask; None
    for a level GDAL never fills.  Resample it with :func:`resample_mask`
    (or take the mask :func:`resample` returns when the pixels come from the
    same level).

    Examples
    --------
    >>> mask_source_levels(301, 257, [2, 4, 8], "nearest")
    [-1, -1, -1]
    >>> mask_source_levels(301, 257, [2, 4, 8], "mode")
    [-1, 0, 1]
    """
    return source_levels(height, width, factors, method, interleave="band")


def auto_factors(height: int, width: int, block: int | tuple[int, int]) -> list[int]:
    """Factors 2, 4, 8, ... until the level fits in one block.

    The rule of ``gdaladdo`` without levels with ``--minsize`` set to the
    block's side: factors double while ``ceil(width / f) > block_width`` or
    ``ceil(height / f) > block_height``; the last factor is the first whose
    level fits in one block.  Nothing when the raster already fits.

    Parameters
    ----------
    height, width : int
        The full-resolution size.
    block : int or (int, int)
        The block's side, or its ``(height, width)``.

    Returns
    -------
    list of int

    Examples
    --------
    >>> auto_factors(301, 257, 32)
    [2, 4, 8, 16]
    >>> auto_factors(16, 16, 16)
    []
    """
    block_h, block_w = (block, block) if isinstance(block, int) else block
    factors: list[int] = []
    factor = 1
    while _div_round_up(width, factor) > block_w or _div_round_up(height, factor) > block_h:
        factor *= 2
        factors.append(factor)
    return factors
