"""GDAL's C library, found portably (no private rasterio module, no /proc), and
what its callers do where it is not found."""

from __future__ import annotations

import ctypes

import pytest
import rasterio

import riomucho_dask as rmd
from riomucho_dask import gdal_c
from riomucho_dask.errors import ProfileError
from riomucho_dask.write import drivers
from riomucho_dask.write.sinks import multipart, remote


def _address(lib, name="GDALGetDriverByName") -> int:
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


def _version(lib) -> str:
    lib.GDALVersionInfo.restype = ctypes.c_char_p
    return lib.GDALVersionInfo(b"RELEASE_NAME").decode()


def test_every_route_finds_rasterios_own_gdal():
    """Through a rasterio module's handle (Linux, macOS) and through the library a
    wheel ships beside rasterio (Windows' route): the same functions."""
    found = {how: gdal_c._load(path) for how, path in gdal_c.candidates()}
    found = {how: lib for how, lib in found.items() if lib is not None}
    assert "module" in found
    assert {_version(lib) for lib in found.values()} == {rasterio.__gdal_version__}
    assert len({_address(lib) for lib in found.values()}) == 1
    assert _address(gdal_c.library()) == _address(found["module"])


def test_the_shipped_library_alone(monkeypatch):
    """As on Windows, where a module's handle finds only its own symbols."""
    shipped = [(how, path) for how, path in gdal_c.candidates() if how == "shipped"]
    if not shipped:
        pytest.skip("rasterio here is not a wheel that ships its GDAL")
    monkeypatch.setattr(gdal_c, "candidates", lambda: iter(shipped))
    gdal_c.library.cache_clear()
    gdal_c.driver_item.cache_clear()
    try:
        assert gdal_c.library() is not None
        assert gdal_c.driver_item("PNG", "DCAP_CREATECOPY") == "YES"
        assert drivers.copy_only("PNG") and not drivers.copy_only("GTiff")
    finally:
        gdal_c.library.cache_clear()
        gdal_c.driver_item.cache_clear()


@pytest.fixture
def no_gdal(monkeypatch):
    """No GDAL library to be found: every caller falls back."""
    monkeypatch.setattr(gdal_c, "candidates", lambda: iter([("module", "/nonexistent.so")]))
    for cached in (gdal_c.library, gdal_c.driver_item, drivers._metadata_item,
                   multipart._lib):
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()
    yield
    for cached in (gdal_c.library, gdal_c.driver_item, drivers._metadata_item,
                   multipart._lib):
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


def test_without_the_library_writes_still_work(no_gdal, raster, tmp_path):
    assert gdal_c.library() is None and gdal_c.driver_item("GTiff", "DCAP_CREATE") is None
    assert drivers.copy_only("PNG") and not drivers.copy_only("GTiff")  # (a known list)
    assert drivers.creation_options("GTiff") is None
    drivers.check_options("GTiff", ["compresss"])  # nothing to check against
    assert multipart._lib() is None  # (uploads take the scratch-space route)
    assert remote.exists(str(tmp_path / "nothing.tif")) is False
    path, data = raster(count=1)
    for name in ("out.tif", "out.png"):
        written = rmd.to_raster(rmd.open_raster(path), tmp_path / name, like=path,
                                **({"dtype": "uint16"} if name.endswith("png") else {}))
        with rasterio.open(written) as src:
            assert (src.read() == data).all()


def test_with_the_library_options_are_checked(raster, tmp_path):
    path, _ = raster(count=1)
    with pytest.raises(ProfileError, match="did you mean 'compress'"):
        rmd.to_raster(rmd.open_raster(path), tmp_path / "o.tif", compresss="deflate")
