"""Resumable writes: the spooled tiles and a journal of those that are durable.

With ``to_raster(..., resume=True)`` the writer of encoded tiles
(:class:`~riomucho_dask.write.writers.tiled.TiledWriter`) appends tiles to a spool
file with a fixed hidden name beside the target, and after each chunk's
bytes are written appends one line to a journal beside it: the chunk's
place, where its tiles sit in the spool, and a CRC32 of their bytes.  When
the run stops for any reason (an exception, Ctrl-C, SIGKILL, a machine that
dies), both stay; the same job run again with ``resume=True`` reads the
journal, keeps the chunks whose bytes check out, and computes only the
others.  On success both are removed.

Journal lines are written after the spool's bytes (so a killed process
never journals bytes it did not write), and both files are fsync'ed at
most every :data:`SYNC_SECONDS` (a machine that dies loses at most that);
the CRC drops any line whose bytes did not reach the disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import weakref
import zlib
from dataclasses import dataclass

from ..errors import OutputPathError
from ..paths import is_remote
from .sinks import remote

try:  # (POSIX)
    import fcntl
except ImportError:  # Windows
    fcntl = None
try:
    import msvcrt
except ImportError:
    msvcrt = None


def _lock_now(fd: int) -> None:
    """Lock the file ``fd`` for this process, or raise OSError when another holds
    it (flock on POSIX, msvcrt's byte lock on Windows; the lock goes when the
    process dies)."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    elif msvcrt is not None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

__all__ = ["Journal", "Entry", "resume_paths"]

VERSION = 1
#: Seconds between two fsyncs of the spool and the journal.
SYNC_SECONDS = 2.0


@dataclass(frozen=True)
class Entry:
    """One chunk of tiles in the spool: its place and where its bytes are."""

    level: int
    row: int
    col: int
    rows: int
    cols: int
    start: int
    sizes: tuple  # image tiles, plane by plane then row by row
    mask_sizes: tuple | None
    crc: int

    @property
    def end(self) -> int:
        return self.start + sum(self.sizes) + sum(self.mask_sizes or ())

    @property
    def place(self) -> tuple[int, int, int]:
        return (self.level, self.row, self.col)


def resume_paths(path: str) -> tuple[str, str]:
    """(spool, journal) of a resumable write to ``path``: hidden files beside
    a local target; in scratch space for one on object storage.

    Examples
    --------
    >>> [os.path.basename(p) for p in resume_paths("/data/mosaic.tif")]
    ['.mosaic.tif.resume-tiles', '.mosaic.tif.resume-journal']
    """
    if is_remote(path):
        name = path.rstrip("/").rsplit("/", 1)[-1]
        digest = hashlib.sha1(path.encode()).hexdigest()[:12]
        base = os.path.join(remote.scratch_dir(), f".{name}.{digest}")
    else:
        directory, name = os.path.split(os.path.abspath(path))
        base = os.path.join(directory, f".{name}")
    return base + ".resume-tiles", base + ".resume-journal"


