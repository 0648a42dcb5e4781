"""What riomucho_dask knows of an input raster without its pixels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.enums import MaskFlags

from .. import gdal_options
from ..errors import InputNotFoundError
from ..paths import is_remote
from . import handles

__all__ = ["RasterInfo", "raster_info"]


@dataclass(frozen=True)
class RasterInfo:
    """What riomucho_dask needs to know of an input raster (no pixels)."""

    path: str
    count: int
    height: int
    width: int
    dtype: str
    block_shape: tuple[int, int]
    crs: Any
    transform: Any
    nodata: Any
    profile: dict
    signature: Any
    alpha: bool = False  # a band is an alpha band (its mask)
    mask: bool = False  # a per-dataset mask (internal or .msk) or an alpha band

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.count, self.height, self.width)


def raster_info(path: str | os.PathLike) -> RasterInfo:
    """Read the metadata of ``path`` (no pixels).

    Raises
    ------
    InputNotFoundError
        When the file does not exist or GDAL cannot open it.
    """
    path = os.fspath(path)
    if not is_remote(path):
        if not os.path.exists(path):
            raise InputNotFoundError(f"input {path!r} does not exist")
        # absolute in the graph: workers elsewhere (a remote cluster's) may run
        # in another directory
        path = os.path.abspath(path)
    with gdal_options.env(gdal_options.captured_env()), handles.open_dataset(path) as src:
        dtypes = set(src.dtypes)
        dtype = np.result_type(*dtypes).name if len(dtypes) > 1 else src.dtypes[0]
        return RasterInfo(
            path=path,
            count=src.count,
            height=src.height,
            width=src.width,
            dtype=dtype,
            block_shape=tuple(src.block_shapes[0]),
            crs=src.crs,
            transform=src.transform,
            nodata=src.nodata,
            profile=dict(src.profile),
            signature=handles.signature(path),
            alpha=any(MaskFlags.alpha in flags for flags in src.mask_flag_enums),
            mask=any(MaskFlags.per_dataset in flags or MaskFlags.alpha in flags
                     for flags in src.mask_flag_enums),
        )
