"""Which scheduler runs a computation: the one place that asks.

Every other module (``to_raster``, the shim, the CLI) goes through
:func:`kind`, :func:`client_of`, :func:`active_client` and
:func:`by_name`.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import dask
import dask.local
import dask.multiprocessing
import dask.threaded
from dask.base import get_scheduler

from ..errors import SchedulerError

__all__ = ["Kind", "kind", "client_of", "active_client", "by_name", "NAMES"]

Kind = Literal["sync", "threads", "processes", "distributed", "local"]

#: Scheduler names (dask's aliases included) -> the name dask is given.
NAMES = {
    "threads": "threads",
    "threading": "threads",
    "processes": "processes",
    "multiprocessing": "processes",
    "sync": "sync",
    "synchronous": "sync",
    "single-threaded": "sync",
}


def by_name(name: str) -> str | None:
    """dask's name for a local scheduler called ``name``, or None."""
    return NAMES.get(name.strip().lower())


def kind(scheduler: Any = None) -> Kind:
    """One of ``"sync"``, ``"threads"``, ``"processes"``, ``"distributed"``, or
    ``"local"`` for another callable or executor dask runs in this process.

    ``None`` means what ``dask.compute`` would use: ``dask.config``'s
    scheduler, else the default ``distributed.Client``, else threads.
    """
    try:
        get = get_scheduler(scheduler=scheduler)
    except (ValueError, RuntimeError) as err:
        raise SchedulerError(f"unknown scheduler {scheduler!r}: {err}") from err
    if get is None or get is dask.threaded.get:
        return "threads"
    if get is dask.local.get_sync:
        return "sync"
    if get is dask.multiprocessing.get:
        return "processes"
    owner = getattr(get, "__self__", None)
    if owner is not None and type(owner).__name__ == "Client":
        return "distributed"
    return "local"


def client_of(scheduler: Any = None):
    """The ``distributed.Client`` behind a scheduler of kind ``"distributed"``."""
    return get_scheduler(scheduler=scheduler).__self__


def active_client():
    """The default ``distributed.Client`` of this process, or None."""
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def configured() -> Any:
    """The scheduler set with ``dask.config.set(scheduler=...)``, or None."""
    return dask.config.get("scheduler", None)