class Journal:
    """The journal of one resumable write (see the module).

    Parameters
    ----------
    path : str
        The output's path or URL.
    job : str
        The job's token: the same array (dask's deterministic token of its
        graph) and the same output profile give the same token.
    """

    def __init__(self, path: str, job: str):
        self.path = path
        self.job = job
        self.spool, self.log = resume_paths(path)
        self.entries: dict[tuple[int, int, int], Entry] = {}
        self.end = 0  # end of the durable bytes in the spool
        self.reason: str | None = None  # why an earlier journal was not resumed
        self._fd: int | None = None
        self._synced = time.monotonic()
        # the lock's descriptor, closed also when a write is dropped uncomputed
        self._held: list[int] = []
        weakref.finalize(self, _close_all, self._held)

    def __repr__(self) -> str:
        return f"Journal({self.path!r}, {len(self.entries)} chunks durable)"

    # -- reading ------------------------------------------------------------
    def load(self) -> None:
        """Read an earlier journal of this job; keep the chunks whose bytes check out.

        Another job's journal (or a damaged one) is set aside: :attr:`reason`
        says why, and the write starts over.
        """
        if not os.path.exists(self.log):
            if os.path.exists(self.spool):
                os.remove(self.spool)
            return
        with open(self.log, "rb") as f:
            lines = f.read().split(b"\n")
        try:
            header = json.loads(lines[0])
        except ValueError:
            header = {}
        if header.get("version") != VERSION or header.get("job") != self.job:
            self.reason = (
                "its partial output was written by another job (another array, run "
                "function, inputs or output profile)" if header.get("job") else
                "its journal is unreadable"
            )
            self._remove()
            return
        entries = {}
        try:
            spool = open(self.spool, "rb")
        except FileNotFoundError:
            self.reason = "its partial output is missing"
            self._remove()
            return
        with spool:
            for line in lines[1:]:
                try:
                    raw = json.loads(line)
                    entry = Entry(raw["level"], raw["row"], raw["col"], raw["rows"], raw["cols"],
                                  raw["start"], tuple(raw["sizes"]),
                                  None if raw["mask"] is None else tuple(raw["mask"]), raw["crc"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by the kill
                spool.seek(entry.start)
                if zlib.crc32(spool.read(entry.end - entry.start)) != entry.crc:
                    continue  # bytes that never reached the disk
                entries[entry.place] = entry
        self.entries = entries
        self.end = max((e.end for e in entries.values()), default=int(header.get("start", 0)))

    def read(self, entry: Entry) -> tuple[list, list | None]:
        """The tiles (and mask tiles) of a journaled chunk, from the spool."""
        with open(self.spool, "rb") as spool:
            spool.seek(entry.start)
            data = [spool.read(size) for size in entry.sizes]
            mask = None if entry.mask_sizes is None else [spool.read(n) for n in entry.mask_sizes]
        return data, mask

    # -- writing ------------------------------------------------------------
    def open(self, start: int) -> None:
        """Start appending: a new journal (header; data from ``start``) unless
        chunks were loaded; the spool cut back to the durable bytes."""
        if self.entries:
            with open(self.spool, "r+b") as spool:
                spool.truncate(self.end)
            with open(self.log, "r+b") as log:  # a line cut short by a kill: gone
                text = log.read()
                log.truncate(text.rfind(b"\n") + 1)
            self._fd = os.open(self.log, os.O_WRONLY | os.O_APPEND)
            return
        self.end = start
        with open(self.spool, "wb"):
            pass
        header = json.dumps({"version": VERSION, "job": self.job, "start": start})
        self._fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(self._fd, header.encode() + b"\n")

    def record(self, entry: Entry) -> None:
        """Journal ``entry``, whose bytes were just appended to the spool."""
        line = json.dumps({
            "level": entry.level, "row": entry.row, "col": entry.col, "rows": entry.rows,
            "cols": entry.cols, "start": entry.start, "sizes": list(entry.sizes),
            "mask": None if entry.mask_sizes is None else list(entry.mask_sizes),
            "crc": entry.crc,
        })
        os.write(self._fd, line.encode() + b"\n")
        self.entries[entry.place] = entry
        self.end = max(self.end, entry.end)
        if time.monotonic() - self._synced >= SYNC_SECONDS:
            self.sync()

    def sync(self) -> None:
        """Make the spool, then the journal, durable on disk."""
        with open(self.spool, "rb") as spool:
            os.fsync(spool.fileno())
        if self._fd is not None:
            os.fsync(self._fd)
        self._synced = time.monotonic()

    def close(self, sync: bool = True) -> None:
        """Make what is written durable, stop appending, let another run in.
        A write that journaled no chunk leaves nothing behind (nothing to resume)."""
        if self._fd is not None:
            try:
                if sync:
                    self.sync()
            finally:
                os.close(self._fd)
                self._fd = None
        if not self.entries and self._held:
            self._remove(self.log + "-lock")  # (removed while still held)
        self.unlock()

    def lock(self) -> None:
        """Refuse a second write of this output while this one may run (another
        write in this process, or another process resuming the same job)."""
        fd = os.open(self.log + "-lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_now(fd)
        except OSError:
            os.close(fd)
            raise OutputPathError(
                f"another resumable write of {self.path!r} is running (in this process or "
                "another): two cannot share its partial output"
            ) from None
        self._held.append(fd)

    def unlock(self) -> None:
        _close_all(self._held)  # (the lock goes with it, also when a process dies)

    def discard(self) -> None:
        """Remove the spool and the journal (a finished write)."""
        self.close(sync=False)
        self._remove(self.log + "-lock")

    def _remove(self, *more: str) -> None:
        for path in (self.spool, self.log, *more):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


def _close_all(fds: list[int]) -> None:
    while fds:
        os.close(fds.pop())

