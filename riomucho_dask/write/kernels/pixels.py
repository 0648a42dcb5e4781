"""Which pixels are valid, and how the file holds them: the one rule.

A block is a numpy array, or a masked array (True: masked).  In the file,
masked pixels become nodata, or, without nodata, sit under the internal mask,
which a GeoTIFF keeps one for all bands (:func:`dataset_mask`).  The
statistics, the COG halving, the GeoTIFF kernels and the encoding all take the
pixels through :func:`as_written` / :func:`as_held`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import StoreError

__all__ = ["masked", "dataset_mask", "as_written", "as_held"]


def masked(data: np.ndarray, mask: np.ndarray) -> np.ma.MaskedArray:
    """A masked array whose fill value its dtype holds: numpy's default for
    integers (999999) does not fit uint16 and fails to cross between
    dask.distributed workers."""
    return np.ma.MaskedArray(data, mask=mask, fill_value=np.zeros((), dtype=data.dtype))


def dataset_mask(mask: np.ndarray, window: object = None) -> np.ndarray:
    """The internal mask (255 valid, 0 masked) of a block whose per-band mask
    (``(count, h, w)``, True masked) is ``mask``: a GeoTIFF's internal mask is
    one for all bands (``GDAL_TIFF_INTERNAL_MASK``), so the bands must agree.

    Raises
    ------
    StoreError
        The bands are masked differently (naming ``window``): one mask would
        lose the bands' own validity; only nodata keeps it per band.

    Examples
    --------
    >>> dataset_mask(np.array([[[True, False]], [[True, False]]]))
    array([[  0, 255]], dtype=uint8)
    >>> dataset_mask(np.array([[[True, False]], [[False, False]]]), "window (0, 0)")
    Traceback (most recent call last):
    ...
    riomucho_dask.errors.StoreError: window (0, 0): the bands are masked differently ...
    """
    flags = mask.any(axis=0)
    if mask.shape[0] > 1 and not np.array_equal(flags, mask.all(axis=0)):
        differ = int((flags != mask.all(axis=0)).sum())
        raise StoreError(
            f"{window if window is not None else 'a block'}: the bands are masked "
            f"differently ({differ} pixels masked in some bands only), and an output "
            "without nodata keeps one internal mask for all bands: pass nodata= (a value "
            "the bands never take, such as -9999 or nan) to keep each band's mask, or "
            "mask every band of a pixel alike")
    return np.where(flags, 0, 255).astype("uint8")


def as_written(block: np.ndarray, nodata: Any, keep: bool = False,
               window: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``block``'s pixels as the file holds them, and its internal mask (255
    valid, 0 masked) when it has one: masked pixels become nodata, or, without
    nodata, 0 under one mask for all bands (with ``keep``, the pixels under
    the mask stay as they are: an overview level's, which GDAL computes
    whatever the mask).

    ``window``: where a full-resolution block goes; its bands must then be
    masked alike (:func:`~riomucho_dask.write.kernels.pixels.dataset_mask` raises
    :class:`~riomucho_dask.errors.StoreError` naming it).  None: a piece of a
    level made from such blocks, masked as they were checked."""
    if not isinstance(block, np.ma.MaskedArray):
        return block, None
    mask = np.ma.getmaskarray(block)
    if nodata is not None:
        return block.filled(nodata), None
    if not mask.any():
        return block.data, None
    pixels = block.data if keep else block.filled(0)
    if window is not None:
        return pixels, dataset_mask(mask, window)
    return pixels, np.where(mask.any(axis=0), 0, 255).astype("uint8")


def as_held(block: np.ndarray, nodata: Any, keep: bool = False) -> np.ndarray:
    """``block`` as the file holds it: masked pixels are nodata, or under the
    internal mask (a masked array) when there is no nodata (0 under it, or,
    with ``keep``, as they are: an overview level's)."""
    data, mask = as_written(block, nodata, keep)
    return data if mask is None else masked(data, np.broadcast_to(mask == 0, data.shape))
