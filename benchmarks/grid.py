"""Benchmark reading inputs onto a grid (``map_windows(grid=..., resampling=...)``).

Three sections, every run a fresh child process (``grid.py --child SPEC``, one
``GRID-RESULT {json}`` line), every output compared with its reference; inputs
cached under ``benchmarks/data/``; the report goes to ``benchmarks/RESULTS-grid.md``.
See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
OUT = os.path.join(HERE, "out")
RESULTS = os.path.join(HERE, "RESULTS-grid.md")
BEFORE_COMMIT = "129307f"  # the commit before the grid work
BEFORE_TREE = "/tmp/rmd-before"
MARKER = "GRID-RESULT "
SIZE, BLOCK, STRIPED = 4096, 512, 3000
SEED, DATA_VERSION, WORKERS = 20261127, 1, 2
CRS = "EPSG:32633"
ORIGIN = (500000.0, 6000000.0 + 10.0 * SIZE)
GTIFF = {"compress": "deflate", "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK}
TARGET_S1 = 1.03  # new / old


# -- inputs ------------------------------------------------------------------

def _field(rng_key, rows: slice, width: int, res: float, band: int = 0):
    """Smooth waves, parcels and noise in map units (a 20 m raster looks like a 10 m one)."""
    rng = np.random.default_rng([SEED, *rng_key, band])
    phases = rng.uniform(0, 2 * np.pi, 3)
    parcels = rng.uniform(-250, 250, (64, 64))
    y = (np.arange(rows.start, rows.stop)[:, None] + 0.5) * res
    x = (np.arange(width)[None, :] + 0.5) * res
    f = 1500.0 + 500.0 * band + 700.0 * np.sin(x / 2400 + phases[0]) * np.cos(y / 1700 + phases[1])
    f = f + 250.0 * np.sin((x + y) / 600 + phases[2])
    f = f + parcels[(y * 64 // (SIZE * 10)).astype(int) % 64, (x * 64 // (SIZE * 10)).astype(int)
                    % 64]
    noise = np.random.default_rng([SEED, *rng_key, band, rows.start]).normal(0, 25, f.shape)
    return f + noise


def make_raster(name: str, count: int, size: int, res: float, dtype: str, tiled: bool) -> str:
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    path = os.path.join(DATA, f"grid-{name}-v{DATA_VERSION}.tif")
    if os.path.exists(path):
        return path
    os.makedirs(DATA, exist_ok=True)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": count, "dtype": dtype,
               "crs": CRS, "transform": Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1]),
               "compress": "deflate", **(GTIFF if tiled else {})}
    log(f"generating {os.path.relpath(path, ROOT)} ...")
    with rasterio.open(path + ".part", "w", **profile) as dst:
        for row0 in range(0, size, BLOCK):
            rows = slice(row0, min(row0 + BLOCK, size))
            block = np.stack([np.clip(np.rint(_field((len(name),), rows, size, res, b)),
                                      1, 60000) for b in range(count)]).astype(dtype)
            dst.write(block, window=Window(0, row0, size, rows.stop - row0))
    os.replace(path + ".part", path)
    return path


def make_inputs() -> dict:
    return {
        "s1a": make_raster("aligned-3band", 3, SIZE, 10.0, "uint16", True),
        "s1b": make_raster("aligned-1band-10m", 1, SIZE, 10.0, "uint16", True),
        "s2_20": make_raster("20m", 1, SIZE // 2, 20.0, "uint16", True),
        "s3": make_raster("striped-u16", 1, STRIPED, 10.0, "uint16", False),
    }


# -- run functions -------------------------------------------------------------

def nd_aligned(data, window, ij, global_args):
    """Section 1: band 3 of input 1 against band 1 of input 2."""
    a, b = data[0][2].astype(np.float32), data[1][0].astype(np.float32)
    return ((b - a) / (b + a + 1))[np.newaxis]


def nd_10_20(data, window, ij, global_args):
    """Section 2: the 10 m band against the 20 m band on the 10 m grid."""
    a, b = data[0][0].astype(np.float32), data[1][0].astype(np.float32)
    return ((a - b) / (a + b + 1))[np.newaxis]


def plus_one(data, window, ij, global_args):
    """Section 3: a cheap copy, kept in the input's dtype."""
    return data[0] + data[0].dtype.type(1)


# -- child ---------------------------------------------------------------------

