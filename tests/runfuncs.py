"""Run functions shared by the tests; module level so every scheduler can pickle them."""

from __future__ import annotations

import numpy as np


def passthrough(data, window, ij, g):
    return data[0]


def ndvi(data, window, ij, g):
    red, nir = data[0][2].astype("float32"), data[1][0].astype("float32")
    return ((nir - red) / (nir + red + 1e-9))[None]


def scaled_sum(data, window, ij, g):
    """Two inputs of different band counts and dtypes -> 2 float32 bands."""
    first = data[0].astype("float32")
    second = data[1].astype("float32")
    return np.stack([first.sum(axis=0) * g.get("scale", 1.0), second[0] - first[0]])


def array_mean(data, window, ij, g):
    return data.astype("float64").mean(axis=0, keepdims=True).astype("float32")


def manual_window_sum(srcs, window, ij, g):
    total = sum(src.read(1, window=window).astype("float32") for src in srcs)
    return total[None]


def with_ij(data, window, ij, g):
    """Encodes ij and window offsets into the output, to check what was injected."""
    out = np.empty((2, int(window.height), int(window.width)), dtype="int32")
    out[0] = ij[0] * 1000 + ij[1]
    out[1] = int(window.row_off) * 10000 + int(window.col_off)
    return out


def fails_on_one(data, window, ij, g):
    if tuple(ij) == tuple(g["bad_ij"]):
        raise ZeroDivisionError(f"boom at {ij}")
    return data[0]


def wrong_shape(data, window, ij, g):
    return data[0][:, :, :-1] if tuple(ij) == (0, 0) else data[0]


def wrong_count(data, window, ij, g):
    return data[0][:1] if tuple(ij) == (0, 0) else data[0]


def float_result(data, window, ij, g):
    return data[0] / 3.0


