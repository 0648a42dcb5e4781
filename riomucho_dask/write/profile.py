"""The output's creation profile, and chunks that line up with its tiles."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from ..errors import ProfileError
from ..read import raster_info
from . import cog

__all__ = ["build_profile", "align_chunks", "nodata_fits"]


def nodata_fits(nodata: Any, dtype: np.dtype) -> bool:
    if nodata is None:
        return True
    if np.isnan(nodata):
        return dtype.kind in "fc"
    if dtype.kind in "fc":
        return True
    info = np.iinfo(dtype)
    return float(nodata).is_integer() and info.min <= nodata <= info.max


def build_profile(array: da.Array, profile: dict | None, like: Any,
                  creation_options: dict) -> dict:
    """The output's creation profile.

    Start from ``like``'s profile, update with ``profile`` then the creation
    options.  Height, width and count come from the array; the dtype from the
    array unless ``profile``/creation options name one.
    """
    if profile is None and like is None:
        raise ProfileError(
            "to_raster needs georeferencing: pass like= (a raster to copy CRS, transform, "
            "nodata and layout from) or profile="
        )
    # GDAL option names are case-insensitive; rasterio's profiles are lowercase.
    explicit = {key.lower(): value for key, value in (profile or {}).items()}
    explicit.update((key.lower(), value) for key, value in creation_options.items())
    out: dict[str, Any] = {}
    if like is not None:
        out.update(raster_info(like).profile)
        if not any(key in explicit for key in ("dtype", "nodata")):
            out["nodata"] = out.get("nodata")
    out.update(explicit)
    count, height, width = array.shape
    for key, value in (("height", height), ("width", width), ("count", count)):
        if key in explicit and int(explicit[key]) != value:
            raise ProfileError(f"profile {key}={explicit[key]} but the array has {key} {value}")
        if like is not None and key in ("height", "width") and out.get(key) != value:
            raise ProfileError(
                f"the array is {height} x {width} but like={like!r} is "
                f"{out['height']} x {out['width']}: georeferencing would not match"
            )
        out[key] = value
    dtype = np.dtype(explicit.get("dtype", array.dtype))
    out["dtype"] = dtype.name
    out.setdefault("driver", "GTiff")
    nodata = out.get("nodata")
    if not nodata_fits(nodata, dtype):
        if "nodata" in explicit:
            raise ProfileError(f"nodata {nodata!r} does not fit dtype {dtype}")
        out["nodata"] = None  # like's nodata cannot be stored in the new dtype
    if out.get("nodata") is None:
        out.pop("nodata", None)
    compress = str(out.get("compress", "none")).lower()
    if str(out["driver"]).upper() in ("GTIFF", "COG") and compress not in ("none", ""):
        # Let GDAL compress on every core, so the one writer is not the
        # bottleneck; and go BigTIFF when a compressed file might pass 4 GB.
        if "num_threads" not in out:
            out["num_threads"] = "all_cpus"
        if "bigtiff" not in out:
            out["bigtiff"] = "if_safer"
    return out


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().upper() in ("YES", "TRUE", "ON", "1")
    return bool(value)


def _aligned(chunks: tuple[int, ...], block: int) -> bool:
    offset = 0
    for size in chunks[:-1]:
        offset += size
        if offset % block:
            return False
    return True


def align_chunks(array: da.Array, profile: dict) -> da.Array:
    """Rechunk so that every chunk holds all bands, and chunk edges fall on
    the output's block edges.

    Without this, a compressed tile written by two chunks (two groups of
    rows, or two groups of bands of a pixel-interleaved tile) is written
    twice and appended again to the file.
    """
    new: dict[int, Any] = {0: -1} if len(array.chunks[0]) > 1 else {}
    if cog.is_cog(profile):
        profile, _ = cog.split_profile(profile)
    if _truthy(profile.get("tiled", False)):
        block_rows = int(profile.get("blockysize", 256))
        block_cols = int(profile.get("blockxsize", 256))
    elif "blockysize" in profile:
        block_rows, block_cols = int(profile["blockysize"]), array.shape[2]
    else:
        return array.rechunk(new) if new else array
    rows, cols = array.chunks[1:]
    if not _aligned(rows, block_rows):
        new[1] = max(1, round(max(rows) / block_rows)) * block_rows
    if not _aligned(cols, block_cols):
        new[2] = max(1, round(max(cols) / block_cols)) * block_cols
    return array.rechunk(new) if new else array
