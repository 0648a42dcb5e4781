"""Multipart uploads to object storage, part by part from the workers.

GDAL (3.10 and later) has a multipart upload API (``VSIMultipartUpload*``)
that rasterio does not wrap: it is called here through the GDAL library
rasterio already loaded (:func:`riomucho_dask.gdal_c.library`), so a
part is uploaded with the same credentials, endpoint and options as
everything else GDAL does in the ``rasterio.Env`` (captured with the graph
and re-entered on the workers).  No other package is needed.

The client starts an upload (:func:`start`), the workers upload parts
(:meth:`Upload.add`, in :func:`upload_part` tasks), the client completes it
(:meth:`Upload.complete`) or aborts it (:meth:`Upload.abort`): the object
appears only when complete; until then an object already at the key is
untouched.

GDAL numbers the parts it completes 1, 2, ... n in the order of the part
identifiers it is given: parts must be numbered without gaps, every part but
the last at least the store's minimum (5 MiB on S3).
"""

from __future__ import annotations

import ctypes
import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ... import gdal_options, timings
from ...errors import OutputPathError, StoreError
from ...gdal_c import last_error, library
from ...paths import vsi_path
from . import Part

__all__ = ["Upload", "Remote", "start", "describe", "upload_part"]

#: GDAL file systems whose multipart uploads are S3's (numbered parts, any
#: order, in parallel); the others keep the scratch-space route.
SYSTEMS = {"vsis3"}


@functools.lru_cache(maxsize=1)
def _lib():
    """GDAL's C library with the multipart functions typed, or None (not found,
    or a GDAL older than 3.10)."""
    lib = library()
    if lib is None:
        return None
    try:
        c_str, c_void, c_size = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t
        lib.VSIMultipartUploadGetCapabilities.argtypes = (
            [c_str] + [ctypes.POINTER(ctypes.c_int)] * 3 + [ctypes.POINTER(c_size)] * 2
            + [ctypes.POINTER(ctypes.c_int)])
        lib.VSIMultipartUploadGetCapabilities.restype = ctypes.c_int
        lib.VSIMultipartUploadStart.argtypes = [c_str, c_void]
        lib.VSIMultipartUploadStart.restype = c_void
        lib.VSIMultipartUploadAddPart.argtypes = [c_str, c_str, ctypes.c_int, ctypes.c_uint64,
                                                  c_str, c_size, c_void]
        lib.VSIMultipartUploadAddPart.restype = c_void
        lib.VSIMultipartUploadEnd.argtypes = [c_str, c_str, c_size, ctypes.POINTER(c_str),
                                              ctypes.c_uint64, c_void]
        lib.VSIMultipartUploadEnd.restype = ctypes.c_int
        lib.VSIMultipartUploadAbort.argtypes = [c_str, c_str, c_void]
        lib.VSIMultipartUploadAbort.restype = ctypes.c_int
        lib.VSIFree.argtypes = [c_void]
    except AttributeError:
        return None
    return lib


def _taken(lib, pointer) -> str | None:
    """The C string GDAL returned (freed here), or None for a null pointer."""
    if not pointer:
        return None
    try:
        return ctypes.string_at(pointer).decode()
    finally:
        lib.VSIFree(pointer)


@dataclass(frozen=True)
class Upload:
    """One multipart upload to ``path`` (a /vsi path), started by :func:`start`.

    Travels to the workers: it holds the captured GDAL options (credentials
    apart, never shown) that each part is uploaded with.  A
    :class:`~riomucho_dask.write.sinks.PartsSink`: ``upload(number, data)``
    uploads a part, :meth:`finalise` completes the upload, :meth:`abort`
    drops it.
    """

    path: str
    upload_id: str = field(repr=False)
    env: gdal_options.GDALOptions = field(repr=False)
    min_part: int = 5 * 2**20
    max_part: int = 5 * 2**30
    max_parts: int = 10000

    def add(self, number: int, data: bytes) -> str:
        """Upload ``data`` as part ``number`` (1, 2, ...); return its identifier."""
        lib = _lib()
        with gdal_options.env(self.env):
            lib.CPLErrorReset()
            etag = _taken(lib, lib.VSIMultipartUploadAddPart(
                self.path.encode(), self.upload_id.encode(), number, 0, data, len(data), None))
            if etag is None:
                raise OutputPathError(f"uploading part {number} of {self.path!r} "
                                      f"({len(data)} bytes) failed: {last_error(lib)}")
        return etag

    def __call__(self, number: int, data: bytes) -> Part:
        """Upload ``data`` as part ``number`` (:meth:`add`)."""
        return Part(number, self.add(number, data), 0, len(data))

    def finalise(self, parts: Sequence[Part]) -> None:
        """Complete the upload of ``parts`` (numbered 1 to n): the object appears."""
        parts = sorted(parts)
        self.complete([part.ref for part in parts], sum(part.size for part in parts))

    def complete(self, etags: list[str], size: int) -> None:
        """Make the object of the parts ``etags`` (parts 1, 2, ..., in order)."""
        lib = _lib()
        ids = (ctypes.c_char_p * len(etags))(*[etag.encode() for etag in etags])
        with gdal_options.env(self.env):
            lib.CPLErrorReset()
            if not lib.VSIMultipartUploadEnd(self.path.encode(), self.upload_id.encode(),
                                             len(etags), ids, size, None):
                raise OutputPathError(f"completing the upload of {self.path!r} failed: "
                                      f"{last_error(lib)}")

    def abort(self) -> bool:
        """Abort the upload (its parts are dropped); whether the store agreed."""
        lib = _lib()
        with gdal_options.env(self.env):
            return bool(lib.VSIMultipartUploadAbort(self.path.encode(),
                                                    self.upload_id.encode(), None))


