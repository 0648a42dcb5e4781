"""Overview ``mode``: our kernel against GDAL's own mode read chunk by chunk.

Issue 29 (item 2) asks for GDAL's kernel in place of ours if it is exact and costs
no more than 10 % over ours.  This script checks both for GDAL read per chunk the
way :mod:`riomucho_dask.write.kernels.resample_gdal` reads the other resamplings
(the piece of the level above in a MEM dataset, read at the chunk's fractional
window; an internal mask as the MEM dataset's mask band):

1. exactness: each case's level made chunk by chunk against GDAL's
   ``BuildOverviews`` of the same file, for GDAL's read as it is and with the
   workarounds that make it equal (``--fix``), and for our kernel;
2. cost: one level (ratio 2) of a ``--size`` square raster made chunk by chunk from
   pieces of ``--piece`` pixels (the graph's pieces are about a full-resolution chunk:
   512 for the default windows), ours and GDAL's alternating in one process,
   median of ``--repeat`` runs each, ratio GDAL / ours; classes 0-5 (ties), and
   for pieces of 512 also uniform noise.

The report goes to ``benchmarks/RESULTS-mode.md`` (``--results``)::

    .venv/bin/python benchmarks/mode.py                      # ~3 min
    .venv/bin/python benchmarks/mode.py --pieces 512 --repeat 1
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # this checkout's riomucho_dask

import rasterio  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.errors import NotGeoreferencedWarning  # noqa: E402
from rasterio.io import MemoryFile  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from riomucho_dask.write.kernels.mode import mode_fill  # noqa: E402
from riomucho_dask.write.kernels.resample import resample as ours  # noqa: E402
from riomucho_dask.write.kernels.resample_gdal import (  # noqa: E402
    _TRANSFORM,
    read_extent,
)

RESULTS = os.path.join(HERE, "RESULTS-mode.md")


# -- GDAL's mode per chunk -----------------------------------------------------

def gdal_mode(piece, piece_row, piece_col, dst_rows, dst_cols, src_shape, dst_shape,
              nodata=None, fix=True):
    """Pixels ``dst_rows`` x ``dst_cols`` of a mode level read by GDAL from
    ``piece`` (the arguments of :func:`riomucho_dask.write.kernels.resample.resample`;
    a masked piece gets a MEM mask band).  ``fix``: the workarounds: a read GDAL's
    MEM driver would copy is widened (as ``resample_gdal`` does); uint8 gets no
    mask band (BuildOverviews' byte mode ignores the mask, but a read whose
    whole piece is masked gives 0); nodata that GDAL's mode cannot write
    (``mode_fill``: out of the unsigned type's range, or NaN) becomes 0."""
    masked = isinstance(piece, np.ma.MaskedArray)
    flags = np.ma.getmaskarray(piece)[:1] if masked else None
    data = np.ma.getdata(piece)
    (a, b), (c, d) = dst_rows, dst_cols
    ry, rx = src_shape[0] / dst_shape[0], src_shape[1] / dst_shape[1]
    rows, cols = (a, b), (c, d)
    if fix:
        if masked:  # (padded as the data are)
            flags = read_extent(flags, piece_row, piece_col, dst_rows, dst_cols, src_shape,
                                dst_shape)[0]
        data, piece_row, piece_col, rows, cols = read_extent(
            data, piece_row, piece_col, dst_rows, dst_cols, src_shape, dst_shape)
    count, height, width = data.shape
    profile = {"driver": "MEM", "count": count, "height": height, "width": width,
               "dtype": data.dtype.name, "transform": _TRANSFORM}
    if nodata is not None:
        profile["nodata"] = nodata
    window = Window(cols[0] * rx - piece_col, rows[0] * ry - piece_row,
                    (cols[1] - cols[0]) * rx, (rows[1] - rows[0]) * ry)
    shape = (count, rows[1] - rows[0], cols[1] - cols[0])
    with MemoryFile() as memfile, memfile.open(**profile) as dataset:
        dataset.write(data)
        if masked and not (fix and data.dtype == np.uint8):
            dataset.write_mask(np.where(flags[0], 0, 255).astype("uint8"))
        out = dataset.read(window=window, out_shape=shape, resampling=Resampling.mode)
    crop = (slice(None), slice(a - rows[0], b - rows[0]), slice(c - cols[0], d - cols[0]))
    out = out[crop]
    if fix and nodata is not None:
        fill = mode_fill(nodata, data.dtype)
        if math.isnan(nodata):
            if data.dtype.kind == "f":
                out[np.isnan(out)] = fill
        elif fill != nodata:
            out[out == np.asarray(nodata).astype(out.dtype)] = fill
    if masked:  # the level's mask: GDAL's mode of the mask alone, 0 and 255
        flags = np.where(flags, 0, 255).astype("uint8")
        level_mask = gdal_mode(flags, piece_row, piece_col, rows, cols, src_shape,
                               dst_shape, fix=fix)[0] == 0
        flags = np.broadcast_to(level_mask[crop[1:]], out.shape)
        return np.ma.MaskedArray(out, flags.copy())
    return out


# -- 1. exactness --------------------------------------------------------------

def build_overviews(path: Path, data, nodata=None, mask=None):
    """GDAL's BuildOverviews mode level (factor 2) of ``data`` as a tiled GTiff."""
    count, height, width = data.shape
    profile = dict(driver="GTiff", count=count, height=height, width=width, dtype=data.dtype,
                   tiled=True, blockxsize=16, blockysize=16, nodata=nodata)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(data)
            if mask is not None:
                dataset.write_mask(mask)
        with rasterio.open(path, "r+") as dataset:
            dataset.build_overviews([2], Resampling.mode)
        with rasterio.open(path, overview_level=0) as dataset:
            return dataset.read()


def chunk_by_chunk(kernel, data, nodata, mask, level_shape, chunk):
    """The level from ``data`` (masked where ``mask`` is 0) in chunks of ``chunk``,
    each from its piece only."""
    count, height, width = data.shape
    dh, dw = level_shape
    if mask is not None:
        data = np.ma.MaskedArray(data, np.broadcast_to(mask == 0, data.shape))
    out = np.empty((count, dh, dw), data.dtype)
    for a in range(0, dh, chunk):
        for c in range(0, dw, chunk):
            b, d = min(dh, a + chunk), min(dw, c + chunk)
            r0, r1 = int(a * height / dh + 1e-8), min(height, math.ceil(b * height / dh - 1e-8))
            c0, c1 = int(c * width / dw + 1e-8), min(width, math.ceil(d * width / dw - 1e-8))
            out[:, a:b, c:d] = np.ma.getdata(kernel(
                data[:, r0:r1, c0:c1], r0, c0, (a, b), (c, d), (height, width), (dh, dw),
                nodata))
    return out


def differing(one, other) -> int:
    same = (one == other)
    if one.dtype.kind == "f":
        same |= np.isnan(one) & np.isnan(other)
    return int((~same).sum())


def exactness_cases():
    rng = np.random.default_rng(3)
    classes = rng.integers(1, 6, (1, 64, 64))
    piece_masked = np.full((64, 64), 255, "uint8")
    piece_masked[:32, :32] = 0
    int16 = classes.astype("int16")
    int16[:, :32, :32] = -3000
    fits = np.where(int16 == -3000, 3000, int16).astype("int16")
    nan = np.round(rng.normal(size=(1, 64, 64))).astype("float32")
    nan[:, :32, :32] = np.nan
    corner = rng.integers(0, 6, (2, 257, 257)).astype("uint8")
    return [
        ("int16, nodata -3000 (not a uint16), a piece all nodata", int16, -3000, None),
        ("int16, nodata 3000, a piece all nodata", fits, 3000, None),
        ("float32, nodata NaN, a piece all NaN", nan, math.nan, None),
        ("uint8, internal mask, a piece all masked", classes.astype("uint8"), None,
         piece_masked),
        ("uint16, internal mask, a piece all masked", classes.astype("uint16"), None,
         piece_masked),
        ("uint8, 2 bands, 257 x 257 -> 129 x 129 (a 1 x 1 corner chunk)", corner, None, None),
    ]


def exactness(tmp: Path) -> list[str]:
    lines = ["| case | GDAL per chunk | GDAL per chunk, workarounds | ours |", "|---|---|---|---|"]
    for name, data, nodata, mask in exactness_cases():
        reference = build_overviews(tmp / "reference.tif", data, nodata, mask)
        cells = []
        for kernel in (lambda *a: gdal_mode(*a, fix=False), gdal_mode,
                       lambda *a: ours(*a[:7], "mode", a[7])):
            level = chunk_by_chunk(kernel, data, nodata, mask, reference.shape[1:], 16)
            bad = differing(level, reference)
            cells.append("equal" if not bad else f"{bad} px differ")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines


# -- 2. cost -------------------------------------------------------------------

TIMED = [(1, "uint8", "none"), (1, "uint8", "nodata"), (1, "uint16", "none"),
         (1, "uint16", "nodata"), (3, "uint8", "none"), (3, "uint8", "nodata"),
         (1, "uint16", "mask"), (3, "uint8", "mask")]


def timed_input(size, count, dtype, kind, pixels):
    rng = np.random.default_rng(1)
    shape = (count, size, size)
    if pixels == "classes":
        data = rng.integers(0, 6, size=shape).astype(dtype)
    else:
        data = rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    nodata, corner = None, slice(size // 4, size // 4 + size // 6)
    if kind == "nodata":
        nodata = 0
        data[rng.random(shape) < 0.2] = 0
        data[:, corner, corner] = 0
    elif kind == "mask":
        mask = rng.random(shape[1:]) < 0.2
        mask[corner, corner] = True
        data = np.ma.MaskedArray(data, np.broadcast_to(mask, shape).copy())
    return data, nodata


def level_tasks(data, piece):
    """The chunks of level 1 (ratio 2), each with its piece (a contiguous copy, as
    the graph joins them)."""
    _, height, width = data.shape
    dh, dw, step = -(-height // 2), -(-width // 2), piece // 2
    return [(data[:, 2 * a:2 * min(dh, a + step), 2 * c:2 * min(dw, c + step)].copy(), 2 * a,
             2 * c, (a, min(dh, a + step)), (c, min(dw, c + step)), (height, width), (dh, dw))
            for a in range(0, dh, step) for c in range(0, dw, step)]


def cost(size, pieces, repeat) -> list[str]:
    kernels = {"ours": lambda task, nodata: ours(*task, "mode", nodata),
               "gdal": lambda task, nodata: gdal_mode(*task, nodata)}
    lines = ["| piece | pixels | bands | dtype | nodata/mask | ours s | GDAL s | GDAL / ours |",
             "|---|---|---|---|---|---|---|---|"]
    for piece in pieces:
        for pixels in ("classes", "noise") if piece == 512 else ("classes",):
            for count, dtype, kind in TIMED:
                data, nodata = timed_input(size, count, dtype, kind, pixels)
                tasks = level_tasks(data, piece)
                times = {"ours": [], "gdal": []}
                for run in range(repeat):
                    order = ("ours", "gdal") if run % 2 == 0 else ("gdal", "ours")
                    for name in order:
                        start = time.perf_counter()
                        for task in tasks:
                            kernels[name](task, nodata)
                        times[name].append(time.perf_counter() - start)
                mine, theirs = (statistics.median(times[k]) for k in ("ours", "gdal"))
                lines.append(f"| {piece} | {pixels} | {count} | {dtype} | {kind} | {mine:.3f} | "
                             f"{theirs:.3f} | {theirs / mine:.2f} |")
                print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--pieces", default="256,512,1024,4096",
                        help="piece sides (source pixels per chunk), comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args()
    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    load_before = os.getloadavg()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        exact = exactness(Path(tmp))
    timing = cost(args.size, [int(p) for p in args.pieces.split(",")], args.repeat)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "riomucho_dask", "benchmarks"],
                           cwd=ROOT, capture_output=True, text=True).stdout.split("\n")
    dirty = [line.strip() for line in dirty if line.strip() and "RESULTS-mode" not in line]
    if dirty:
        commit += "` with uncommitted changes to `" + ", ".join(dirty)
    header = [
        "# Overview mode: our kernel and GDAL's per chunk", "",
        f"- Date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"python {platform.python_version()}, GDAL {rasterio.__gdal_version__}, "
        f"rasterio {rasterio.__version__}, numpy {np.__version__}",
        f"- Code: `{commit}`; command: `.venv/bin/python benchmarks/mode.py "
        + " ".join(sys.argv[1:]) + "`",
        f"- Load average before: {load_before[0]:.2f}; after: {os.getloadavg()[0]:.2f}; "
        f"whole run {(time.time() - started) / 60:.1f} min", "",
        "## 1. Exactness against BuildOverviews", "",
        "64 x 64 rasters (the 257 x 257 one aside), level 1 in chunks of 16 x 16, each "
        "from its piece only. GDAL per chunk: the piece in a MEM dataset (a mask band for "
        "an internal mask), read at the chunk's fractional window with `mode`. The "
        "workarounds: a read GDAL's MEM driver would copy is widened (as "
        "`resample_gdal` does); uint8 gets no mask band; nodata GDAL's mode cannot write "
        "(out of the unsigned type's range, or NaN) becomes 0.", "",
    ]
    body = header + exact + [
        "", f"## 2. Cost of level 1 of a {args.size} x {args.size} raster", "",
        "Seconds for the whole level, chunk by chunk from pieces of `piece` x `piece` "
        "source pixels; GDAL with the workarounds (and the level's mask read by GDAL "
        "when masked); median of " + f"{args.repeat} runs, alternating.", "",
    ] + timing + [""]
    with open(args.results, "w", encoding="utf-8") as f:
        f.write("\n".join(body))
    print("written", args.results)


if __name__ == "__main__":
    main()
