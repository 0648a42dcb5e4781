"""The writer of tiles encoded on the workers: it only places bytes.

:class:`TiledWriter` receives :class:`~riomucho_dask.write.tiff.codec.Tiles`
in any order and appends their bytes to a file as they come, so blocks
waiting for their turn wait compressed, on disk, not in memory.

- A tiled GeoTIFF is written in one pass: the tiles in arrival order after
  the header, then the IFDs (full resolution, then the internal mask if
  any) and their tags, which are GDAL's own (georeferencing, nodata,
  codec, predictor), taken from a one-tile file GDAL writes for the
  output's profile.
- A Cloud Optimized GeoTIFF is laid out as GDAL's COG driver lays it out:
  header, GDAL's structural metadata, every IFD (full resolution, its
  mask, the overviews, their masks), then the tiles, smallest overview
  first, each with its 4-byte size before and its last 4 bytes after,
  mask tiles right after their image tiles.  The tiles spooled in arrival
  order are copied once into that order: no decoding, no compression.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import ProfileError, StoreError
from ..journal import Entry, Journal
from ..sinks.parts import PartSink, copy_range
from ..spec.layout import Encoding
from ..spec.metadata import Metadata
from ..tiff import codec
from ..tiff import ifd as tiff
from ..tiff.codec import Tiles

__all__ = ["TiledWriter"]

#: Files up to this size stay classic TIFF (unless BIGTIFF=YES).
CLASSIC_LIMIT = 2**32 - 2**16

_COPY = 8 * 2**20


def structural_metadata(mask: bool) -> bytes:
    """GDAL's COG "ghost" header: the layout promises readers may rely on."""
    body = ("LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n"
            "BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ")
    if mask:
        body += "MASK_INTERLEAVED_WITH_IMAGERY=YES\n"
    return f"GDAL_STRUCTURAL_METADATA_SIZE={len(body):06d} bytes\n{body}".encode()


