"""GDAL options that travel with a graph, credentials kept out of sight.

rasterio sets GDAL options per thread, so options set around a call do not
reach dask's worker threads or processes by themselves: the graph pieces
that touch GDAL capture the options when they are built and re-enter them
where they run.

Credentials (``AWS_SECRET_ACCESS_KEY``, tokens, passwords, SAS, bearer
tokens and HTTP headers: any option whose name says so) are captured apart:
they never show in a repr, and they are re-entered through a rasterio
session, since ``rasterio.Env`` refuses AWS keys as plain options.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field

import rasterio
from rasterio.env import getenv, hasenv
from rasterio.session import Session

from . import config

__all__ = ["GDALOptions", "captured_env", "env", "is_secret", "retries"]

_SECRET = re.compile(
    r"KEY|SECRET|TOKEN|PASSWORD|USERPWD|CREDENTIAL|CONNECTION_STRING|SAS|BEARER|HEADERS",
    re.IGNORECASE,
)


def is_secret(name: str) -> bool:
    """Whether a GDAL option holds a credential (and is never shown).

    Examples
    --------
    >>> is_secret("AWS_SECRET_ACCESS_KEY"), is_secret("AWS_S3_ENDPOINT")
    (True, False)
    """
    return bool(_SECRET.search(name))


@dataclass(frozen=True)
class GDALOptions:
    """GDAL options captured from a ``rasterio.Env``, credentials apart.

    Examples
    --------
    >>> GDALOptions({"AWS_HTTPS": "NO"}, {"AWS_SECRET_ACCESS_KEY": "abc"})
    GDALOptions({'AWS_HTTPS': 'NO'}, credentials=['AWS_SECRET_ACCESS_KEY'] (values hidden))
    """

    options: dict = field(default_factory=dict)
    credentials: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        hidden = f", credentials={sorted(self.credentials)} (values hidden)" \
            if self.credentials else ""
        return f"GDALOptions({self.options!r}{hidden})"

    def __bool__(self) -> bool:
        return bool(self.options or self.credentials)


class _Credentials(Session):
    """A rasterio session that sets captured credentials as GDAL options."""

    def __init__(self, credentials: dict):
        self._credentials = dict(credentials)

    @classmethod
    def hascreds(cls, config) -> bool:
        return True

    def get_credential_options(self) -> dict:
        return dict(self._credentials)

    def __repr__(self) -> str:
        return f"<credentials {sorted(self._credentials)}, values hidden>"


def captured_env() -> GDALOptions:
    """The GDAL options of the ``rasterio.Env`` active here, and the :func:`retries`
    of the dask config here (where the graph is built: a cluster's workers need
    not share the client's config)."""
    options, credentials = retries(), {}
    if not hasenv():
        return GDALOptions(options)
    for key, value in getenv().items():
        if key == "RASTERIO_ENV":
            continue
        (credentials if is_secret(key) else options)[key] = value
    return GDALOptions(options, credentials)


def retries() -> dict:
    """GDAL's HTTP retry options where reads run (``riomucho_dask.http-retries``
    and ``http-retry-delay``): a 429, 500, 502, 503 or 504 answer is retried,
    the delay doubling each time, before it is an error (GDAL caches a failed
    open for the process, so retries are set before the first request).  A
    ``rasterio.Env(GDAL_HTTP_MAX_RETRY=...)`` around the graph's building, or an
    environment variable of that name, wins.

    Examples
    --------
    >>> retries()
    {'GDAL_HTTP_MAX_RETRY': '5', 'GDAL_HTTP_RETRY_DELAY': '0.5'}
    """
    wanted = {"GDAL_HTTP_MAX_RETRY": str(int(config.get("http-retries"))),
              "GDAL_HTTP_RETRY_DELAY": str(float(config.get("http-retry-delay")))}
    # (an environment variable of the same name is the user's say too)
    return {key: value for key, value in wanted.items() if key not in os.environ}


def env(captured: GDALOptions):
    """A context re-entering captured options, with :func:`retries` unless they
    say otherwise; a no-op inside a ``rasterio.Env`` that already sets them all
    (a task enters it once, its windows find it: entering a first
    ``rasterio.Env`` looks for GDAL's and PROJ's data files each time, about
    70 microseconds)."""
    options = {**retries(), **captured.options}
    if not captured.credentials and hasenv():
        current = getenv()
        if all(key in current and str(current[key]) == str(value)
               for key, value in options.items()):
            return contextlib.nullcontext()
    session = _Credentials(captured.credentials) if captured.credentials else None
    return rasterio.Env(session=session, **options)
