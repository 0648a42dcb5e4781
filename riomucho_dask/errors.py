"""Errors and warnings raised by riomucho_dask.

Every exception the package raises derives from :class:`RioMuchoDaskError`.
Where a builtin fits, the class also inherits it, as rasterio's errors do,
so ``except ValueError`` or ``except OSError`` keep working.
"""

from __future__ import annotations

import pickle
import re

__all__ = [
    "RioMuchoDaskError",
    "RioMuchoDaskWarning",
    "InputError",
    "InputNotFoundError",
    "InputReadError",
    "InputMismatchError",
    "ModeError",
    "OverlapError",
    "WindowSpecError",
    "WindowGridError",
    "WindowError",
    "RunFunctionError",
    "OutputShapeError",
    "OutputDtypeError",
    "OutputPathError",
    "NoSpaceError",
    "ProfileError",
    "StoreError",
    "StoreClosedError",
    "SchedulerError",
    "MissingExtraError",
]


#: A URL's query string: where signed URLs (SAS tokens, presigned S3, Planetary
#: Computer's) carry their credential.
_QUERY = re.compile(r"((?:https?|s3|gs|az|azure|oss)://[^\s'\"?]*)\?[^\s'\"]*",
                    re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the query strings of its URLs hidden.

    Examples
    --------
    >>> redact("cannot open 'https://host/a.tif?sv=1&sig=SECRET': 403")
    "cannot open 'https://host/a.tif?<query hidden>': 403"
    """
    return _QUERY.sub(r"\1?<query hidden>", text)


class RioMuchoDaskError(Exception):
    """Root of every error raised by riomucho_dask.  A signed URL's query string
    (its credential) never shows in the message: :func:`redact`."""

    def __init__(self, *args):
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class RioMuchoDaskWarning(UserWarning):
    """Root of every warning issued by riomucho_dask."""


class InputError(RioMuchoDaskError, ValueError):
    """An input (path or array) cannot be used as given."""


class InputNotFoundError(RioMuchoDaskError, OSError):
    """An input raster does not exist or cannot be opened."""


class InputReadError(RioMuchoDaskError, OSError):
    """Reading an input failed (a truncated or corrupt file, a lost connection):
    the message names the input, the window and GDAL's own words."""


class InputMismatchError(InputError):
    """Inputs do not line up: height/width, transform or CRS differ."""


class ModeError(InputError):
    """The read mode is not one of ``simple_read``, ``array_read``, ``manual_read``."""


class OverlapError(RioMuchoDaskError, ValueError):
    """``overlap`` or ``boundary`` given to :func:`~riomucho_dask.map_windows` is malformed."""


class WindowSpecError(RioMuchoDaskError, ValueError):
    """Windows or chunks given do not fit the raster."""


class WindowGridError(WindowSpecError):
    """Windows given to :func:`~riomucho_dask.map_windows` do not form a grid."""


class WindowError(RioMuchoDaskError):
    """Something went wrong in one window; ``window`` and ``ij`` say where.

    Attributes
    ----------
    window : rasterio.windows.Window or tuple
        The window, as the run function received it.
    ij : tuple
        The window's index.
    original : BaseException or None
        The exception the run function raised (also ``__cause__``).
    formatted_traceback : str or None
        The original traceback as text; it survives a trip across processes,
        where ``__traceback__`` does not.
    """

    def __init__(self, message, *, window=None, ij=None, original=None, formatted_traceback=None):
        super().__init__(message)
        self.window = window
        self.ij = ij
        self.original = original
        self.formatted_traceback = formatted_traceback

    def __reduce__(self):
        # Keep the details when the error crosses a process boundary.
        state = dict(self.__dict__)
        try:
            pickle.dumps(state["original"])
        except Exception:
            state["original"] = RuntimeError(repr(state["original"]))
        return (_rebuild_window_error, (type(self), self.args, state))


def _rebuild_window_error(cls, args, state):
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    if err.original is not None:
        err.__cause__ = err.original
    return err


class RunFunctionError(WindowError, RuntimeError):
    """The run function raised; the original exception is ``__cause__``."""


class OutputShapeError(WindowError, ValueError):
    """The run function returned an array of the wrong shape or band count."""


class OutputDtypeError(WindowError, TypeError):
    """The run function returned a dtype that cannot be written as declared."""


class OutputPathError(RioMuchoDaskError, OSError):
    """The output path cannot be written (missing directory, existing file...)."""


class NoSpaceError(OutputPathError):
    """The disk holding the output (or its scratch copy) is full."""


class ProfileError(RioMuchoDaskError, ValueError):
    """The output profile is missing something or contradicts the array."""


class StoreError(RioMuchoDaskError, RuntimeError):
    """The raster store received what it cannot write, or not all of it."""


class StoreClosedError(StoreError):
    """A write reached a raster store that was already closed or aborted."""


class SchedulerError(RioMuchoDaskError, ValueError):
    """The scheduler asked for is unknown or cannot do what was asked."""


class MissingExtraError(RioMuchoDaskError, ImportError):
    """An optional extra (``pip install "riomucho_dask[xarray]"``) is not installed."""


def is_gdal_error(err: BaseException) -> bool:
    """Whether ``err`` is rasterio's or GDAL's (``CPLE_*``, which rasterio raises
    from a private module, so they are told by their classes, not imported).

    Examples
    --------
    >>> import rasterio.errors
    >>> is_gdal_error(rasterio.errors.RasterioIOError("x")), is_gdal_error(ValueError())
    (True, False)
    """
    return any(kind.__module__.split(".")[0] == "rasterio" for kind in type(err).__mro__)


def gdal_message(err: BaseException) -> str:
    """GDAL's own words for a rasterio error: the first message of its chain
    that is not rasterio's "see previous exception"."""
    seen, chain = err, []
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in reversed(chain):
        text = str(cause).strip()
        if text and "See previous exception" not in text:
            return text
    return str(err)
