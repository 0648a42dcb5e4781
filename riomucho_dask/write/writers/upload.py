"""Outputs on object storage uploaded from the workers, as parts of one upload.

On a ``dask.distributed`` cluster, an output on S3 (a tiled GeoTIFF or a
COG encoded in the tasks) is not written in the client's scratch space:

- each encoding task keeps its tiles in its worker's memory; only their
  sizes travel to the client (:func:`~riomucho_dask.write.sinks.multipart.describe`);
- as the tiles that come next in the file arrive, the client groups them
  into parts of at least ``riomucho_dask.part-bytes`` (never less than the
  store's minimum, 5 MiB on S3) and a task on a worker fetches them from
  the workers that hold them and uploads the part;
- at the end the client lays out the header (the TIFF header and IFDs: the
  tiles' offsets), a worker uploads it with the tiles held for part 1,
  and the client completes the upload.  On any failure it is aborted: no
  object, an object already at the key untouched.

GDAL numbers parts 1 ... n in file order, so a part can only be uploaded
once every byte before it in the file is known.  A tiled GeoTIFF's tiles
go in arrival order (its IFDs say where each is), so parts leave as soon as
they are full.  A COG's order is fixed (GDAL's layout, bit for bit the same
as a local COG): the full resolution's parts leave row of tiles by row of
tiles; the header and the overview levels, which come first in the file but
are known last, make parts 1 ... k (k as the store's largest part needs),
uploaded at the end (the overview tiles, about a third of the full
resolution's size, wait in the workers' memory until then; distributed
spills them to the workers' disks if it must).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from dask.base import tokenize

from ... import config
from ...errors import RioMuchoDaskWarning, StoreError
from ..journal import Entry
from ..sinks import Part, multipart
from ..spec.layout import Encoding
from ..spec.metadata import Metadata
from ..tiff import ifd as tiff
from ..tiff.codec import Tiles
from .tiled import TiledWriter

__all__ = ["MultipartWriter", "for_output"]

def for_output(path: str, profile: dict, encoding: Encoding, env: Any, client: Any,
               masked: bool = False, metadata: Metadata | None = None) -> MultipartWriter | None:
    """A :class:`MultipartWriter` uploading to ``path`` from ``client``'s
    workers, its upload started; None where it cannot be (another file system,
    a GDAL without the multipart API, a COG that may need an internal mask:
    ``masked`` blocks and no nodata)."""
    if encoding.cog and masked and encoding.nodata is None:
        return None
    upload = multipart.start(path, env)
    if upload is None:
        return None
    return MultipartWriter(profile, encoding, upload, client, metadata)


class _Run:
    """Tiles that come one after the other in the file, to go into one part."""

    def __init__(self) -> None:
        #: (tiles, is_mask, first, stop, bytes in the file): a slice of a chunk's tiles
        self.pieces: list[tuple[Tiles, bool, int, int, int]] = []
        self.nbytes = 0

    def add(self, tiles: Tiles, is_mask: bool, first: int, stop: int, framed: bool) -> None:
        """Add tiles ``first:stop`` of ``tiles`` (its mask tiles with ``is_mask``),
        each with a leader and a trailer when ``framed`` (a COG)."""
        if stop > first:
            sizes = (tiles.part.mask_sizes if is_mask else tiles.part.sizes)[first:stop]
            nbytes = sum(sizes) + (8 * len(sizes) if framed else 0)
            self.pieces.append((tiles, is_mask, first, stop, nbytes))
            self.nbytes += nbytes

    def extend(self, other: _Run) -> None:
        self.pieces += other.pieces
        self.nbytes += other.nbytes


def _unavailable() -> str:
    raise StoreError("an output uploaded from the workers makes no temporary file")


class MultipartWriter(TiledWriter):
    """Places encoded tiles held by cluster workers into parts of one multipart
    upload (see the module).

    Parameters
    ----------
    profile : dict
        The output's profile.
    encoding : Encoding
        How the tiles were encoded (a tiled GeoTIFF or a COG).
    upload : multipart.Upload
        The upload, started.
    client : distributed.Client
        Whose workers hold the tiles and upload the parts.
    metadata : Metadata, optional
        Written into the output's first IFD (as :class:`TiledWriter`).
    """

    def __init__(self, profile: dict, encoding: Encoding, upload: multipart.Upload,
                 client: Any, metadata: Metadata | None = None):
        super().__init__(profile, encoding, _unavailable, metadata=metadata)
        self._upload = upload
        self._client = client
        self._cog = encoding.cog
        levels = self._levels
        tiles = sum(level.sizes.size for level in levels)
        raw = sum(level.height * level.width for level in levels) * encoding.count \
            * np.dtype(encoding.dtype).itemsize
        # parts of at least the store's minimum, few enough for its count
        self._part_bytes = max(int(config.get("part-bytes")), upload.min_part,
                               math.ceil((raw * 1.1 + 8 * tiles) / (upload.max_parts - 2)))
        # A COG's head (header, overview levels, the first full-resolution tiles)
        # comes first in the file but is known last: parts 1 .. head_parts, uploaded
        # at the end, each no larger than the store's largest part.
        overview_raw = (raw - levels[0].height * levels[0].width * encoding.count
                        * np.dtype(encoding.dtype).itemsize)
        self._head_parts = max(1, math.ceil(overview_raw * 1.02 / (upload.max_part * 0.9))) \
            if self._cog else 1
        # (held back for the head: at least the store's minimum for each of its parts)
        self._first_bytes = max(self._part_bytes, self._head_parts * upload.min_part)
        self._next = self._head_parts + 1
        self._first: _Run | None = None  # the tiles of part 1, held until the end
        self._run = _Run()  # tiles in file order, not yet in a part
        self._parts: dict[int, Any] = {}  # number -> future of (number, id, size)
        self._done: list[Part] = []
        self._aborted = False
        self._token = tokenize(upload.path, upload.upload_id)
        self._end = 0 if self._cog else tiff.HEADER_SIZE[True]
        self._data = 0  # tile bytes (without leaders and trailers)
        # COG: chunks by level, and tile columns arrived in each full-resolution row
        self._chunks: list[dict[tuple[int, int], Tiles]] = [{} for _ in levels]
        self._arrived = np.zeros(levels[0].sizes.shape[1], "int64")
        self._cursor = 0  # the next full-resolution tile row to go into a part

    def from_workers(self, scheduler: str, client: Any, beside: str) -> bool:
        return True

    # -- tiles arriving (their sizes; the bytes stay on the workers) -----------
    def write(self, tiles: Tiles, window: Any = None) -> None:
        if not isinstance(tiles, Tiles) or not isinstance(tiles.part, multipart.Remote):
            raise StoreError(f"this output takes tiles held by the workers, not "
                             f"{type(tiles).__name__} (window {window!r})")
        self._check_parts()
        remote = tiles.part
        if self._cog and remote.mask_sizes is not None:
            raise StoreError(
                "a COG uploaded from the workers got masked pixels and has no nodata: its "
                "mask tiles would have to be in parts already uploaded.  Give the output a "
                "nodata, or set riomucho_dask.upload-parts to False (written in scratch "
                "space, then uploaded)")
        entry = Entry(tiles.level, tiles.row, tiles.col, tiles.rows, tiles.cols, self._end,
                      remote.sizes, remote.mask_sizes, 0)
        self._levels[tiles.level].place(entry)
        self._data += entry.end - entry.start
        if not self._cog:  # tiles in arrival order: they go next
            self._end = entry.end
            self._masked |= remote.mask_sizes is not None
            self._run.add(tiles, False, 0, len(remote.sizes), framed=False)
            if remote.mask_sizes is not None:
                self._run.add(tiles, True, 0, len(remote.mask_sizes), framed=False)
            self._flush()
            return
        self._chunks[tiles.level][tiles.row, tiles.col] = tiles
        if tiles.level == 0:
            self._arrived[tiles.row:tiles.row + tiles.rows] += tiles.cols
            self._advance()

    def _row_pieces(self, level: int, row: int, into: _Run) -> None:
        """Add tile row ``row`` of ``level`` (all its chunks arrived) to ``into``."""
        held = self._chunks[level]
        covering = sorted((col, tiles) for (first, col), tiles in held.items()
                          if first <= row < first + tiles.rows)
        for _, tiles in covering:
            start = (row - tiles.row) * tiles.cols
            into.add(tiles, False, start, start + tiles.cols, framed=True)

    def _advance(self) -> None:
        """Move every full-resolution tile row now complete, in order, into parts."""
        level = self._levels[0]
        width = level.sizes.shape[2]
        rows = len(self._arrived)
        while self._cursor < rows and self._arrived[self._cursor] == width:
            self._row_pieces(0, self._cursor, self._run)
            self._cursor += 1
            held = self._chunks[0]
            for place in [p for p, t in held.items() if t.row + t.rows <= self._cursor]:
                del held[place]  # (its last row is in a run: the run holds it now)
            self._flush()

    def _flush(self) -> None:
        """The run in a part once it is large enough (the first one held for part 1)."""
        if self._first is None:
            if self._run.nbytes < self._first_bytes:
                return
            self._first = self._run
        elif self._run.nbytes < self._part_bytes or self._next >= self._upload.max_parts:
            return
        else:
            self._submit(self._run, self._next)
            self._next += 1
        self._run = _Run()

    def _submit(self, run: _Run, number: int, head: bytes = b"", tail: bytes = b"",
                skip: int = 0, take: int | None = None) -> None:
        index: dict[int, int] = {}
        chunks, pieces = [], []
        for tiles, is_mask, first, stop, _ in run.pieces:
            if id(tiles) not in index:
                index[id(tiles)] = len(chunks)
                chunks.append(tiles.part.future)
            sizes = (tiles.part.mask_sizes if is_mask else tiles.part.sizes)[first:stop]
            pieces.append((index[id(tiles)], is_mask, first, stop, sizes))
        self._parts[number] = self._client.submit(
            multipart.upload_part, self._upload, number, head, chunks, pieces, tail,
            self._cog, skip, take, key=f"upload-part-{number}-{self._token}", priority=10)

    def _submit_head(self, run: _Run, head: bytes, parts: int, tail: bytes = b"") -> None:
        """Upload ``head`` + ``run`` + ``tail`` as parts 1 .. ``parts``, split into
        byte ranges of equal size (each no smaller than the store's minimum: the
        run held enough for that)."""
        if parts == 1:
            self._submit(run, 1, head=head, tail=tail)
            return
        total = len(head) + run.nbytes + len(tail)
        bounds = [total * n // parts for n in range(parts + 1)]
        # where each piece starts in the head (after the header bytes)
        starts, at = [], len(head)
        for *_, nbytes in run.pieces:
            starts.append(at)
            at += nbytes
        for number in range(1, parts + 1):
            lo, hi = bounds[number - 1], bounds[number]
            piece_run, first_start = _Run(), None
            for start, piece, end in zip(starts, run.pieces, starts[1:] + [at]):
                if end > lo and start < hi:
                    piece_run.pieces.append(piece)
                    first_start = start if first_start is None else first_start
            part_head = head if lo < len(head) else b""
            part_tail = tail if hi > at else b""
            begin = 0 if part_head else (first_start if first_start is not None else at)
            self._submit(piece_run, number, head=part_head, tail=part_tail,
                         skip=lo - begin, take=hi - lo)

    def _check_parts(self) -> None:
        """Raise the first failure of a part uploaded so far."""
        for number, future in list(self._parts.items()):
            if future.status == "error":
                future.result()  # (raises the worker's error)
            if future.status == "finished":
                self._done.append(future.result())
                del self._parts[number]

    # -- finishing ------------------------------------------------------------
    def close(self) -> None:
        self._check_parts()  # (a part that failed: no more uploads)
        self._check_complete()
        ifds, valid = self._ifds()
        if self._cog:
            if self.on_finish is not None:
                self.on_finish("uploading the Cloud Optimized GeoTIFF's header and overviews")
            head, _ = self._cog_head(ifds, self._data)
            first = _Run()
            for level in range(len(self._levels) - 1, 0, -1):
                for row in range(self._levels[level].sizes.shape[1]):
                    self._row_pieces(level, row, first)
            head_tail = (head, b"")
        else:
            extra = valid if self._fill_masks(valid) else b""
            end = self._end
            header, at, ifds_bytes = self._gtiff_tail(ifds)
            head_tail = (header.ljust(tiff.HEADER_SIZE[True], b"\0"),
                         extra + b"\0" * (at - end) + ifds_bytes)
            first = _Run()
        if self._first is not None:
            first.extend(self._first)
            self._submit_head(first, head_tail[0], self._head_parts)
            if self._run.pieces or head_tail[1]:
                self._submit(self._run, self._next, tail=head_tail[1])
        else:  # everything in the head: as few parts as its size allows
            first.extend(self._run)
            size = len(head_tail[0]) + first.nbytes + len(head_tail[1])
            parts = max(1, min(self._head_parts, size // self._upload.min_part))
            self._submit_head(first, head_tail[0], parts, tail=head_tail[1])
        self._run, self._first = _Run(), None
        self._chunks = [{} for _ in self._levels]
        self._done += self._client.gather(list(self._parts.values()))
        self._parts.clear()
        self._done.sort()
        numbers = [part.number for part in self._done]
        if numbers != list(range(1, len(numbers) + 1)):
            raise StoreError(f"the parts uploaded are not numbered 1 to n: {numbers}")
        return None

    def publish(self) -> None:
        """Complete the upload: the object appears."""
        self._upload.finalise(self._done)

    def abort(self) -> None:
        """Wait for the parts under way (their tiles are computed) and abort
        the upload (no object; one already at the key untouched); idempotent."""
        if self._aborted:
            return
        self._aborted = True
        futures = list(self._parts.values())
        self._parts.clear()
        self._run, self._first = _Run(), None
        self._chunks = [{} for _ in self._levels]
        try:
            if futures:  # (parts under way finish first: none lands after the abort)
                from distributed import wait

                with self._client.as_current():
                    wait(futures, timeout=120)
        except Exception:  # (a timeout: abort anyway)
            pass
        finally:
            if not self._upload.abort():
                warnings.warn(RioMuchoDaskWarning(
                    f"the multipart upload to {self._upload.path!r} could not be aborted: "
                    "its parts stay (and are billed) until a lifecycle rule for incomplete "
                    "multipart uploads removes them"), stacklevel=2)

    def discard(self) -> None:
        """Nothing is kept to resume an upload from the workers."""