def _serial(func, inputs, output, profile, vrt_of=None):
    import rasterio

    srcs = [rasterio.open(p) for p in inputs]
    if vrt_of is not None:  # the hand-written way: ONE WarpedVRT onto the first input's grid
        from rasterio.vrt import WarpedVRT

        s0 = srcs[0]
        srcs[1] = WarpedVRT(srcs[1], crs=s0.crs, transform=s0.transform, width=s0.width,
                            height=s0.height, resampling=vrt_of)
    with rasterio.open(output, "w", **profile) as dst:
        for ij, window in srcs[0].block_windows(1):
            dst.write(func([s.read(window=window) for s in srcs], window, ij, {}), window=window)
    for s in srcs:
        s.close()


def child_main(spec: dict) -> dict:
    import dask
    import dask.array  # noqa: F401
    import distributed  # noqa: F401
    import rasterio
    from rasterio.enums import Resampling

    import riomucho_dask as rmd

    backend, inputs, out = spec["backend"], spec["inputs"], spec["output"]
    resampling = spec.get("resampling", "nearest")
    result = {"module": os.path.dirname(rmd.__file__)}
    if backend == "rioxarray":
        import threading

        import rioxarray
        from dask.base import is_dask_collection
    elif backend == "rio-mucho":
        import riomucho
    with rasterio.open(inputs[0]) as src:
        profile = src.profile
    if spec["section"] == 2:
        profile.update(dtype="float32", count=1, **GTIFF)
    func = {1: nd_aligned, 2: nd_10_20, 3: plus_one}[spec["section"]]
    started = time.perf_counter()
    with dask.config.set(num_workers=WORKERS):
        if backend == "serial":
            _serial(func, inputs, out, profile,
                    Resampling[resampling] if spec["section"] == 2 else None)
        elif backend == "serial-read":  # diagnostic: the serial loop's reads alone
            with rasterio.open(inputs[0]) as src:
                for _, window in src.block_windows(1):
                    src.read(window=window)
        elif backend in ("threads", "threads-compute"):  # no "grid" in spec: before grid=
            grid = {"grid": spec["grid"]} if "grid" in spec else {}
            if spec["section"] == 2:
                grid["resampling"] = resampling
            dtype = "float32" if spec["section"] < 3 else "uint16"
            arr = rmd.map_windows(func, inputs, count=1, dtype=dtype, **grid)
            result["build_s"] = time.perf_counter() - started
            if backend == "threads-compute":  # diagnostic: read + run, no write
                arr.compute(scheduler="threads")
            else:
                extra = GTIFF if spec["section"] < 3 else {}
                rmd.to_raster(arr, out, like=inputs[0], scheduler="threads", **extra)
        elif backend == "rio-mucho":
            riomucho.RioMucho(inputs, out, func, options=profile).run(WORKERS)
        elif backend == "shim":
            rmd.RioMucho(inputs, out, func, options=profile).run(WORKERS)
        elif backend == "rioxarray":
            chunks = {"band": 1, "y": BLOCK, "x": BLOCK}
            b10 = rioxarray.open_rasterio(inputs[0], chunks=chunks)
            b20 = rioxarray.open_rasterio(inputs[1], chunks=chunks)
            t0 = time.perf_counter()
            b20m = b20.rio.reproject_match(b10, resampling=Resampling[resampling])
            result["reproject_match_s"] = time.perf_counter() - t0
            result["reproject_match_lazy"] = bool(is_dask_collection(b20m.data))
            # rioxarray's documented step: coordinates of the match, not recomputed ones
            b20m = b20m.assign_coords(x=b10.x, y=b10.y)
            a, b = b10.astype("float32"), b20m.astype("float32")
            nd = (a - b) / (a + b + 1)
            nd.rio.to_raster(out, lock=threading.Lock(), **GTIFF)
        else:
            raise ValueError(f"unknown back end {backend!r}")
    result["wall"] = time.perf_counter() - started
    if os.path.exists(out):
        with rasterio.open(out) as dst:
            result["out_blocks"] = dst.block_shapes[0]
            result["out_nodata"] = dst.nodata
    return result


def child_entry(text: str) -> int:
    try:
        result, code = {"ok": True, **child_main(json.loads(text))}, 0
    except BaseException as err:
        traceback.print_exc()
        result, code = {"ok": False, "error": f"{type(err).__name__}: {err}"}, 1
    print(MARKER + json.dumps(result), flush=True)
    return code


