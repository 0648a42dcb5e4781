"""The little of the TIFF format a writer of finished tiles needs.

Reads the tags of a (little-endian, classic or BigTIFF) file GDAL wrote,
and writes image file directories (IFDs) whose tile offsets point at bytes
placed by :class:`~riomucho_dask.write.writers.tiled.TiledWriter`.  Tag values are
kept as GDAL wrote them (raw bytes), so georeferencing, nodata, sample
format, predictor and the rest stay exactly GDAL's.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

__all__ = ["Entry", "read_ifds", "ifd_size", "ifd_bytes", "header", "HEADER_SIZE"]

#: Bytes per value of each TIFF field type.
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
              13: 4, 16: 8, 17: 8, 18: 8}
SHORT, LONG, LONG8 = 3, 4, 16

NEW_SUBFILE_TYPE, IMAGE_WIDTH, IMAGE_LENGTH = 254, 256, 257
TILE_OFFSETS, TILE_BYTE_COUNTS = 324, 325
GDAL_METADATA = 42112
#: GeoTIFF and GDAL metadata tags: only the full-resolution image carries them.
GEO_TAGS = frozenset({33550, 33922, 34264, 34735, 34736, 34737, 42112})
#: The TIFF tags GDAL writes from ``TIFFTAG_*`` metadata items (document name, image
#: description, sample range, resolution, software, date, artist, host, copyright):
#: on the full-resolution image only, as GDAL's COG driver writes them.
TEXT_TAGS = frozenset({269, 270, 280, 281, 282, 283, 296, 305, 306, 315, 316, 33432})
#: The tags of the full-resolution image that its overviews do not repeat.
FULL_RESOLUTION_TAGS = GEO_TAGS | TEXT_TAGS

#: Header sizes, classic and BigTIFF.
HEADER_SIZE = {False: 8, True: 16}


@dataclass(frozen=True)
class Entry:
    """One tag's value: field type, value count and the little-endian bytes."""

    type: int
    count: int
    raw: bytes

    @classmethod
    def of(cls, values, type_: int) -> Entry:
        array = np.atleast_1d(np.asarray(values))
        dtype = {SHORT: "<u2", LONG: "<u4", LONG8: "<u8"}[type_]
        return cls(type_, int(array.size), array.astype(dtype).tobytes())

    def values(self) -> np.ndarray:
        dtype = {SHORT: "<u2", LONG: "<u4", LONG8: "<u8", 12: "<f8"}[self.type]
        return np.frombuffer(self.raw, dtype)


def read_ifds(data: bytes) -> list[dict[int, Entry]]:
    """Every IFD of a little-endian TIFF held in ``data``, as tag -> :class:`Entry`.

    Examples
    --------
    >>> ifds = read_ifds(header(False, 8) + ifd_bytes({256: Entry.of(7, 3)}, 8, False))
    >>> int(ifds[0][256].values()[0])
    7
    """
    if data[:2] != b"II":
        raise ValueError("not a little-endian TIFF")
    (version,) = struct.unpack_from("<H", data, 2)
    big = version == 43
    if big:
        (offset,) = struct.unpack_from("<Q", data, 8)
        count_fmt, entry_fmt, entry_size, inline = "<Q", "<HHQ", 20, 8
    else:
        (offset,) = struct.unpack_from("<I", data, 4)
        count_fmt, entry_fmt, entry_size, inline = "<H", "<HHI", 12, 4
    ifds = []
    while offset:
        (n,) = struct.unpack_from(count_fmt, data, offset)
        position = offset + struct.calcsize(count_fmt)
        tags: dict[int, Entry] = {}
        for _ in range(n):
            tag, type_, count = struct.unpack_from(entry_fmt, data, position)
            size = TYPE_SIZES[type_] * count
            value_at = position + struct.calcsize(entry_fmt)
            if size > inline:
                (value_at,) = struct.unpack_from("<Q" if big else "<I", data, value_at)
            tags[tag] = Entry(type_, count, bytes(data[value_at:value_at + size]))
            position += entry_size
        ifds.append(tags)
        (offset,) = struct.unpack_from("<Q" if big else "<I", data, position)
    return ifds


def _even(n: int) -> int:
    return n + (n & 1)


def ifd_size(tags: dict[int, Entry], big: bool) -> int:
    """Bytes :func:`ifd_bytes` writes for ``tags``: the directory, then the
    values too long to sit in it."""
    inline = 8 if big else 4
    fixed = (8 + 20 * len(tags) + 8) if big else (2 + 12 * len(tags) + 4)
    return fixed + sum(_even(len(e.raw)) for e in tags.values() if len(e.raw) > inline)


def ifd_bytes(tags: dict[int, Entry], at: int, big: bool, next_ifd: int = 0) -> bytes:
    """The IFD of ``tags`` written at file offset ``at`` (even), then its
    long values, pointing to the IFD at ``next_ifd`` (0: the last)."""
    inline = 8 if big else 4
    fixed = (8 + 20 * len(tags) + 8) if big else (2 + 12 * len(tags) + 4)
    head = [struct.pack("<Q" if big else "<H", len(tags))]
    extra = []
    extra_at = at + fixed
    for tag in sorted(tags):
        entry = tags[tag]
        if len(entry.raw) > inline:
            value = struct.pack("<Q" if big else "<I", extra_at)
            padded = entry.raw + b"\0" * (len(entry.raw) & 1)
            extra.append(padded)
            extra_at += len(padded)
        else:
            value = entry.raw.ljust(inline, b"\0")
        head.append(struct.pack("<HHQ" if big else "<HHI", tag, entry.type, entry.count) + value)
    head.append(struct.pack("<Q" if big else "<I", next_ifd))
    return b"".join(head + extra)


def header(big: bool, first_ifd: int) -> bytes:
    """The file header pointing to the first IFD."""
    if big:
        return b"II+\0" + struct.pack("<HHQ", 8, 0, first_ifd)
    return b"II*\0" + struct.pack("<I", first_ifd)
