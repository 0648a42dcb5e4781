"""Writers: what puts finished blocks into a file.

:class:`~riomucho_dask.write.store.RasterStore` receives blocks from any
scheduler and hands them, one at a time and from one thread, to a
:class:`Writer`.  Two implementations: :class:`GDALWriter`, a rasterio
dataset (any GDAL driver; a COG through a tiled intermediate), and
:class:`~riomucho_dask.write.writers.tiled.TiledWriter`, which places tiles encoded
on the workers (tiled GeoTIFFs and COGs with the codecs it knows).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from .. import drivers
from ..kernels.pixels import dataset_mask
from ..sinks import remote
from ..spec import routes
from ..spec.metadata import Metadata
from . import cog, copied

__all__ = ["Writer", "GDALWriter"]


class Writer(Protocol):
    """Receives every block once, from one thread at a time.

    The store calls :meth:`from_workers` once before anything is computed,
    :meth:`write` for each block, then :meth:`close`, :meth:`publish` (and,
    once the output is in place, :meth:`discard`), or :meth:`abort` on any
    failure.
    """

    #: Called with a message before a long finishing step (a COG's layout).
    on_finish: Callable[[str], None] | None

    def from_workers(self, scheduler: str, client: Any, beside: str) -> bool:
        """Whether the workers write this output's bytes themselves (into part
        files beside ``beside``) on ``scheduler``; set up so if they can."""

    def write(self, block: np.ndarray, window: Window) -> None:
        """Place ``block`` (``(count, h, w)``, maybe masked) at ``window``."""

    def add_band_tags(self, tags: list[dict[str, str]]) -> None:
        """Band tags known only once every block is written (the band
        statistics), one dict per band: written into the file by :meth:`close`."""

    def close(self) -> str | None:
        """Finish the file; return the path of the finished file (None when
        writing into a dataset owned by the caller)."""

    def publish(self) -> None:
        """Make the output appear where finishing it left no file to move into
        place (complete a multipart upload)."""

    def abort(self) -> None:
        """Drop what was written; idempotent."""

    def discard(self) -> None:
        """The output is in place: drop what was kept to resume it."""


class GDALWriter:
    """Writes blocks into a rasterio dataset, opened at the first block.

    Masked blocks: masked pixels become nodata, or, when the output has no
    nodata, go to an internal per-dataset mask (the windows written before
    the first masked block are then marked valid); a block whose bands are
    masked differently is then refused (``StoreError``).

    Parameters
    ----------
    profile : dict
        Creation profile; a ``driver="COG"`` profile, or one of a driver GDAL
        writes only by CreateCopy (PNG, JPEG, WEBP, JP2OpenJPEG...), is written
        as a tiled GeoTIFF and copied to the output by :meth:`close`.  Creation
        options the driver does not list are left out.
    temporary : callable
        Returns a new temporary path for each intermediate file this writer makes.
    staged : callable, optional
        Returns the path of the output itself, with its own name, in a private
        directory whose every file is published (GDAL's side-cars named after
        it); default ``temporary``.
    dataset : rasterio.io.DatasetWriter, optional
        An open dataset to write into instead (neither closed nor moved).
    metadata : Metadata, optional
        Set on the dataset when it is opened (for a COG, on the intermediate:
        GDAL's CreateCopy carries it into the COG).
    """

    def __init__(self, profile: dict, temporary: Callable[[], str], *,
                 staged: Callable[[], str] | None = None,
                 dataset: DatasetWriter | None = None, metadata: Metadata | None = None):
        self._cog_options = self._copy_options = None
        self._driver = str(profile.get("driver", "GTiff"))
        if routes.is_cog(profile):
            self._profile, self._cog_options = routes.cog_split(profile)
        elif dataset is None and routes.is_copied(profile):
            self._profile, self._copy_options = routes.copied_split(profile)
        else:
            self._profile = drivers.supported(profile)
        self._temporary = temporary
        self._staged = staged or temporary
        self._dataset = dataset
        self._owned = dataset is None
        self._metadata = metadata
        self._path: str | None = None
        self._nodata = profile.get("nodata")
        self._mask_made = False
        self._unmasked: list[Window] = []
        self._late_tags: list[dict[str, str]] = []
        #: Called with a message before a long finishing step (the COG pass).
        self.on_finish: Callable[[str], None] | None = None

    def from_workers(self, scheduler: str, client: Any, beside: str) -> bool:
        """Never: one GDAL dataset, in this process, takes every block."""
        return False

    def discard(self) -> None:
        """Nothing is kept to resume a GDAL dataset's write."""

    def publish(self) -> None:
        """Nothing: the finished file is moved into place by the store."""

    def _open(self) -> DatasetWriter:
        if self._dataset is None or self._metadata:
            if self._dataset is None:
                intermediate = self._cog_options is not None or self._copy_options is not None
                self._path = self._temporary() if intermediate else self._staged()
                self._dataset = rasterio.open(self._path, "w", **self._profile)
            if self._metadata:
                self._metadata.apply(self._dataset)
                self._metadata = None  # (set once)
        return self._dataset

    def write(self, block: np.ndarray, window: Window) -> None:
        dataset = self._open()
        if not isinstance(block, np.ma.MaskedArray):
            dataset.write(block, window=window)
            if self._mask_made:
                dataset.write_mask(np.full(block.shape[1:], 255, "uint8"), window=window)
            elif self._nodata is None:
                self._unmasked.append(window)
            return
        mask = np.ma.getmaskarray(block)
        if self._nodata is not None:
            dataset.write(block.filled(self._nodata), window=window)
            return
        valid = dataset_mask(mask, f"window {window!r}")  # (bands masked alike, or refused)
        dataset.write(block.filled(0), window=window)
        if not self._mask_made:
            self._mask_made = True
            with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
                for earlier in self._unmasked:
                    shape = (int(earlier.height), int(earlier.width))
                    dataset.write_mask(np.full(shape, 255, "uint8"), window=earlier)
            self._unmasked = []
        dataset.write_mask(valid, window=window)

    def add_band_tags(self, tags: list[dict[str, str]]) -> None:
        """Set on the dataset by :meth:`close` (for a COG, on the intermediate:
        GDAL's COG driver copies them)."""
        self._late_tags = list(tags)

    def _set_late_tags(self, dataset: DatasetWriter) -> None:
        for band, tags in enumerate(self._late_tags, 1):
            if tags:
                dataset.update_tags(band, **tags)
        self._late_tags = []

    def close(self) -> str | None:
        if not self._owned:
            if self._metadata or self._late_tags:  # (no block came: set it all the same)
                self._set_late_tags(self._open())
            return None
        dataset = self._open()  # an empty array still makes a (blank) raster
        self._set_late_tags(dataset)
        with remote.GDALFailures() as failures:  # (tiles compressed as the file closes)
            dataset.close()
        _raise_failure(failures)
        if self._copy_options is not None:
            if self.on_finish is not None:
                self.on_finish(f"making the {self._driver} output")
            finished = self._staged()
            with remote.GDALFailures() as failures:
                copied.finish(self._path, finished, self._driver, self._copy_options)
            _raise_failure(failures)
            with contextlib.suppress(OSError):  # (room for what comes next)
                os.remove(self._path)
            return finished
        if self._cog_options is None:
            return self._path
        if self.on_finish is not None:
            self.on_finish("making the Cloud Optimized GeoTIFF (overviews)")
        finished = self._staged()
        with remote.GDALFailures() as failures:
            cog.finish(self._path, finished, self._cog_options)
        _raise_failure(failures)
        return finished

    def abort(self) -> None:
        if self._owned and self._dataset is not None and not self._dataset.closed:
            self._dataset.close()


def _raise_failure(failures: remote.GDALFailures) -> None:
    """Raise GDAL's failure that rasterio did not (a tile that could not be
    compressed as the file was flushed): the output would be missing tiles."""
    message = failures.failed()
    if message is not None:
        raise RasterioIOError(message)