# -- parent --------------------------------------------------------------------

def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_child(spec: dict, code: str = ROOT) -> dict:
    env = dict(os.environ, GDAL_CACHEMAX="64", PYTHONPATH=code)
    if os.path.exists(spec["output"]):
        os.remove(spec["output"])
    try:
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                               json.dumps(spec)], capture_output=True, text=True, env=env,
                              cwd=HERE, timeout=600)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "timed out after 600 s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    result = json.loads(lines[-1][len(MARKER):]) if lines else {
        "ok": False, "error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    if not result["ok"]:
        log(proc.stderr[-3000:])
    elif os.path.realpath(result["module"]) != os.path.realpath(os.path.join(code,
                                                                             "riomucho_dask")):
        raise SystemExit(f"child imported riomucho_dask from {result['module']}, not {code}")
    log(f"  {spec['label']}: " + (f"{result['wall']:.2f} s" if result["ok"] else result["error"]))
    return result


def diff(path: str, reference: str) -> dict:
    """Pixels of ``path`` against ``reference``: differing count and fraction, max abs."""
    import rasterio

    with rasterio.open(path) as a, rasterio.open(reference) as b:
        if a.shape != b.shape or a.count != b.count or a.dtypes != b.dtypes:
            return {"same": False, "why": f"{a.count}x{a.shape} {a.dtypes[0]} vs "
                    f"{b.count}x{b.shape} {b.dtypes[0]}"}
        x, y = a.read(), b.read()
        georef = "exact" if (a.transform == b.transform and a.crs == b.crs) else (
            "almost" if a.transform.almost_equals(b.transform) and a.crs == b.crs else "differs")
    bad = (x != y) & ~(np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else x != y
    n = int(np.count_nonzero(bad))
    delta = np.abs(x.astype(np.float64) - y.astype(np.float64))
    return {"same": n == 0 and georef == "exact", "n": n, "fraction": n / x.size,
            "max_abs": float(np.nanmax(delta)) if n else 0.0, "georef": georef}


def identical(d: dict) -> str:
    if "why" in d:
        return f"no ({d['why']})"
    return (f"no: {d['n']} px ({d['fraction']:.3%}), max abs {d['max_abs']:.3g}, "
            f"georef {d['georef']}")


def run_rows(rows: list[dict], repeat: int) -> None:
    """Run every row ``repeat`` times, rotating the order (``rows[0]``, the reference, first
    in the first round); every output is compared with the reference's first one.  Each row
    gets ``walls``, ``results``, ``diffs``, ``median`` and ``identical`` (its worst run)."""
    ref = rows[0]["spec"]["output"] + ".ref.tif"
    for row in rows:
        row.update(walls=[], results=[], diffs=[])
    for r in range(repeat):
        for row in rows[r % len(rows):] + rows[:r % len(rows)]:
            spec = row["spec"]
            res = run_child({**spec, "label": f"{row['name']} #{r + 1}"}, row.get("code", ROOT))
            row["results"].append(res)
            if not res["ok"]:
                continue
            row["walls"].append(res["wall"])
            if not os.path.exists(spec["output"]):
                continue
            if row is rows[0] and r == 0:
                os.replace(spec["output"], ref)
            elif os.path.exists(ref):
                row["diffs"].append(diff(spec["output"], ref))
    rows[0]["reference"] = ref
    for row in rows:
        row["median"] = statistics.median(row["walls"]) if row["walls"] else None
        bad = [d for d in row["diffs"] if not d["same"]]
        row["identical"] = identical(bad[0]) if bad else (
            "yes" if row["diffs"] else "n/a (no output)" if row["walls"] else "failed")
        if row is rows[0]:
            row["identical"] = "reference" + (f" (a later run: {row['identical']})" if bad
                                              else "")


def seconds(row) -> str:
    return f"{row['median']:.2f}" if row["median"] is not None else "failed: " + "; ".join(
        r["error"] for r in row["results"] if not r["ok"])[:200]


def ratio(row, base) -> str:
    if row["median"] is None or base["median"] is None:
        return "–"
    return f"{row['median'] / base['median']:.3f}"


def table(rows, base, head="ratio vs serial", extra=None) -> str:
    cols = ["back end", "seconds", head, "identical", *(extra or {})]
    lines = ["| " + " | ".join(cols) + " |", "|---|--:|--:|---|" + "---|" * len(extra or {})]
    for row in rows:
        ref = base(row) if callable(base) else base
        cells = [f"`{row['name']}`", seconds(row), ratio(row, ref), row["identical"]]
        cells += [fn(row) for fn in (extra or {}).values()]
        lines.append("| " + " | ".join(cells) + " |")
    runs = "; ".join(f"{row['name']}: " + ", ".join(f"{w:.2f}" for w in row["walls"])
                     for row in rows)
    return "\n".join(lines) + f"\n\nEvery run (s, #1 to #N): {runs}."


def out(name: str) -> str:
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, f"grid-{name}.tif")


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def section1(paths, repeat) -> dict:
    inputs = [paths["s1a"], paths["s1b"]]
    if os.path.exists(BEFORE_TREE):
        git("worktree", "remove", "--force", BEFORE_TREE)
    git("worktree", "add", "--detach", BEFORE_TREE, BEFORE_COMMIT)
    try:
        rows = []
        for name, code, grid in ((f"before ({BEFORE_COMMIT}): no grid=", BEFORE_TREE, {}),
                                 ("now: grid=None", ROOT, {"grid": None}),
                                 ('now: grid="first"', ROOT, {"grid": "first"}),
                                 ("before: read + run, no write (diagnostic)", BEFORE_TREE, {}),
                                 ("now: grid=None, read + run, no write (diagnostic)", ROOT,
                                  {"grid": None})):
            backend = "threads-compute" if "diagnostic" in name else "threads"
            rows.append({"name": name, "code": code, "spec": {
                "section": 1, "backend": backend, "inputs": inputs, **grid,
                "output": out(f"s1-{len(rows)}")}})
        run_rows(rows, repeat)
    finally:
        git("worktree", "remove", "--force", BEFORE_TREE)
    worst = max((r["median"] / rows[0]["median"] for r in rows[1:3] if r["median"]),
                default=None) if rows[0]["median"] else None
    ok = worst is not None and worst <= TARGET_S1 and all(
        r["identical"].startswith(("yes", "reference")) for r in rows[:3])
    best = ", ".join(f"{r['name'].split(': ')[1]} {min(r['walls']) / min(rows[0]['walls']):.3f}"
                     for r in rows[1:3] if r["walls"] and rows[0]["walls"])
    build = {r["name"]: statistics.median(x["build_s"] for x in r["results"] if x["ok"])
             for r in rows[:3] if r["walls"]}
    return {"rows": rows, "table": table(rows, lambda r: rows[3 if "diagnostic" in r["name"]
                                                              else 0], "ratio vs before"),
            "best": best, "build": build, "ok": ok,
            "spread": max((max(r["walls"]) / min(r["walls"]) - 1 for r in rows[:3] if r["walls"]),
                          default=0.0),
            "target": f"{'met' if ok else 'missed'}: new/old "
            + ", ".join(f"{r['name'].split(': ')[1]} {ratio(r, rows[0])}" for r in rows[1:3])
            + f" (target <= {TARGET_S1:.2f}, outputs identical)"}


