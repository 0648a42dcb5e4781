"""Tiles written from the workers: part files the writer assembles.

On the ``processes`` scheduler and on a cluster whose workers see the
output's directory, the encoding task does not send its tile bytes back:
it appends them to a part file of its own (one per worker thread, in a
hidden directory beside the output or its spool) and returns where they
are (:class:`PartRef`).  The writer then copies them into the output in
the kernel (``os.copy_file_range`` where the platform has it), so tile
bytes travel neither through a pipe nor through the client's memory.

The engine decides, just before computing, whether the workers can see the
directory (:meth:`PartSink.use`); until then (threads, sync, workers that
cannot see it) the sink hands the tiles back as they are.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

from . import Part

__all__ = ["PartRef", "PartSink", "copy_range"]


@dataclass(frozen=True)
class PartRef:
    """Where one chunk's tiles (then its mask tiles) are in a part file."""

    path: str
    offset: int
    sizes: tuple
    mask_sizes: tuple | None
    crc: int

    @property
    def nbytes(self) -> int:
        return sum(self.sizes) + sum(self.mask_sizes or ())


class PartSink:
    """Where encoding tasks put their tiles: back in the result (``directory``
    None), or into part files in ``directory`` (a
    :class:`~riomucho_dask.write.sinks.PartsSink`: each thread appends its
    parts to a file of its own).

    Its dask token is the same whatever the directory: the job, and so a
    resumable write's identity, does not depend on where the parts go.
    ``owner`` tells the encoding tasks of one output from another's (two
    outputs of the same array and options encode their tiles apart: one may
    keep them on the workers while the other takes them back).
    """

    def __init__(self) -> None:
        self.directory: str | None = None
        self.owner = uuid.uuid4().hex

    def __dask_tokenize__(self):
        return ("PartSink",)

    def __getstate__(self):
        return {"directory": self.directory, "owner": self.owner}

    def __setstate__(self, state):
        self.directory = state["directory"]
        self.owner = state.get("owner")

    def use(self, beside: str) -> str:
        """Make a new hidden parts directory beside ``beside`` (a file path) and
        send the tiles there from now on; returns the directory."""
        directory, name = os.path.split(os.path.abspath(beside))
        self.directory = tempfile.mkdtemp(prefix=f".{name}.parts-", dir=directory)
        return self.directory

    def abort(self) -> bool:
        """Remove the parts directory (see :meth:`remove`)."""
        self.remove()
        return True

    def finalise(self, parts: Sequence[Part]) -> None:
        """The writer has copied every part into the output: they go."""
        self.remove()

    def __call__(self, number: int, data: bytes) -> Part:
        """Append ``data`` to this thread's part file in :attr:`directory`."""
        path = os.path.join(self.directory, f"{socket.gethostname()}-{os.getpid()}-"
                                            f"{threading.get_ident()}.part")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            offset = os.fstat(fd).st_size  # (one thread appends to this file)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return Part(number, path, offset, len(data))

    def remove(self) -> None:
        """Remove the parts directory (once its tiles are in the output, or
        after a failure: a task still running may add a part file while the
        directory is being removed, so it is removed again until it is gone)."""
        if self.directory is not None:
            for _ in range(50):
                shutil.rmtree(self.directory, ignore_errors=True)
                if not os.path.exists(self.directory):
                    break
                time.sleep(0.05)
            self.directory = None

    def hold(self, tiles):
        """``tiles`` as they are, or with their bytes in this thread's part file
        (one part: the tiles, then the mask tiles)."""
        if self.directory is None:
            return tiles
        chunks = [*tiles.data, *(tiles.mask or ())]
        crc = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
        part = self(0, b"".join(chunks))
        ref = PartRef(part.ref, part.offset, tuple(map(len, tiles.data)),
                      None if tiles.mask is None else tuple(map(len, tiles.mask)), crc)
        return replace(tiles, data=None, mask=None, part=ref)


def copy_range(source_path: str, offset: int, size: int, target) -> None:
    """Write ``size`` bytes at ``offset`` of ``source_path`` at the position of
    the open file ``target`` (not opened for appending), in the kernel where the
    platform can."""
    target.flush()
    fd = os.open(source_path, os.O_RDONLY)
    try:
        out = target.fileno()
        done = 0
        if hasattr(os, "copy_file_range"):
            try:
                while done < size:
                    copied = os.copy_file_range(fd, out, size - done, offset + done)
                    if copied == 0:
                        raise OSError(f"part file {source_path!r} ended {size - done} "
                                      "bytes early")
                    done += copied
                return
            except OSError as err:
                if done or getattr(err, "errno", None) not in _NO_KERNEL_COPY:
                    raise
        with open(fd, "rb", closefd=False) as source:
            source.seek(offset)
            while done < size:
                piece = source.read(min(8 * 2**20, size - done))
                if not piece:
                    raise OSError(f"part file {source_path!r} ended {size - done} bytes early")
                target.write(piece)
                done += len(piece)
            target.flush()
    finally:
        os.close(fd)


#: errno values for which copy_file_range is not possible between two files
#: (other file systems, not supported): copied through a buffer instead.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM}
