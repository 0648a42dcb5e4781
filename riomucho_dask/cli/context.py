"""What the command group hands its commands, and how their errors are told.

The verbosity (``-v``, and ``rio``'s own) and, under ``rio``, rasterio's
``Env`` travel in the click context; an error of ours, rasterio's or GDAL's
becomes a one-line ``Error: ...`` (its traceback with ``-v``).
"""

from __future__ import annotations

import contextlib

import click
import rasterio.errors

from ..errors import (
    InputMismatchError,
    OutputDtypeError,
    OutputShapeError,
    RioMuchoDaskError,
    WindowError,
    is_gdal_error,
)
from ..execute import schedulers

__all__ = ["CLEAN_ERRORS", "is_clean", "clean_error", "one_line", "rasterio_env",
           "command", "connect"]

#: Errors turned into a one-line ``Error: ...`` message (exit code 1).
CLEAN_ERRORS: tuple[type[BaseException], ...] = (
    RioMuchoDaskError,
    rasterio.errors.RasterioError,
    rasterio.errors.DriverRegistrationError,
    rasterio.errors.CRSError,
)


def is_clean(err: BaseException) -> bool:
    """Whether ``err`` becomes a one-line message: ours, rasterio's, or GDAL's
    (``CPLE_*``, told by their classes: :func:`~riomucho_dask.errors.is_gdal_error`)."""
    return isinstance(err, CLEAN_ERRORS) or is_gdal_error(err)


def one_line(message: str) -> str:
    """``message`` on one line: non-blank lines stripped and joined by ``"; "``.

    Examples
    --------
    >>> one_line("first\\n  second\\n")
    'first; second'
    """
    return "; ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _verbosity(ctx: click.Context) -> int:
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    return int(obj.get("mucho_verbosity", 0)) + int(obj.get("verbosity", 0) or 0)


def clean_error(ctx: click.Context, err: BaseException) -> click.ClickException:
    """A one-line ``click.ClickException`` for ``err`` (its traceback with -v)."""
    message = str(err) or type(err).__name__
    if isinstance(err, InputMismatchError):
        message = f"inputs do not line up: {message}"
    elif isinstance(err, OutputDtypeError):
        message += " (on the command line: --dtype)"
    elif isinstance(err, OutputShapeError):
        message += " (on the command line, --count sets the band count)"
    if _verbosity(ctx) > 0:
        details = err.formatted_traceback if isinstance(err, WindowError) else None
        if details:
            click.echo(details.rstrip(), err=True)
    return click.ClickException(one_line(message))


@contextlib.contextmanager
def rasterio_env(ctx: click.Context):
    # Under ``rio``, the main group leaves a rasterio.Env (AWS session, CPL_DEBUG)
    # in ctx.obj["env"] for sub-commands to enter, as rasterio's own do.
    env = ctx.obj.get("env") if isinstance(ctx.obj, dict) else None
    with env if env is not None else contextlib.nullcontext():
        yield


@contextlib.contextmanager
def command(ctx: click.Context, scheduler: str | None = None, upload: str | None = None):
    """The body of a command: in rasterio's ``Env`` (under ``rio``), with a
    ``distributed.Client`` when ``scheduler`` is a scheduler's address (yielded;
    None otherwise, and closed after), and an error of ours, rasterio's or GDAL's
    told in one line (:func:`clean_error`)."""
    client = None
    try:
        with rasterio_env(ctx):
            if scheduler is not None and schedulers.by_name(scheduler) is None:
                client = connect(scheduler, upload)
            yield client
    except Exception as err:
        if not is_clean(err):
            raise
        raise clean_error(ctx, err) from err
    finally:
        if client is not None:
            client.close()


def connect(address: str, upload: str | None):
    """A ``distributed.Client`` on ``address``, with the module file uploaded."""
    from distributed import Client

    try:
        client = Client(address)
    except (OSError, TimeoutError, ValueError) as err:
        raise click.ClickException(
            one_line(f"cannot connect to the dask scheduler at {address!r}: {err}")
        ) from err
    if upload is not None:
        try:
            client.upload_file(upload)
        except Exception as err:
            client.close()
            raise click.ClickException(
                one_line(f"cannot send {upload!r} to the cluster's workers: {err}")
            ) from err
    return client
