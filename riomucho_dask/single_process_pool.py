"""rio-mucho's ``riomucho.single_process_pool``, kept for code that imports it
(rio-rgbify does).  ``RioMucho.run(1)`` does not need it: it runs on dask's
synchronous scheduler."""

from __future__ import annotations

__all__ = ["MockTub"]


class MockTub:
    """A ``multiprocessing.Pool`` test double running everything in-process."""

    def __init__(self, main_worker, args):
        main_worker(*args)

    def imap_unordered(self, func, iterable):
        for item in iterable:
            yield func(item)

    def close(self):
        pass

    def join(self):
        pass