def start(path: str, env: gdal_options.GDALOptions) -> Upload | None:
    """Start a multipart upload to ``path`` (a URL or /vsi path) in ``env``;
    None where this GDAL cannot (no multipart API, another file system, parts
    that must go in order)."""
    target = vsi_path(path)
    if target.split("/")[1] not in SYSTEMS:
        return None
    lib = _lib()
    if lib is None:
        return None
    flags = [ctypes.c_int() for _ in range(3)]
    smallest, largest, count = ctypes.c_size_t(), ctypes.c_size_t(), ctypes.c_int()
    with gdal_options.env(env):
        if not lib.VSIMultipartUploadGetCapabilities(target.encode(), *flags, smallest,
                                                     largest, count):
            return None
        if not (flags[0].value and flags[1].value and flags[2].value):
            return None  # (non-sequential, parallel, abortable: all needed)
        lib.CPLErrorReset()
        upload_id = _taken(lib, lib.VSIMultipartUploadStart(target.encode(), None))
        if upload_id is None:
            raise OutputPathError(f"starting the upload of {path!r} failed: "
                                  f"{last_error(lib)}")
    return Upload(target, upload_id, env, min_part=max(1, smallest.value) * 2**20,
                  max_part=(largest.value or 5120) * 2**20, max_parts=count.value or 10000)


@dataclass
class Remote:
    """Where a chunk's tiles are: in the memory of a cluster worker (``future``),
    with their sizes (what :func:`describe` sends back)."""

    sizes: tuple
    mask_sizes: tuple | None
    future: object = None

    @property
    def nbytes(self) -> int:
        return sum(self.sizes) + sum(self.mask_sizes or ())


def _item(result):
    """The one object of an encoding task's result array (or the object itself)."""
    if isinstance(result, np.ndarray) and result.dtype == object:
        return result.item()
    return result


def describe(tiles):
    """``tiles`` (an encoding task's result: one object in an array) without
    their bytes: only the sizes travel to the client."""
    from dataclasses import replace

    tiles = _item(tiles)
    if tiles.data is None:  # (in a part file: not what an upload from the workers takes)
        raise StoreError("tiles to upload from the workers were written to a part file")
    sizes = tuple(map(len, tiles.data))
    mask = None if tiles.mask is None else tuple(map(len, tiles.mask))
    return replace(tiles, data=None, mask=None, part=Remote(sizes, mask))


def upload_part(upload: Upload, number: int, head: bytes, chunks: list, pieces: list,
                tail: bytes, framed: bool, skip: int = 0,
                take: int | None = None) -> Part:
    """Upload part ``number``: ``head``, then tiles of ``chunks``
    (:class:`~riomucho_dask.write.tiff.codec.Tiles`), ``pieces`` saying which, in
    order, as ``(chunk, is_mask, first, stop, sizes)`` slices of its tile (or
    mask tile) list with the sizes the header was laid out with, then ``tail``.
    ``framed``: each tile with its size before and its last 4 bytes after (a
    COG's leader and trailer).  ``skip`` and ``take``: only ``take`` bytes of
    that, from ``skip`` (a part cut from a longer run).
    Runs on a worker; returns the :class:`~riomucho_dask.write.sinks.Part`."""
    out = [head]
    for chunk, is_mask, first, stop, sizes in pieces:
        held = _item(chunks[chunk])
        tiles = held.mask if is_mask else held.data
        if tuple(map(len, tiles[first:stop])) != tuple(sizes):
            raise StoreError(
                f"tiles at tile row {held.row}, column {held.col} of level {held.level} "
                "were computed again (a worker was lost) with other sizes than the first "
                "time: the run function is not deterministic, or the workers' codecs "
                f"differ; part {number} of {upload.path!r} is not uploaded")
        for tile in tiles[first:stop]:
            if framed:
                out += [struct.pack("<I", len(tile)), tile, tile[-4:].rjust(4, b"\0")]
            else:
                out.append(tile)
    out.append(tail)
    data = b"".join(out)
    del out
    if skip or take is not None:
        data = data[skip:None if take is None else skip + take]
    with timings.timed("upload"):
        return upload(number, data)