def rio_mucho_simple(data, window, ij, g):
    """Two inputs -> 2 uint16 bands, as rio-mucho programs write them."""
    first, second = data
    return np.stack([first[0] // g.get("divide", 2), second[0] - (second[0] // 3)]).astype("uint16")


def rio_mucho_array(data, window, ij, g):
    return (data[:2].astype("uint32").sum(axis=0) // g.get("divide", 2)).astype("uint16")[None]


def rio_mucho_manual(srcs, window, ij, g):
    from riomucho_dask.windows import as_window

    w = as_window(window)
    return np.stack([src.read(1, window=w) for src in srcs]).astype("uint16")


def expects_legacy_window(data, window, ij, g):
    if not isinstance(window, tuple):
        raise TypeError(f"window given as {type(window).__name__}, expected the legacy tuple")
    return data[0]


SEEN_PIDS: list[int] = []


def records_pid(data, window, ij, g):
    import os

    SEEN_PIDS.append(os.getpid())
    return data[0]


def dies_once(data, window, ij, g):
    """Kills its worker process the first time it sees window g["ij"]."""
    import os

    if tuple(ij) == tuple(g["ij"]):
        try:
            fd = os.open(g["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(1)
    return data[0]


def to_float(data, window, ij, g):
    return data[0].astype("float32") * 0.5


def mask_low(data, window, ij, g):
    """Masks pixels below g["threshold"] in band 1 (all bands of that pixel)."""
    band = data[0]
    mask = np.broadcast_to(band[:1] < g["threshold"], band.shape)
    return np.ma.MaskedArray(band, mask=mask)


def counted(data, window, ij, g):
    """Band 1 as float32; leaves one file per call in g["calls"], so calls made in
    worker processes are counted too."""
    import os
    import uuid

    name = f"{ij[0]}-{ij[1]}-{os.getpid()}-{uuid.uuid4().hex}"
    with open(os.path.join(g["calls"], name), "w"):
        pass
    return data[0][:1].astype("float32")


def calls_per_window(directory) -> dict:
    """``{(i, j): calls}`` from the files :func:`counted` left."""
    import collections
    import os

    counts = collections.Counter()
    for name in os.listdir(directory):
        i, j = name.split("-")[:2]
        counts[(int(i), int(j))] += 1
    return dict(counts)


def reports_gdal_option(data, window, ij, g):
    """1 where the rasterio.Env option RIOMUCHO_TEST_OPTION=yes reached this task, else 0."""
    from rasterio.env import getenv, hasenv

    seen = hasenv() and getenv().get("RIOMUCHO_TEST_OPTION") == "yes"
    return np.full((1, int(window.height), int(window.width)), int(seen), dtype="uint8")


def hillshade_core(z, cellsize=10.0):
    """Hillshade of the core of a (rows + 2, cols + 2) elevation array -> (rows, cols) float32."""
    z = z.astype("float64")
    dx = (z[1:-1, 2:] - z[1:-1, :-2]) / (2 * cellsize)
    dy = (z[2:, 1:-1] - z[:-2, 1:-1]) / (2 * cellsize)
    slope = np.arctan(np.hypot(dx, dy))
    aspect = np.arctan2(-dx, dy)
    azimuth, altitude = np.radians(315.0), np.radians(45.0)
    shade = (np.sin(altitude) * np.cos(slope)
             + np.cos(altitude) * np.sin(slope) * np.cos(azimuth - aspect))
    return (255 * np.clip(shade, 0, 1)).astype("float32")


def hillshade(data, window, ij, g):
    """overlap=1: band 1 of the first input -> (1, h, w) float32."""
    return hillshade_core(data[0][0])[None]


def far_stencil_core(z, reach):
    """Centre plus the pixels ``reach`` away in the four directions, of a padded array."""
    z = z.astype("float64")
    rows, cols = z.shape[0] - 2 * reach, z.shape[1] - 2 * reach
    r, c = reach, reach
    return (z[r:r + rows, c:c + cols] * 4 + z[:rows, c:c + cols] + z[2 * r:, c:c + cols]
            + z[r:r + rows, :cols] + z[r:r + rows, 2 * c:]).astype("float32")


def far_stencil(data, window, ij, g):
    return far_stencil_core(data[0][0], g["reach"])[None]


def two_inputs_rectangular(data, window, ij, g):
    """overlap=(2, 3): rows of input 0 shifted by 2 minus columns of input 1 shifted by 3."""
    a, b = data[0][0].astype("float32"), data[1][0].astype("float32")
    rows, cols = a.shape[0] - 4, a.shape[1] - 6
    return (a[4:4 + rows, 3:3 + cols] - b[2:2 + rows, :cols])[None]


def padded_double(data, window, ij, g):
    """Returns the padded shape: every band doubled (trimmed by map_windows)."""
    return data[0] * 2


def neighbour_sum(data, window, ij, g):
    """overlap=1: the four neighbours' sum of band 1 (as float64 -> float32)."""
    z = data[0][0].astype("float64")
    return (z[:-2, 1:-1] + z[2:, 1:-1] + z[1:-1, :-2] + z[1:-1, 2:]).astype("float32")[None]


def stacked_hillshade(data, window, ij, g):
    """array_read, overlap=1: hillshade of the last stacked band."""
    return hillshade_core(data[-1])[None]


def corners(data, window, ij, g):
    """Sum of the four corners of each pixel's (2 rows + 1) x (2 cols + 1) neighbourhood
    (overlap (rows, cols) in g["overlap"]), over every band, as float64."""
    rows, cols = g["overlap"]
    return corners_core(np.asarray(data[0], dtype="float64"), rows, cols)


def corners_core(z, rows, cols):
    """The same on a padded (bands, h + 2 rows, w + 2 cols) array."""
    h, w = z.shape[1] - 2 * rows, z.shape[2] - 2 * cols
    return (z[:, :h, :w] + z[:, 2 * rows:2 * rows + h, 2 * cols:2 * cols + w]
            + z[:, :h, 2 * cols:2 * cols + w] + z[:, 2 * rows:2 * rows + h, :w])


def stops_when_told(data, window, ij, g):
    """Band 1 as float32, one file per call in g["calls"] (calls in any process
    count).  While the file g["stop"] exists: SIGKILL this process at the
    g["kill_at"]-th call, or raise at window g["fail_ij"]."""
    import os
    import signal
    import uuid

    open(os.path.join(g["calls"], f"{ij[0]}-{ij[1]}-{uuid.uuid4().hex}"), "w").close()
    if os.path.exists(g["stop"]):
        if g.get("kill_at") and len(os.listdir(g["calls"])) >= g["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)
        if g.get("fail_ij") and tuple(ij) == tuple(g["fail_ij"]):
            raise RuntimeError(f"told to fail at {ij}")
    return data[0][:1].astype("float32")


def masks_per_band(data, window, ij, g):
    """Two float32 bands, each masked where its own values are low; fails at
    g["fail_ij"] while the file g["stop"] exists."""
    import os

    if os.path.exists(g["stop"]) and tuple(ij) == tuple(g["fail_ij"]):
        raise RuntimeError(f"told to fail at {ij}")
    bands = np.stack([data[0][0], data[0][0][::-1]]).astype("float32")
    low = np.percentile(bands, 25)
    return np.ma.MaskedArray(bands, mask=bands < low)


def manual_stops_when_told(srcs, window, ij, g):
    """manual_read: band 1 of each input summed, float32; fails at g["fail_ij"]
    while the file g["stop"] exists."""
    import os

    if os.path.exists(g["stop"]) and tuple(ij) == tuple(g["fail_ij"]):
        raise RuntimeError(f"told to fail at {ij}")
    return manual_window_sum(srcs, window, ij, g)


# -- grids, mosaics and masks (test_grid.py) -----------------------------------------


def _leave_a_call(g, ij):
    import os
    import uuid

    with open(os.path.join(g["calls"], f"{ij[0]}-{ij[1]}-{uuid.uuid4().hex}"), "w"):
        pass


def first_input(data, window, ij, g):
    """The first input, as it is (an identity copy; masked arrays stay masked)."""
    return data[0]


def second_input(data, window, ij, g):
    return data[1]


def first_counted(data, window, ij, g):
    _leave_a_call(g, ij)
    return data[0]


def second_counted(data, window, ij, g):
    _leave_a_call(g, ij)
    return data[1]


def stack_inputs(data, window, ij, g):
    """Band 1 of every input, stacked (masked where they are masked)."""
    join = np.ma.concatenate if isinstance(data[0], np.ma.MaskedArray) else np.concatenate
    return join([d[:1] for d in data])


def manual_first(srcs, window, ij, g):
    return srcs[0].read(window=window)


def manual_sum(srcs, window, ij, g):
    """Band 1 of every open dataset, summed (in float64)."""
    return sum(src.read(1, window=window).astype("float64") for src in srcs)[None]


def sleeps(data, window, ij, g):
    """Band 1 as float32, after sleeping g["sleep"] seconds: a run function whose
    time is known."""
    import time

    time.sleep(g["sleep"])
    return data[0][:1].astype("float32")


def masks_high(data, window, ij, g):
    """Band 1, masked where it is above ``g["above"]`` (0.5 without)."""
    band = data[0][:1]
    return np.ma.masked_where(band > g.get("above", 0.5), band)


def unseeded_noise(data, window, ij, g):
    """Random whole numbers up to a random bound, as float32: another draw each call
    (not deterministic), compressing to other sizes."""
    rng = np.random.default_rng()
    return np.round(rng.random(data[0].shape) * rng.integers(1, 10000)).astype("float32")


def exit_soon():
    """End this (worker) process in 0.2 s, as a crash would."""
    import os
    import threading

    threading.Timer(0.2, os._exit, (1,)).start()
    return True


def series_median(data, window, ij, g):
    """The per-pixel median over time of a series input (data[0] is (time, band,
    rows, cols)), counted as :func:`counted` counts."""
    if "calls" in g:
        import os
        import uuid

        name = f"{ij[0]}-{ij[1]}-{os.getpid()}-{uuid.uuid4().hex}"
        with open(os.path.join(g["calls"], name), "w"):
            pass
    assert data[0].ndim == 4, data[0].shape
    return np.median(data[0].astype("float64"), axis=0).astype("float32")


def series_minus_dem(data, window, ij, g):
    """A series' first date minus a plain raster (data[1], (bands, rows, cols))."""
    assert data[0].ndim == 4 and data[1].ndim == 3, (data[0].shape, data[1].shape)
    return data[0][0, :1].astype("float32") - data[1][:1].astype("float32")


def clear_count(data, window, ij, g):
    """Dates with a valid pixel, per band, of a masked series."""
    return (~np.ma.getmaskarray(data[0])).sum(axis=0).astype("uint16")


def masks_differ_at(data, window, ij, g):
    """Two float32 bands of input band 1: masked alike where it is low, and, in
    window g["ij"] only, band 2 also where it is high (bands masked differently)."""
    band = data[0][0].astype("float32")
    low = band < g["low"]
    mask = np.stack([low, low])
    if tuple(ij) == tuple(g["ij"]):
        mask[1] |= band > g["high"]
    return np.ma.MaskedArray(np.stack([band, band]), mask=mask)