def section2(paths, repeat) -> dict:
    inputs = [paths["s1b"], paths["s2_20"]]
    groups = {}
    for resampling in ("nearest", "bilinear"):
        rows = [{"name": f"{b} {resampling}", "spec": {
            "section": 2, "backend": b, "grid": "first", "resampling": resampling,
            "inputs": inputs, "output": out(f"s2-{b}-{resampling}")}}
            for b in ("serial", "threads", "rioxarray")]
        rows[0]["name"] = f"serial (rasterio + one WarpedVRT) {resampling}"
        rows[1]["name"] = f'threads grid="first" {resampling}'
        run_rows(rows, repeat)
        groups[resampling] = rows
    bil = groups["bilinear"]
    pairs = [("threads vs serial", bil[1]["spec"]["output"], bil[0]["reference"]),
             ("threads vs rioxarray", bil[1]["spec"]["output"], bil[2]["spec"]["output"]),
             ("serial vs rioxarray", bil[0]["reference"], bil[2]["spec"]["output"])]
    cross = ["| bilinear pair | pixels differing | fraction | max abs difference |",
             "|---|--:|--:|--:|"]
    for name, a, b in pairs:
        d = diff(a, b) if os.path.exists(a) and os.path.exists(b) else None
        cross.append(f"| {name} | {d['n']} | {d['fraction']:.4%} | {d['max_abs']:.3g} |"
                     if d and "n" in d else f"| {name} | – | – | – |")
    rx = [r for g in groups.values() for r in g[2]["results"] if r["ok"]]
    note = {"lazy": sorted({r["reproject_match_lazy"] for r in rx}),
            "seconds": [r["reproject_match_s"] for r in rx], "nodata": {r["out_nodata"]
                                                                        for r in rx}}
    near = groups["nearest"]
    ok = near[1]["identical"].startswith("yes")
    rows = groups["nearest"] + groups["bilinear"]
    text = table(rows, lambda r: groups[r["spec"]["resampling"]][0])
    return {"rows": rows, "table": text, "cross": "\n".join(cross), "rioxarray": note,
            "target": f"{'met' if ok else 'missed'}: threads nearest vs the WarpedVRT loop: "
            f"{near[1]['identical']} (ratio {ratio(near[1], near[0])} of the loop's time)"}