class _Level:
    """Where each tile of one level (and of its mask) sits in the spool."""

    def __init__(self, height: int, width: int, block: tuple[int, int], planes: int):
        self.height, self.width = height, width
        grid = (planes, -(-height // block[0]), -(-width // block[1]))
        self.offsets = np.zeros(grid, "int64")
        self.sizes = np.full(grid, -1, "int64")
        self.mask_offsets: np.ndarray | None = None
        self.mask_sizes: np.ndarray | None = None

    def place(self, entry: Entry) -> None:
        """Record the chunk of tiles ``entry`` says are in the spool."""
        rows = slice(entry.row, entry.row + entry.rows)
        cols = slice(entry.col, entry.col + entry.cols)
        shape = (-1, entry.rows, entry.cols)
        sizes = np.array(entry.sizes, "int64")
        self.sizes[:, rows, cols] = sizes.reshape(shape)
        self.offsets[:, rows, cols] = (entry.start + np.cumsum(sizes) - sizes).reshape(shape)
        if entry.mask_sizes is not None:
            end = entry.start + int(sizes.sum())
            if self.mask_sizes is None:
                self.mask_offsets = np.zeros(self.sizes.shape[1:], "int64")
                self.mask_sizes = np.full(self.sizes.shape[1:], -1, "int64")
            sizes = np.array(entry.mask_sizes, "int64")
            self.mask_sizes[rows, cols] = sizes.reshape(shape[1:])
            self.mask_offsets[rows, cols] = (end + np.cumsum(sizes) - sizes).reshape(shape[1:])


class TiledWriter:
    """Places encoded tiles into a tiled GeoTIFF or a COG (see the module).

    Parameters
    ----------
    profile : dict
        The output's profile (size, CRS, transform...).
    encoding : Encoding
        How the tiles were encoded (:func:`~riomucho_dask.write.spec.layout.for_profile`).
    temporary : callable
        Returns a new temporary path for each file this writer makes.
    journal : Journal, optional
        Spool the tiles in the journal's file and journal each chunk once
        its bytes are written; start from the chunks it already holds
        (``to_raster(..., resume=True)``).
    sink : PartSink, optional
        The sink of the graph's encoding tasks: where :meth:`from_workers`
        may send the workers' tiles (part files).
    metadata : Metadata, optional
        Set on the one-tile file the IFDs are taken from, so the output has
        GDAL's own tags for it (on the full-resolution IFD; the palette on
        every level, as GDAL's COG driver).
    """

    def __init__(self, profile: dict, encoding: Encoding, temporary: Callable[[], str],
                 journal: Journal | None = None, sink: PartSink | None = None,
                 metadata: Metadata | None = None):
        self._profile = profile
        self._metadata = metadata
        self._encoding = encoding
        self._temporary = temporary
        self._journal = journal
        self._sink = sink
        shapes = encoding.shapes(int(profile["height"]), int(profile["width"]))
        self._levels = [_Level(h, w, encoding.block, encoding.planes) for h, w in shapes]
        self._path: str | None = None
        self._end = 0
        self._masked = encoding.mask  # (an internal mask, all valid if nothing is masked)
        for entry in journal.entries.values() if journal is not None else ():
            self._levels[entry.level].place(entry)
            self._masked |= entry.mask_sizes is not None
        #: Called with a message before a long finishing step (the COG layout).
        self.on_finish: Callable[[str], None] | None = None

    def from_workers(self, scheduler: str, client: Any, beside: str) -> bool:
        """On other processes (``"processes"``, or ``"distributed"`` when every
        worker sees the directory), the encoding tasks append their tiles to
        part files beside ``beside`` and send back only where they are."""
        if self._sink is None or scheduler not in ("processes", "distributed"):
            return False
        try:
            directory = self._sink.use(beside)
        except OSError:
            return False  # (an unwritable place: the output's own error says so)
        if client is not None:
            try:
                seen = client.run(os.path.isdir, directory)
            except Exception:
                seen = {}
            if not seen or not all(seen.values()):  # workers elsewhere: tiles come back
                self._sink.remove()
                return False
        return True

    def _start(self) -> str:
        # The file is opened for each append only: a writer dropped at any
        # point holds no open file.
        if self._path is None:
            header = 0 if self._encoding.cog else tiff.HEADER_SIZE[True]
            if self._journal is not None:
                self._path = self._journal.spool
                self._journal.open(header)
                self._end = self._journal.end
                if self._end > header:  # resumed: the header room is there
                    return self._path
            else:
                self._path = self._temporary()
            with _open_new(self._path) as spool:
                spool.write(b"\0" * header)  # room for either header, written last
                self._end = spool.tell()
        return self._path

    def write(self, tiles: Tiles, window: Any = None) -> None:
        if not isinstance(tiles, Tiles):
            raise StoreError(
                f"this output takes tiles encoded by its graph, not a {type(tiles).__name__} "
                f"(window {window!r})"
            )
        part = tiles.part
        with _open_new(self._start()) as spool:
            spool.seek(self._end)
            if part is not None:  # written by the worker: copied file to file
                copy_range(part.path, part.offset, part.nbytes, spool)
            else:
                spool.writelines(tiles.data)
                spool.writelines(tiles.mask or ())
        if part is not None:
            sizes, mask_sizes, crc = part.sizes, part.mask_sizes, part.crc
        else:
            sizes = tuple(map(len, tiles.data))
            mask_sizes = None if tiles.mask is None else tuple(map(len, tiles.mask))
            crc = 0
            if self._journal is not None:
                for chunk in [*tiles.data, *(tiles.mask or ())]:
                    crc = zlib.crc32(chunk, crc)
        entry = Entry(tiles.level, tiles.row, tiles.col, tiles.rows, tiles.cols, self._end,
                      sizes, mask_sizes, crc)
        self._levels[tiles.level].place(entry)
        self._end = entry.end
        self._masked |= mask_sizes is not None
        if self._journal is not None:
            self._journal.record(entry)

    # -- finishing ---------------------------------------------------------
    def add_band_tags(self, tags: list[dict[str, str]]) -> None:
        """Written with the metadata, into the full-resolution IFD's
        ``GDAL_METADATA`` (by GDAL, in the template :meth:`close` takes)."""
        self._metadata = (self._metadata or Metadata()).with_band_tags(tags)

    def _ifds(self) -> tuple[list[dict], bytes]:
        """(tags of each IFD in file order, tile offsets left to fill; the
        all-valid mask tile)."""
        profile = self._profile
        templates, valid = codec.template(self._encoding, profile.get("crs"),
                                          profile.get("transform"), self._masked, self._metadata)
        main = dict(templates[0])
        reduced = {tag: e for tag, e in main.items() if tag not in tiff.FULL_RESOLUTION_TAGS}
        reduced[tiff.NEW_SUBFILE_TYPE] = tiff.Entry.of(1, tiff.LONG)
        images = [main] + [dict(reduced) for _ in self._levels[1:]]
        masks = []
        if self._masked:
            mask = dict(templates[1])
            masks = [dict(mask)]
            masks += [{**mask, tiff.NEW_SUBFILE_TYPE: tiff.Entry.of(5, tiff.LONG)}
                      for _ in self._levels[1:]]
        for tags, level in zip(images + masks, self._levels + self._levels):
            tags[tiff.IMAGE_WIDTH] = tiff.Entry.of(level.width, tiff.LONG)
            tags[tiff.IMAGE_LENGTH] = tiff.Entry.of(level.height, tiff.LONG)
        return images + masks, valid

    def _check_complete(self) -> None:
        for n, level in enumerate(self._levels):
            missing = int((level.sizes < 0).sum())
            if missing:
                raise StoreError(f"{missing} tiles of level {n} were never written")

    def close(self) -> str | None:
        self._start()
        self._check_complete()
        ifds, valid = self._ifds()
        if self._fill_masks(valid):
            with open(self._path, "ab") as spool:
                spool.write(valid)
        if self._encoding.cog:
            if self.on_finish is not None:
                self.on_finish("laying out the Cloud Optimized GeoTIFF")
            return self._close_cog(ifds)
        return self._close_gtiff(ifds)

    def _fill_masks(self, valid: bytes) -> bool:
        """Point the mask tiles never written (levels or chunks without masked
        pixels) at one all-valid tile ``valid``, placed at the end of the tiles;
        whether it is needed (the output has a mask)."""
        if not self._masked:
            return False
        for level in self._levels:
            if level.mask_sizes is None:
                level.mask_offsets = np.zeros(level.sizes.shape[1:], "int64")
                level.mask_sizes = np.full(level.sizes.shape[1:], -1, "int64")
            missing = level.mask_sizes < 0
            level.mask_offsets[missing] = self._end
            level.mask_sizes[missing] = len(valid)
        self._end += len(valid)
        return True

    def _big(self, size: int) -> bool:
        choice = self._encoding.bigtiff
        if choice in ("yes", "true", "on", "1"):
            return True
        if size < CLASSIC_LIMIT:
            return False
        if choice in ("no", "false", "off", "0"):
            raise ProfileError(f"the output needs {size} bytes but bigtiff={choice!r}: a classic "
                               "TIFF cannot pass 4 GB")
        return True

    def _tile_entries(self, tags: dict, offsets: np.ndarray, sizes: np.ndarray, big: bool):
        kind = tiff.LONG8 if big else tiff.LONG
        tags[tiff.TILE_OFFSETS] = tiff.Entry.of(offsets.ravel(), kind)
        tags[tiff.TILE_BYTE_COUNTS] = tiff.Entry.of(sizes.ravel(), kind)

    def _close_gtiff(self, ifds: list[dict]) -> str:
        header, at, tail = self._gtiff_tail(ifds)
        with open(self._path, "r+b") as out:
            out.seek(at)
            out.write(tail)
            out.seek(0)
            out.write(header)
        return self._path

    def _gtiff_tail(self, ifds: list[dict]) -> tuple[bytes, int, bytes]:
        """(the header, where the IFDs go, the IFDs) of a tiled GeoTIFF whose
        tiles end at ``self._end``: the IFDs after them, on an even offset
        (full resolution, its overviews, then their masks, if any)."""
        at = self._end + (self._end & 1)
        pairs = [(level.offsets, level.sizes) for level in self._levels]
        if len(ifds) > len(pairs):
            pairs += [(level.mask_offsets, level.mask_sizes) for level in self._levels]
        tiles = sum(sizes.size for _, sizes in pairs)
        big = self._big(at + 4096 * len(ifds) + 8 * 2 * tiles)
        for tags, (offsets, sizes) in zip(ifds, pairs):
            self._tile_entries(tags, offsets, sizes, big)
        out, position = [], at
        for n, tags in enumerate(ifds):
            size = tiff.ifd_size(tags, big)
            last = n == len(ifds) - 1
            out.append(tiff.ifd_bytes(tags, position, big, 0 if last else position + size))
            position += size
        return tiff.header(big, at), at, b"".join(out)

    def _close_cog(self, ifds: list[dict]) -> str:
        head, order = self._cog_head(ifds, self._end)
        spooled = []
        for n, index, mask in order:
            level = self._levels[n]
            if mask:
                spooled.append((int(level.mask_offsets[index[1:]]),
                                int(level.mask_sizes[index[1:]])))
            else:
                spooled.append((int(level.offsets[index]), int(level.sizes[index])))
        path = self._temporary()
        with open(self._path, "rb") as spool, _open_new(path) as out:
            out.write(head)
            _copy_tiles(spool, out, spooled)
        if self._journal is None:  # (a resumable spool goes once the COG is in place)
            os.remove(self._path)
        return path

    def _cog_head(self, ifds: list[dict], data: int) -> tuple[bytes, list]:
        """(everything before the tiles: header, GDAL's structural metadata and
        every IFD; the tiles in file order as ``(level, index, is_mask)``) of a
        COG whose tiles take ``data`` bytes (without leaders and trailers)."""
        ghost = structural_metadata(self._masked)
        levels = self._levels
        tiles = sum(level.sizes.size * (2 if self._masked else 1) for level in levels)
        data += 8 * tiles  # with leaders and trailers
        big = self._big(data + 4096 + sum(tiff.ifd_size(t, False) for t in ifds) + 16 * tiles)
        head = tiff.HEADER_SIZE[big] + len(ghost)
        head += head & 1
        # The IFDs' sizes do not depend on the offsets they hold: set the
        # entries' types and counts first, then lay the data out after them.
        pairs = [(lvl.offsets, lvl.sizes) for lvl in levels]
        if self._masked:
            pairs += [(lvl.mask_offsets, lvl.mask_sizes) for lvl in levels]
        for tags, (offsets, sizes) in zip(ifds, pairs):
            self._tile_entries(tags, offsets, sizes, big)
        sizes_of = [tiff.ifd_size(tags, big) for tags in ifds]
        position = head + sum(sizes_of)
        # Final places: smallest overview first, row by row, mask after image.
        order = []
        final = [(np.zeros_like(lvl.offsets), None) for lvl in levels]
        if self._masked:
            final = [(f, np.zeros_like(lvl.mask_offsets)) for (f, _), lvl in zip(final, levels)]
        for n in range(len(levels) - 1, -1, -1):
            level, (image_at, mask_at) = levels[n], final[n]
            for index in np.ndindex(level.sizes.shape):
                size = int(level.sizes[index])
                image_at[index] = position + 4
                order.append((n, index, False))
                position += size + 8
                if mask_at is not None:
                    r, c = index[1:]
                    size = int(level.mask_sizes[r, c])
                    mask_at[r, c] = position + 4
                    order.append((n, index, True))
                    position += size + 8
        final_pairs = [(f, lvl.sizes) for (f, _), lvl in zip(final, levels)]
        if self._masked:
            final_pairs += [(m, lvl.mask_sizes) for (_, m), lvl in zip(final, levels)]
        for tags, (offsets, sizes) in zip(ifds, final_pairs):
            self._tile_entries(tags, offsets, sizes, big)
        if self._masked:  # GDAL's order: full resolution, its mask, overviews, their masks
            n = len(levels)
            ifds = [ifds[k] for k in [0, n, *range(1, n), *range(n + 1, 2 * n)]]
            sizes_of = [tiff.ifd_size(tags, big) for tags in ifds]
        out, at = [tiff.header(big, head), ghost.ljust(head - tiff.HEADER_SIZE[big], b"\0")], head
        for n, tags in enumerate(ifds):
            out.append(tiff.ifd_bytes(tags, at, big, 0 if n == len(ifds) - 1
                                      else at + sizes_of[n]))
            at += sizes_of[n]
        return b"".join(out), order

    def abort(self) -> None:
        """Nothing is held open but the journal; the store removes the temporary files
        (a resumable write's spool and journal stay)."""
        if self._journal is not None:
            self._journal.close()

    def publish(self) -> None:
        """Nothing: the finished file is moved into place by the store."""

    def discard(self) -> None:
        """The output is in place: a resumable write's spool and journal go."""
        if self._journal is not None:
            self._journal.discard()


def _open_new(path: str):
    """``path`` opened for writing, created if needed but not truncated: an empty
    temporary file truncated on open would be flushed to disk on close (ext4's
    replace-by-truncate heuristic), about 40 ms for nothing."""
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+b")


def _copy_tiles(spool, out, order: list[tuple[int, int]]) -> None:
    """Copy each (offset, size) tile of ``spool`` to ``out`` with GDAL's
    leader (its size) and trailer (its last 4 bytes again).

    The tiles go from file to file in the kernel (``copy_file_range``) where
    the platform has it, through a buffer otherwise.
    """
    out.flush()
    source, target = spool.fileno(), out.fileno()
    kernel = hasattr(os, "copy_file_range")
    pending: list[bytes] = []
    for offset, size in order:
        tail = _pread(source, min(4, size), offset + max(0, size - 4)).rjust(4, b"\0")
        if not kernel:
            pending += [struct.pack("<I", size), _pread(source, size, offset), tail]
            if sum(map(len, pending)) >= _COPY:
                os.write(target, b"".join(pending))
                pending = []
            continue
        _write_all(target, struct.pack("<I", size))
        done = 0
        while done < size:
            copied = os.copy_file_range(source, target, size - done, offset + done)
            if copied == 0:
                raise OSError(f"the spool ended {size - done} bytes early")
            done += copied
        _write_all(target, tail)
    if pending:
        _write_all(target, b"".join(pending))


def _pread(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset`` of ``fd`` (``os.pread`` where the platform has it)."""
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, size)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
