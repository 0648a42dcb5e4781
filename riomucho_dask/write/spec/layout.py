"""The output's layout, decided once from its profile.

:func:`for_profile` reads a profile (driver, tiling, codec, predictor,
interleaving, overview levels and their resampling, BigTIFF) and says how the
output's tiles are encoded and placed (an :class:`Encoding`), or that GDAL
itself must write it (None: another driver, strips, another codec or option).
Everything after it (the codec, the graph, the writers) takes the
:class:`Encoding` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..kernels import resample
from ..kernels.overviews import half
from .profile import truthy

__all__ = ["Encoding", "for_profile", "CODECS", "RESAMPLINGS", "GTIFF_RESAMPLINGS"]

#: Codecs whose tiles are placed as they come (no table shared by the tiles).
CODECS = frozenset({"none", "deflate", "lzw", "zstd", "packbits"})
#: A COG's overview resamplings made here (halving); others go through GDAL.
RESAMPLINGS = frozenset({"nearest", "average"})
#: A GeoTIFF's overview resamplings: our kernels' (:mod:`riomucho_dask.write.kernels.resample`)
#: and GDAL's own, chunk by chunk (:mod:`riomucho_dask.write.kernels.resample_gdal`).
GTIFF_RESAMPLINGS = frozenset({"nearest", "average", "mode", "bilinear", "cubic",
                               "cubicspline", "lanczos"})

_DATASET_KEYS = {"driver", "count", "width", "height", "dtype", "crs", "transform", "nodata"}
_GTIFF_KEYS = _DATASET_KEYS | {
    "tiled", "blockxsize", "blockysize", "compress", "predictor", "zlevel", "zstd_level",
    "interleave", "photometric", "bigtiff", "num_threads",
}
_COG_KEYS = _DATASET_KEYS | {
    "blocksize", "compress", "predictor", "level", "bigtiff", "num_threads",
    "overview_resampling", "resampling", "overview_count", "overviews",
    # layout keys a GTiff ``like`` brings along; the COG driver decides them
    "tiled", "blockxsize", "blockysize", "interleave", "photometric", "zlevel", "zstd_level",
}


def _predictor(value: Any, dtype: np.dtype) -> int:
    """GTiff PREDICTOR from a GTiff or COG value (YES, STANDARD, FLOATING_POINT, 1-3)."""
    text = str(value).strip().upper()
    if text in ("YES", "TRUE", "ON"):
        return 3 if dtype.kind == "f" else 2
    return {"NO": 1, "FALSE": 1, "OFF": 1, "STANDARD": 2, "FLOATING_POINT": 3}.get(
        text, int(float(text)) if text.replace(".", "").isdigit() else 1)


@dataclass(frozen=True)
class Encoding:
    """How the output's tiles are encoded, and (COG) its overview levels.

    Travels with every encoding task, so it holds plain values only.
    """

    creation: tuple  # GTiff creation options of every chunk file, as items
    block: tuple[int, int]  # tile rows, cols
    count: int
    dtype: str
    nodata: float | None
    planes: int  # count when bands are interleaved by band, else 1
    cog: bool = False
    overviews: int = 0  # overview levels
    resampling: str = "nearest"
    #: A GeoTIFF's overview factors (GDAL's ``BuildOverviews`` levels, sizes
    #: rounded up); none for a COG, whose levels are halved (rounded down)
    factors: tuple[int, ...] = ()
    #: The output has an internal mask even if no pixel is masked (a GeoTIFF
    #: with overviews said to be masked: GDAL makes a masked file's levels
    #: apart, so the file must be one)
    mask: bool = False
    bigtiff: str = "if_needed"
    stats: bool = False  # measure the full-resolution chunks (band statistics)

    # -- the levels ----------------------------------------------------------
    def shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """(height, width) of the full resolution and of each overview level."""
        if self.factors:
            return [(height, width), *resample.level_sizes(height, width, self.factors)]
        shapes = [(height, width)]
        for _ in range(self.overviews):
            h, w = shapes[-1]
            shapes.append((half(h), half(w)))
        return shapes


def _overview_count(profile: dict, block: int) -> int:
    """COG overview levels: given (at most down to 1 x 1, as GDAL), or halving
    until the image fits in one tile."""
    overviews = str(profile.get("overviews", "auto")).lower()
    if overviews == "none":
        return 0
    height, width = int(profile["height"]), int(profile["width"])
    if "overview_count" in profile:
        most = 0
        while height > 1 or width > 1:
            height, width, most = half(height), half(width), most + 1
        return min(int(profile["overview_count"]), most)
    count = 0
    while height > block or width > block:
        height, width, count = half(height), half(width), count + 1
    return count


def _exact(nodata: Any, dtype: np.dtype) -> Any:
    """``nodata`` as an int for integer outputs (int64 values beyond 2**53
    stay exact), as a float otherwise."""
    if dtype.kind in "iu" and float(nodata).is_integer():
        return int(nodata)
    return float(nodata)


def for_profile(profile: dict, overviews: Any = None,
                overview_resampling: str | None = None) -> Encoding | None:
    """The :class:`Encoding` of an output profile, or None when GDAL itself
    must write it (another driver, strips, another codec or option).

    ``overviews`` (a list of factors, or ``"auto"``: 2, 4, 8... until a level
    fits in one tile) and ``overview_resampling`` are a GeoTIFF's internal
    overviews, made as GDAL's ``BuildOverviews`` makes them; a COG's come
    from its profile (``overviews``, ``overview_count``, ``overview_resampling``).

    Examples
    --------
    >>> enc = for_profile({"driver": "COG", "count": 1, "dtype": "float32",
    ...                    "width": 2000, "height": 1000, "compress": "deflate"})
    >>> enc.block, enc.overviews, enc.resampling
    ((512, 512), 2, 'average')
    >>> for_profile({"driver": "GTiff", "count": 1, "dtype": "uint8",
    ...              "width": 10, "height": 10}) is None  # strips: GDAL writes them
    True
    """
    lower = {key.lower(): value for key, value in profile.items()}
    driver = str(lower.get("driver", "GTiff")).upper()
    dtype = np.dtype(lower["dtype"])
    if dtype.kind == "c":  # (complex overviews: GDAL's own route)
        return None
    if driver == "COG":
        if set(lower) - _COG_KEYS:
            return None
        by = bx = int(lower.get("blocksize", lower.get("blockxsize", 512)))  # as cog.py
        compress = str(lower.get("compress", "lzw")).lower()
        interleave = "pixel"
        level = lower.get("level")
        resampling = str(lower.get("overview_resampling", lower.get("resampling", "")))
        resampling = resampling.lower() or ("average" if dtype.kind in "fc" else "nearest")
        if resampling not in RESAMPLINGS or str(lower.get("overviews", "auto")).lower() not in (
                "auto", "none", "ignore_existing"):
            return None
    elif driver == "GTIFF":
        if set(lower) - _GTIFF_KEYS or not truthy(lower.get("tiled", False)):
            return None
        by, bx = int(lower.get("blockysize", 256)), int(lower.get("blockxsize", 256))
        compress = str(lower.get("compress", "none")).lower()
        interleave = str(lower.get("interleave", "pixel")).lower()
        level = None
        resampling = (overview_resampling or "nearest").lower()
        if overviews is not None and resampling not in GTIFF_RESAMPLINGS:
            return None
    else:
        return None
    if compress not in CODECS or interleave not in ("pixel", "band") or by % 16 or bx % 16:
        return None
    creation: dict[str, Any] = {"tiled": True, "blockxsize": bx, "blockysize": by,
                                "compress": compress, "interleave": interleave}
    if "predictor" in lower:
        if driver == "GTIFF" and not str(lower["predictor"]).strip().isdigit():
            return None  # GDAL's GTiff driver says what it thinks of it
        predictor = _predictor(lower["predictor"], dtype)
        if predictor != 1:
            creation["predictor"] = predictor
    for key in ("zlevel", "zstd_level"):
        if key in lower and driver == "GTIFF":
            creation[key] = lower[key]
    if level is not None and compress in ("deflate", "zstd"):
        creation["zlevel" if compress == "deflate" else "zstd_level"] = level
    if driver == "GTIFF" and "photometric" in lower:
        creation["photometric"] = lower["photometric"]
    nodata = lower.get("nodata")
    factors: tuple[int, ...] = ()
    if driver == "GTIFF" and overviews is not None:
        height, width = int(lower["height"]), int(lower["width"])
        factors = tuple(resample.auto_factors(height, width, (by, bx))
                        if overviews == "auto" else overviews)
    return Encoding(
        creation=tuple(sorted(creation.items())), block=(by, bx), count=int(lower["count"]),
        dtype=dtype.name, nodata=None if nodata is None else _exact(nodata, dtype),
        planes=int(lower["count"]) if interleave == "band" else 1,
        cog=driver == "COG", overviews=_overview_count(lower, max(by, bx)) if driver == "COG"
        else len(resample.level_sizes(int(lower["height"]), int(lower["width"]), factors)),
        resampling=resampling, factors=factors,
        bigtiff=str(lower.get("bigtiff", "if_needed")).lower(),
    )