def section3(paths, repeat) -> dict:
    import rasterio

    inp = paths["s3"]
    with rasterio.open(inp) as src:
        blocks = src.block_shapes[0]
        windows = sum(1 for _ in src.block_windows(1))
    rows = [{"name": name, "spec": {"section": 3, "backend": b, "inputs": [inp],
                                    "output": out(f"s3-{b}")}}
            for b, name in (("serial", "serial"), ("rio-mucho", "rio-mucho"),
                            ("threads", "threads (grouped strips)"),
                            ("shim", "shim RioMucho (block windows: the strips)"),
                            ("serial-read", "serial-read (diagnostic: reads only)"),
                            ("threads-compute", "threads-compute (diagnostic: read + run, "
                             "no write)"))]
    run_rows(rows, repeat)
    serial, mucho, threads = rows[0], rows[1], rows[2]
    ok = None not in (serial["median"], mucho["median"], threads["median"]) and threads[
        "median"] <= min(serial["median"], mucho["median"]) and threads["identical"] == "yes"
    outblocks = {r["name"]: r["results"][0].get("out_blocks") for r in rows[:4]
                 if r["results"] and r["results"][0]["ok"]}
    return {"rows": rows, "table": table(rows, serial, extra={
        "output blocks": lambda r: " x ".join(map(str, outblocks.get(r["name"], "–")))}),
            "blocks": blocks, "windows": windows,
            "target": f"{'met' if ok else 'missed'}: threads {ratio(threads, serial)} of serial, "
            f"{ratio(threads, mucho)} of rio-mucho (target <= 1 for both)"}


