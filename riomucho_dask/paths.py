"""Paths: local files, URLs and GDAL virtual paths."""

from __future__ import annotations

__all__ = ["is_remote", "vsi_path"]

#: URL schemes and the GDAL virtual file systems that serve them.
_SCHEMES = {"s3": "vsis3", "gs": "vsigs", "az": "vsiaz", "azure": "vsiaz", "oss": "vsioss",
            "swift": "vsiswift", "http": "vsicurl", "https": "vsicurl"}


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL or a GDAL virtual path rather than a local file.

    Examples
    --------
    >>> is_remote("s3://bucket/a.tif"), is_remote("/vsis3/bucket/a.tif"), is_remote("a.tif")
    (True, True, False)
    """
    return "://" in path or path.startswith("/vsi")


def vsi_path(path: str) -> str:
    """``path`` as a GDAL virtual path (``s3://b/k`` -> ``/vsis3/b/k``).

    Examples
    --------
    >>> vsi_path("s3://bucket/dir/a.tif"), vsi_path("https://host/a.tif")
    ('/vsis3/bucket/dir/a.tif', '/vsicurl/https://host/a.tif')
    """
    scheme, sep, rest = path.partition("://")
    if not sep or path.startswith("/vsi"):
        return path
    system = _SCHEMES.get(scheme.lower(), f"vsi{scheme.lower()}")
    return f"/{system}/{path}" if system == "vsicurl" else f"/{system}/{rest}"
