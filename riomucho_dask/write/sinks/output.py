"""The output file a store feeds: temporary files, publishing, a full disk said so.

An :class:`OutputFile` is where the bytes go, apart from how blocks arrive
(the store's queue and writer thread).  A new output is written to hidden
temporary files beside the target (in scratch space for object storage) and
moved into place (or uploaded) only when complete, with the permissions a
plain ``open`` would give it; on abort they are removed.

What GDAL writes is made in a private hidden directory beside the target
(:meth:`OutputFile.staged`), under the target's own name: GDAL names the
side-cars it writes (``.aux.xml``, ENVI's ``.hdr``, ``.msk``, world files)
after it.  Publishing moves every file of that directory next to the target,
the side-cars first and the main file last (a reader that finds the main file
finds its side-cars), then removes the files of the output it replaced that
the new one does not have (a stale ``.aux.xml`` would give the new pixels the
old CRS), as GDAL's own Create and CreateCopy do.  One file is one atomic
rename; several are several renames.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import shutil
import tempfile
import weakref

import numpy as np

from ...errors import NoSpaceError
from ...paths import is_remote
from .. import drivers
from . import PartsSink, remote

__all__ = ["OutputFile", "umask"]

#: A write error with less room than this left on the device is a full disk.
NO_SPACE_MARGIN = 2**20
#: Side-cars larger than this are not searched for the private directory's name.
SIDECAR_BYTES = 2**20


def _remove_all(paths: list[str]) -> None:
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):  # (a private directory)
            shutil.rmtree(path, ignore_errors=True)
            continue
        for name in (path, path + ".aux.xml"):  # (and a side-car GDAL may have made)
            try:
                os.remove(name)
            except FileNotFoundError:
                pass


@functools.cache
def umask() -> int:
    """This process's umask, found without changing it (``os.umask`` sets it for
    every thread at once): the permissions of a probe file made with ``0o777`` in
    the temporary directory (a name of its own, retried if taken).

    Examples
    --------
    >>> 0 <= umask() <= 0o777
    True
    """
    for _ in range(8):
        probe = os.path.join(tempfile.gettempdir(),
                             f".riomucho-umask-{os.getpid()}-{secrets.token_hex(8)}")
        try:
            fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o777)
        except FileExistsError:
            continue
        except OSError:
            break
        try:
            return 0o777 & ~os.fstat(fd).st_mode
        finally:
            os.close(fd)
            os.remove(probe)
    mask = os.umask(0)  # (no writable scratch space: set and restore, as a last resort)
    os.umask(mask)
    return mask


class OutputFile:
    """The file (or object) at ``path``, written through temporary files.

    Parameters
    ----------
    path : str
        The target: a local path, or an object-storage path or URL.
    profile : dict
        The output's profile (for the size a full disk needed).
    """

    def __init__(self, path: str, profile: dict):
        self.path = path
        self.profile = profile
        self.remote = is_remote(path)
        self.target = path if self.remote else os.path.abspath(path)
        self._temporaries: list[str] = []
        self._staged: list[str] = []  # outputs made in private directories (their main file)
        self._sinks: list[PartsSink] = []  # part sinks dropped with the temporaries
        self._cleanup = None

    @property
    def beside(self) -> str:
        """A path in the directory temporary files go to, named after the output."""
        if self.remote:
            return os.path.join(remote.scratch_dir(), self.path.rstrip("/").rsplit("/", 1)[-1])
        return self.target

    def temporary(self) -> str:
        """A new, empty temporary file beside the target (or in scratch space)."""
        directory, name = os.path.split(self.beside)
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=directory)
        os.close(fd)
        self._temporaries.append(path)
        if self._cleanup is None:
            # Remove temporary files if the output is dropped unfinished (a
            # compute=False graph that failed, an interrupted kernel).
            self._cleanup = weakref.finalize(self, _remove_all, self._temporaries)
        return path

    def staged(self) -> str:
        """A path with the output's own name in a new private hidden directory
        beside the target (``.NAME.riomucho-XXXX/NAME``; in scratch space for
        object storage): what GDAL writes there, side-cars included, is named
        as at the target, and :meth:`publish` moves all of it into place."""
        directory, name = os.path.split(self.beside)
        folder = tempfile.mkdtemp(prefix=f".{name}.riomucho-", dir=directory)
        self._temporaries.append(folder)
        if self._cleanup is None:
            self._cleanup = weakref.finalize(self, _remove_all, self._temporaries)
        path = os.path.join(folder, name)
        self._staged.append(path)
        return path

    def _name_target(self, sidecar: str) -> None:
        """Where a staged output's text side-car names the private directory (ENVI's
        ``.hdr`` holds the file's path as its description), name the target's."""
        if os.path.getsize(sidecar) > SIDECAR_BYTES:
            return
        folder = os.path.dirname(sidecar)
        with open(sidecar, "rb") as file:
            text = file.read()
        here = os.fsencode(os.path.join(folder, ""))
        if here in text:
            base = (self.path.rstrip("/").rsplit("/", 1)[0] + "/" if self.remote and "/" in
                    self.path else os.path.join(os.path.dirname(self.path), ""))
            with open(sidecar, "wb") as file:
                file.write(text.replace(here, os.fsencode(base)))

    def also_remove(self, sink: PartsSink) -> None:
        """Drop ``sink``'s parts (the workers' part files: copied into the output,
        or not wanted) with the temporary files."""
        self._sinks.append(sink)

    def publish(self, finished: str) -> None:
        """Move the finished file into place, or upload it; a :meth:`staged`
        output with every file beside it, the main file last."""
        if finished in self._staged:
            folder, name = os.path.split(finished)
            names = sorted(os.listdir(folder), key=lambda each: (each == name, each))
            files = [(os.path.join(folder, each), each) for each in names]
            for local, _ in files[:-1]:
                self._name_target(local)
        else:
            files = [(finished, os.path.basename(self.target))]
        if self.remote:  # (GDAL copies the dataset's files: the side-cars it lists too)
            remote.upload(finished, self.path)
            return
        directory = os.path.dirname(self.target)
        replaced = drivers.dataset_files(self.target)  # (before anything moves)
        for local, each in files:
            os.chmod(local, (0o777 if os.path.isdir(local) else 0o666) & ~umask())
            destination = os.path.join(directory, each)
            if os.path.isdir(local) and os.path.isdir(destination):
                # a directory store (Zarr) replacing one: the old one moves into
                # the private folder (removed with it), then the new one in place
                os.replace(destination, local + ".replaced")
            os.replace(local, destination)
        published = {each for _, each in files}
        for old in replaced:  # what the output replaced had beside it, and this has not
            if os.path.dirname(os.path.abspath(old)) == directory and \
                    os.path.basename(old) not in published:
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.remove(old)

    def as_target(self, text: str) -> str:
        """``text`` with the temporary files' names replaced by the output's."""
        for staged in self._staged:
            text = text.replace(staged, self.path)
            text = text.replace(os.path.dirname(staged) + os.sep,
                                os.path.join(os.path.dirname(self.path), ""))
        for temporary in self._temporaries:
            text = text.replace(temporary, self.path)
            text = text.replace(os.path.basename(temporary), os.path.basename(self.path))
        return text

    def remove_temporaries(self) -> None:
        _remove_all(self._temporaries)
        for sink in self._sinks:
            sink.abort()
        if self._cleanup is not None:
            self._cleanup.detach()

    def explain(self, err: BaseException) -> BaseException:
        """``err``, or a :class:`NoSpaceError` saying so when the disk is full.

        GDAL reports a full disk as "Write failed", the cause only on stderr:
        a write error with (almost) no room left on the device is taken as one.
        """
        if not isinstance(err, Exception) or isinstance(err, NoSpaceError):
            return err
        directory = os.path.dirname(self._temporaries[0] if self._temporaries else self.beside)
        try:
            free = shutil.disk_usage(directory).free
        except OSError:
            return err
        chain, cause = [], err
        while cause is not None and len(chain) < 10:
            chain.append(cause)
            cause = cause.__cause__ or cause.__context__
        enospc = any(getattr(e, "errno", None) == errno.ENOSPC for e in chain)
        if not enospc and (free >= NO_SPACE_MARGIN or not self._temporaries):
            return err
        profile = self.profile
        needed = (int(profile["count"]) * int(profile["height"]) * int(profile["width"])
                  * np.dtype(profile["dtype"]).itemsize)
        cog = str(profile.get("driver", "")).upper() == "COG"
        if cog:
            needed *= 2  # the tiled intermediate, then the COG
        explained = NoSpaceError(
            f"no space left on the device of {directory!r} while writing {self.path!r}: "
            f"{free / 2**20:.1f} MB free, and the output needs up to about "
            f"{needed / 2**20:.1f} MB (its uncompressed size{', twice for a COG' if cog else ''}"
            "; compressed, less)"
        )
        explained.__cause__ = err
        return explained