def machine() -> str:
    import importlib.metadata as md

    import rasterio

    names = ("numpy", "rasterio", "dask", "rio-mucho", "rioxarray", "xarray")
    versions = ", ".join(f"{n} {md.version(n)}" for n in names)
    dirty = git("status", "--porcelain", "--untracked-files=no").replace("\n", ",")
    return (f"{os.cpu_count()} cores (nproc), {platform.system()} {platform.release()}; "
            f"python {platform.python_version()}, GDAL {rasterio.__gdal_version__}, {versions}"
            f"\n- Code: `{git('rev-parse', '--short', 'HEAD')}`"
            + (f" with uncommitted changes to {dirty}" if dirty else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per back end (median)")
    parser.add_argument("--sections", default="1,2,3", help="sections to run, e.g. 1,3")
    parser.add_argument("--results", default=RESULTS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_entry(args.child)
    started, load = time.time(), os.getloadavg()
    paths = make_inputs()
    wanted = {int(s) for s in args.sections.split(",")}
    done = {n: fn(paths, args.repeat) for n, fn in ((1, section1), (2, section2),
                                                    (3, section3)) if n in wanted}
    report = render(args, done, load, time.time() - started)
    with open(args.results, "w") as f:
        f.write(report)
    print(report)
    for name in os.listdir(OUT):
        if name.startswith("grid-"):
            os.remove(os.path.join(OUT, name))
    log(f"wrote {os.path.relpath(args.results, ROOT)} ({(time.time() - started) / 60:.1f} min)")
    return 0


def render(args, done, load, elapsed) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["# Grid benchmark results", "", f"- Date: {now}", f"- Machine: {machine()}",
             "- Command: `" + " ".join([".venv/bin/python benchmarks/grid.py", *sys.argv[1:]])
             + "`", f"- Load average before: {load[0]:.2f}, {load[1]:.2f}; "
             f"after: {os.getloadavg()[0]:.2f}; whole run {elapsed / 60:.1f} min",
             f"- Every run a fresh process, `GDAL_CACHEMAX=64`, {WORKERS} workers where "
             f"parallel; seconds are the median of {args.repeat} runs (order rotated), job "
             "only (imports excluded).", "", "Targets:", ""]
    parts += [f"- Section {n}: {s['target']}" for n, s in done.items()] + [""]
    if 1 in done:
        parts += ["## 1. Aligned inputs through the grid cost nothing", "",
                  f"Two aligned {SIZE} x {SIZE} uint16 GeoTIFFs (3-band and 1-band, tiled "
                  f"{BLOCK}, DEFLATE); `(b - a) / (b + a + 1)` of band 3 of input 1 and band 1 "
                  "of input 2, float32, `to_raster(..., like=input1, compress='deflate', "
                  f"tiled, {BLOCK} blocks)`, threads. `before` is a git worktree of "
                  f"`{BEFORE_COMMIT}` (the commit before the grid work) on `PYTHONPATH`; "
                  "`identical` compares with its output. The diagnostic rows compute the "
                  "array into memory (`.compute()`), without writing; their ratio is against "
                  "`before`'s diagnostic row.", "", done[1]["table"], "",
                  f"Ratios of the fastest runs (new/old): {done[1]['best']}. Building the "
                  "graph (`map_windows` alone, median s, in the wall time): "
                  + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in done[1]["build"].items())
                  + f". The largest spread of one row's runs (slowest / fastest - 1) is "
                  f"{done[1]['spread']:.1%}"
                  + ("" if done[1]["ok"] else ": where the ratio misses the target, compare "
                     "it with that spread, with the fastest runs' ratios and with the "
                     "diagnostic rows (reading and the run function alone)") + ".", ""]
    if 2 in done:
        rx = done[2]["rioxarray"]
        parts += ["## 2. 10 m + 20 m", "",
                  f"A {SIZE} x {SIZE} 10 m and a {SIZE // 2} x {SIZE // 2} 20 m uint16 raster "
                  f"over one extent ({CRS}, tiled {BLOCK}, DEFLATE); `(a10 - b20) / (a10 + b20 + "
                  f"1)` on the 10 m grid, float32, DEFLATE, tiled {BLOCK}. The reference is a "
                  "serial rasterio loop over the 10 m blocks reading the 20 m raster through "
                  "one `WarpedVRT(src20, crs=, transform=, width=, height=, resampling=)`. "
                  "`threads` is `map_windows(..., grid='first', resampling=...)`; "
                  "`rioxarray` is `open_rasterio(chunks=512)` of both, `b20.rio."
                  "reproject_match(b10, resampling=...)`, `assign_coords(x=b10.x, y=b10.y)`, "
                  "the formula on the DataArrays, `.rio.to_raster(..., compress='deflate', "
                  "tiled=True, lock=threading.Lock())` (dask's threads).", "",
                  done[2]["table"], "", done[2]["cross"], "",
                  f"rioxarray: `reproject_match` returned a dask array: {rx['lazy']}"
                  + (" — it is eager: `rasterio.warp.reproject` on `.values` reads the whole "
                     "20 m raster and warps it into one numpy array in the calling thread"
                     if rx["lazy"] == [False] else "") + ", in "
                  + ", ".join(f"{s:.2f}" for s in rx["seconds"]) + " s (each run, nearest "
                  "then bilinear; part of the wall time). Output nodata: "
                  f"{sorted(map(str, rx['nodata']))} (the `_FillValue` that `reproject_match` "
                  "sets, its uint16 default when the source has none, kept by xarray's "
                  "arithmetic on the float32 result; no pixel holds it).", ""]
    if 3 in done:
        s3 = done[3]
        parts += [f"## 3. Striped {STRIPED} x {STRIPED}", "",
                  f"A {STRIPED} x {STRIPED} uint16 DEFLATE GeoTIFF with GDAL's default layout "
                  f"(no `tiled`): `block_shapes` {s3['blocks']}, {s3['windows']} block windows. "
                  "Job `data[0] + 1` (uint16), written like the input (`to_raster(..., "
                  "like=input)`; the loops and rio-mucho with the input's profile).", "",
                  s3["table"], ""]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
