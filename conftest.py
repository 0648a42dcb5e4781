"""Doctests run in a folder holding two small rasters, scene_a.tif and scene_b.tif."""

import numpy as np
import pytest
from rasterio.windows import Window


@pytest.fixture(autouse=True)
def _doctest_setup(request):
    if type(request.node).__name__ != "DoctestItem":
        return
    from tests.conftest import make_raster

    tmp_path = request.getfixturevalue("tmp_path")
    request.getfixturevalue("monkeypatch").chdir(tmp_path)
    make_raster(tmp_path / "scene_a.tif", count=3)
    make_raster(tmp_path / "scene_b.tif", count=2, seed=1)
    namespace = request.getfixturevalue("doctest_namespace")
    namespace["np"] = np
    namespace["Window"] = Window
