"""The command line: ``riomucho-dask`` / ``rio mucho`` (run and info)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import rasterio

from riomucho_dask import cli
from tests import runfuncs
from tests.conftest import assert_same_raster, serial_reference

USER_MODULE = '''
import numpy as np


def offset_sum(data, window, ij, g):
    """Sum of the first input's bands plus g["offset"], as float32."""
    return data[0].astype("float32").sum(axis=0, keepdims=True) + g.get("offset", 0)


def from_args(data, window, ij, g):
    """A constant built from typed global args, to see what reached the function."""
    value = g["k"] * 10 + len(g["name"]) + 100 * g["flag"] + sum(g["items"])
    return np.full((1, window.height, window.width), value, dtype="float32")
'''


@pytest.fixture(autouse=True)
def _restore_imports():
    """Undo what loading user modules does to sys.path and sys.modules."""
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        module = sys.modules[name]
        if getattr(module, cli.loader._FILE_MARK, None) is not None:  # loaded by the CLI
            del sys.modules[name]
            try:
                cloudpickle.unregister_pickle_by_value(module)
            except ValueError:
                pass


@pytest.fixture
def pair(raster):
    """An aligned pair: a 3-band and a 1-band uint16 raster."""
    return raster("rgb.tif", count=3)[0], raster("nir.tif", count=1, seed=1)[0]


def user_module(tmp_path, name="user_funcs.py", text=USER_MODULE):
    directory = tmp_path / "funcs"
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def assert_clean_error(result, code=1):
    """Failed with ``code``, one ``Error: ...`` line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ")
    if code == 1:
        assert len(lines) == 1, result.stderr
    return lines[-1]


def no_partial_files(directory):
    return not list(Path(directory).glob(".*.part"))


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_run_dotted_module(invoke, pair, tmp_path, scheduler):
    out = tmp_path / "ndvi.tif"
    result = invoke("run", "tests.runfuncs:ndvi", *pair, out, "--count", 1,
                    "--dtype", "float32", "--scheduler", scheduler)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    reference = serial_reference(runfuncs.ndvi, list(pair), tmp_path / "ref.tif",
                                 count=1, dtype="float32")
    assert_same_raster(out, reference)


def test_run_py_file(invoke, pair, tmp_path):
    module = user_module(tmp_path)
    out = tmp_path / "sum.tif"
    result = invoke("run", f"{module}:offset_sum", pair[0], out, "--count", 1,
                    "--dtype", "float32", "--arg", "offset=0.5", "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    # Loaded under the file's name, from a directory on sys.path: workers can import it.
    loaded = sys.modules["user_funcs"]
    assert loaded.__file__ == str(module)
    assert str(module.parent) in sys.path
    reference = serial_reference(loaded.offset_sum, [pair[0]], tmp_path / "ref.tif",
                                 global_args={"offset": 0.5}, count=1, dtype="float32")
    assert_same_raster(out, reference)


def test_run_py_file_relative_path(invoke, pair, tmp_path, monkeypatch):
    user_module(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "funcs/user_funcs.py:offset_sum", pair[0], "out.tif",
                    "--dtype", "float32", "--count", 1)
    assert result.exit_code == 0, result.output
    assert result.stdout == "out.tif\n"


def test_run_py_file_on_processes(invoke, pair, tmp_path):
    """Spawned workers re-import the file module by name."""
    module = user_module(tmp_path)
    out = tmp_path / "sum.tif"
    result = invoke("run", f"{module}:offset_sum", pair[0], out, "--count", 1,
                    "--dtype", "float32", "--scheduler", "processes", "--workers", 2)
    assert result.exit_code == 0, result.output
    reference = serial_reference(sys.modules["user_funcs"].offset_sum, [pair[0]],
                                 tmp_path / "ref.tif", count=1, dtype="float32")
    assert_same_raster(out, reference)


def test_run_py_file_whose_name_is_taken(invoke, pair, tmp_path):
    """A file named like an imported module is loaded under a private name."""
    module = user_module(tmp_path, name="json.py")
    out = tmp_path / "sum.tif"
    result = invoke("run", f"{module}:offset_sum", pair[0], out, "--count", 1,
                    "--dtype", "float32", "--scheduler", "threads")
    assert result.exit_code == 0, result.output
    assert sys.modules["json"] is json
    func, upload = cli.load_function(f"{module}:offset_sum")
    assert func.__module__.startswith("_riomucho_dask_user_json_")
    assert upload is None
    reference = serial_reference(func, [pair[0]], tmp_path / "ref.tif", count=1,
                                 dtype="float32")
    assert_same_raster(out, reference)


@pytest.mark.parametrize("mode, function", [
    ("array_read", runfuncs.array_mean),
    ("manual_read", runfuncs.manual_window_sum),
])
def test_run_modes(invoke, pair, tmp_path, mode, function):
    out = tmp_path / "out.tif"
    result = invoke("run", f"tests.runfuncs:{function.__name__}", *pair, out, "--mode", mode,
                    "--count", 1, "--dtype", "float32", "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    reference = serial_reference(function, list(pair), tmp_path / "ref.tif", mode=mode,
                                 count=1, dtype="float32")
    assert_same_raster(out, reference)


@pytest.mark.parametrize("options, global_args", [
    (["--global-args", '{"scale": 0.5}'], {"scale": 0.5}),
    (["--arg", "scale=3"], {"scale": 3}),
    (["--global-args", '{"scale": 0.5}', "--arg", "scale=2"], {"scale": 2}),
])
def test_run_global_args(invoke, pair, tmp_path, options, global_args):
    out = tmp_path / "out.tif"
    result = invoke("run", "tests.runfuncs:scaled_sum", *pair, out, *options,
                    "--count", 2, "--dtype", "float32", "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    reference = serial_reference(runfuncs.scaled_sum, list(pair), tmp_path / "ref.tif",
                                 global_args=global_args, count=2, dtype="float32")
    assert_same_raster(out, reference)


def test_run_arg_values_are_json_else_strings(invoke, pair, tmp_path):
    module = user_module(tmp_path)
    out = tmp_path / "out.tif"
    result = invoke("run", f"{module}:from_args", pair[0], out, "--count", 1,
                    "--dtype", "float32", "--global-args", '{"k": 1, "name": "x"}',
                    "--arg", "k=2", "--arg", "name=abcd", "--arg", "flag=true",
                    "--arg", "items=[1, 2, 3]", "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert np.all(src.read() == 2 * 10 + 4 + 100 + 6)


@pytest.mark.parametrize("options", [
    ["--global-args", "{not json"],
    ["--arg", "no-equals-sign"],
    ["--global-args", "[1, 2]", "--arg", "a=1"],
])
def test_run_bad_global_args(invoke, pair, tmp_path, options):
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], tmp_path / "out.tif",
                    *options)
    assert_clean_error(result, code=2)
    assert not (tmp_path / "out.tif").exists()


def test_run_creation_options(invoke, pair, tmp_path):
    out = tmp_path / "out.tif"
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], out,
                    "--co", "COMPRESS=DEFLATE", "--co", "predictor=2", "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.profile["compress"] == "deflate"
        assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
    reference = serial_reference(runfuncs.passthrough, [pair[0]], tmp_path / "ref.tif")
    assert_same_raster(out, reference)


def test_run_driver(invoke, pair, tmp_path):
    out = tmp_path / "out.img"
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], out, "--driver", "HFA",
                    "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        assert src.driver == "HFA"
        with rasterio.open(pair[0]) as want:
            assert np.array_equal(src.read(), want.read())


def test_run_refuses_to_overwrite(invoke, pair, tmp_path):
    out = tmp_path / "out.tif"
    out.write_bytes(b"keep me")
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], out)
    message = assert_clean_error(result, code=2)
    assert "--overwrite" in message and str(out) in message
    assert out.read_bytes() == b"keep me"
    reference = serial_reference(runfuncs.passthrough, [pair[0]], tmp_path / "ref.tif")
    for args in ((out, "--overwrite"), ("-o", out, "--overwrite"), ("--output", out,
                                                                      "--overwrite")):
        out.write_bytes(b"keep me")
        result = invoke("run", "tests.runfuncs:passthrough", pair[0], *args,
                        "--scheduler", "sync")
        assert result.exit_code == 0, result.output
        assert_same_raster(out, reference)
    # -o is --output, as in rasterio's rio commands: it never means --overwrite
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], "-o", out)
    assert "--overwrite" in assert_clean_error(result, code=2)


def test_run_output_option(invoke, pair, tmp_path):
    out = tmp_path / "out.tif"
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], "-o", out,
                    "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out}\n"
    assert_same_raster(out, serial_reference(runfuncs.passthrough, [pair[0]],
                                             tmp_path / "ref.tif"))


def test_run_output_is_a_directory(invoke, pair, tmp_path):
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], tmp_path, "--overwrite")
    assert_clean_error(result, code=2)


def test_run_needs_input_and_output(invoke, pair):
    result = invoke("run", "tests.runfuncs:passthrough", pair[0])
    assert_clean_error(result, code=2)


@pytest.mark.parametrize("spec, words", [
    ("tests.runfuncs:no_such_function", ["no attribute", "no_such_function"]),
    ("tests.no_such_module:ndvi", ["cannot import", "no_such_module"]),
    ("tests.runfuncs", ["MODULE:FUNCTION"]),
    ("tests.runfuncs:", ["MODULE:FUNCTION"]),
    ("tests.runfuncs:np", ["not a function"]),
    ("missing/funcs.py:f", ["does not exist"]),
    ("{broken}:f", ["cannot import", "SyntaxError"]),
    ("{raising}:f", ["cannot import", "RuntimeError", "at import"]),
])
def test_run_bad_function(invoke, pair, tmp_path, spec, words):
    broken = user_module(tmp_path, "broken.py", "def f(:\n    pass\n")
    raising = user_module(tmp_path, "raising.py", "raise RuntimeError('at import\\nsecond')\n")
    spec = spec.format(broken=broken, raising=raising)
    out = tmp_path / "out.tif"
    message = assert_clean_error(invoke("run", spec, pair[0], out))
    for word in words:
        assert word in message
    assert not out.exists()


def test_run_misaligned_inputs(invoke, raster, tmp_path):
    first = raster("a.tif")[0]
    shorter = raster("b.tif", count=1, height=50)[0]
    out = tmp_path / "out.tif"
    message = assert_clean_error(invoke("run", "tests.runfuncs:ndvi", first, shorter, out,
                                        "--count", 1, "--dtype", "float32"))
    assert "do not line up" in message and "50 x 131" in message
    assert not out.exists()


def test_run_missing_input(invoke, pair, tmp_path):
    message = assert_clean_error(invoke("run", "tests.runfuncs:passthrough",
                                        tmp_path / "nope.tif", tmp_path / "out.tif"))
    assert "does not exist" in message


def test_run_function_error(invoke, pair, tmp_path):
    out = tmp_path / "out.tif"
    args = ("run", "tests.runfuncs:fails_on_one", pair[0], out, "--arg", "bad_ij=[1, 2]",
            "--scheduler", "sync")
    message = assert_clean_error(invoke(*args))
    assert "ZeroDivisionError: boom at (1, 2)" in message and "ij=(1, 2)" in message
    assert not out.exists() and no_partial_files(tmp_path)
    # -v adds the run function's own traceback.
    result = invoke("-v", *args)
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "fails_on_one" in result.stderr


def test_run_dtype_error_points_to_option(invoke, pair, tmp_path):
    message = assert_clean_error(invoke("run", "tests.runfuncs:float_result", pair[0],
                                        tmp_path / "out.tif", "--scheduler", "sync"))
    assert "--dtype" in message


def test_run_count_error_points_to_option(invoke, pair, tmp_path):
    # ndvi returns 1 band; the default count is the first input's 3
    message = assert_clean_error(invoke("run", "tests.runfuncs:ndvi", *pair,
                                        tmp_path / "out.tif", "--dtype", "float32",
                                        "--scheduler", "sync"))
    assert "returned shape (1, " in message and "expected (3, " in message
    assert "--count" in message
    assert no_partial_files(tmp_path)


def test_run_workers_sets_dask_config(invoke, pair, tmp_path, monkeypatch):
    import dask

    seen = {}
    real = cli.run.to_raster

    def spy(*args, **kwargs):
        seen["num_workers"] = dask.config.get("num_workers", None)
        seen["scheduler"] = kwargs["scheduler"]
        return real(*args, **kwargs)

    monkeypatch.setattr(cli.run, "to_raster", spy)
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], tmp_path / "out.tif",
                    "--workers", 3)
    assert result.exit_code == 0, result.output
    assert seen == {"num_workers": 3, "scheduler": "threads"}
    assert dask.config.get("num_workers", None) is None


def test_run_progress(invoke, pair, tmp_path):
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], tmp_path / "a.tif",
                    "--progress")
    assert result.exit_code == 0, result.output
    assert "20/20 tiles" in result.stderr  # (the output's tiles, encoded in the tasks)
    assert result.stdout == f"{tmp_path / 'a.tif'}\n"
    # Off by default when stderr is not a terminal, and with --no-progress.
    for extra in ([], ["--no-progress"]):
        result = invoke("run", "tests.runfuncs:passthrough", pair[0], tmp_path / "b.tif",
                        "--overwrite", *extra)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""


def test_run_report(invoke, pair, tmp_path):
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], tmp_path / "a.tif",
                    "--report", "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path / 'a.tif'}\n"  # the report goes to stderr
    assert "a.tif: " in result.stderr and "on sync, 1 worker, 20 windows in 20 tasks" \
        in result.stderr
    assert "run function" in result.stderr and "finishing" in result.stderr


@pytest.mark.parametrize("value, expected", [
    ("threads", "threads"),
    ("Synchronous", "sync"),
    ("multiprocessing", "processes"),
    ("tcp://10.0.0.1:8786", "tcp://10.0.0.1:8786"),
    ("scheduler.example.org:8786", "scheduler.example.org:8786"),
])
def test_scheduler_values(value, expected):
    assert cli.options.cb_scheduler(None, None, value) == expected


def test_bad_scheduler(invoke, pair, tmp_path):
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], tmp_path / "out.tif",
                    "--scheduler", "gpu")
    assert_clean_error(result, code=2)


def test_run_on_distributed_address(invoke, pair, tmp_path):
    distributed = pytest.importorskip("distributed")
    module = user_module(tmp_path)
    out = tmp_path / "out.tif"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=":0") as cluster:
        result = invoke("run", f"{module}:offset_sum", pair[0], out, "--count", 1,
                        "--dtype", "float32", "--scheduler", cluster.scheduler_address)
        assert result.exit_code == 0, result.output
        # The CLI's client is closed: no client stays connected.
        deadline = time.monotonic() + 10
        while cluster.scheduler.clients.keys() - {"fire-and-forget"}:
            assert time.monotonic() < deadline, cluster.scheduler.clients
            time.sleep(0.05)
    reference = serial_reference(sys.modules["user_funcs"].offset_sum, [pair[0]],
                                 tmp_path / "ref.tif", count=1, dtype="float32")
    assert_same_raster(out, reference)


def test_info_aligned(invoke, pair):
    result = invoke("info", *pair)
    assert result.exit_code == 0, result.output
    text = result.stdout
    for path in pair:
        assert path in text
    assert "131 x 97 (width x height)" in text
    assert "bands:      3" in text and "bands:      1" in text
    assert "uint16" in text and "EPSG:32631" in text
    assert "block:      32 x 32" in text
    assert "block grid: 4 x 5" in text and "windows:    20" in text
    assert text.rstrip().endswith("inputs line up: 2 inputs, same size, transform and CRS")


@pytest.mark.parametrize("options, reason", [
    ({"height": 50}, "height x width"),
    ({"crs": "EPSG:4326"}, "CRS"),
    ({"transform": rasterio.transform.from_origin(500100.0, 4200000.0, 10.0, 10.0)}, "transform"),
])
def test_info_misaligned(invoke, raster, options, reason):
    first = raster("a.tif")[0]
    other = raster("b.tif", count=1, **options)[0]
    result = invoke("info", first, other)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("inputs do not line up: ") and reason in last

    result = invoke("info", "--json", first, other)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["aligned"] is False and reason in report["reason"]


def test_info_json(invoke, raster):
    path = raster("a.tif", height=100, width=70, block=32, nodata=0)[0]
    result = invoke("info", "--json", path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["aligned"] is True and report["reason"] is None
    (item,) = report["inputs"]
    assert item == {
        "path": path, "width": 70, "height": 100, "count": 3, "dtype": "uint16",
        "crs": "EPSG:32631", "transform": [10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0],
        "nodata": 0.0, "block_shape": [32, 32], "block_grid": [4, 3], "windows": 12,
    }


def test_info_striped_raster(invoke, raster):
    path = raster("striped.tif", tiled=False, block=32)[0]
    result = invoke("info", path)
    assert result.exit_code == 0, result.output
    assert "block:      8 x 131" in result.stdout and "block grid: 13 x 1" in result.stdout
    assert "one input" in result.stdout


def test_info_missing_input(invoke, tmp_path):
    message = assert_clean_error(invoke("info", tmp_path / "nope.tif"))
    assert "does not exist" in message


def test_version(invoke):
    from riomucho_dask import __version__

    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def _installed(name):
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{path} missing: reinstall with pip install -e '.[test]'"
    return str(path)


def _run(*args):
    env = dict(os.environ, COLUMNS="120")
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env,
                          cwd=Path(__file__).resolve().parents[1])


def test_console_script_help():
    result = _run(_installed("riomucho-dask"), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: riomucho-dask")
    assert "run " in result.stdout and "info " in result.stdout


def test_rio_plugin_help():
    rio = _installed("rio")
    result = _run(rio, "--help")
    assert result.returncode == 0, result.stderr
    assert "mucho" in result.stdout
    result = _run(rio, "mucho", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: rio mucho")
    assert "run " in result.stdout and "info " in result.stdout


def test_rio_mucho_run(pair, tmp_path):
    out = tmp_path / "out.tif"
    result = _run(_installed("rio"), "mucho", "run", "tests.runfuncs:ndvi", *pair, str(out),
                  "--count", "1", "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{out}\n"
    reference = serial_reference(runfuncs.ndvi, list(pair), tmp_path / "ref.tif",
                                 count=1, dtype="float32")
    assert_same_raster(out, reference)


def test_main_runs_the_group(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["info", "--help"])
    assert exit_info.value.code == 0
    assert "Usage: riomucho-dask info" in capsys.readouterr().out


def test_one_line_and_merge():
    assert cli.context.one_line("a\n\n  b  \n") == "a; b"
    assert cli.options.merge_global_args({"a": 1}, {"a": 2, "b": "x"}) == {"a": 2, "b": "x"}
    assert cli.options.merge_global_args([1], {}) == [1]


@pytest.mark.parametrize("boundary", ["reflect", "edge", "-3.5"])
def test_run_with_overlap(invoke, raster, tmp_path, boundary):
    dem, _ = raster("dem.tif", count=1, dtype="float32", block=16)
    out = tmp_path / "shade.tif"
    result = invoke("run", "tests.runfuncs:hillshade", dem, out, "--overlap", 1,
                    "--boundary", boundary, "--count", 1, "--dtype", "float32",
                    "--scheduler", "sync")
    assert result.exit_code == 0, result.output
    with rasterio.open(dem) as src:
        z = src.read(1)
    if boundary in ("reflect", "edge"):
        padded = np.pad(z, 1, mode=boundary)
    else:
        padded = np.pad(z, 1, mode="constant", constant_values=float(boundary))
    with rasterio.open(out) as got:
        assert np.array_equal(got.read(1), runfuncs.hillshade_core(padded))


def test_run_bad_boundary(invoke, pair, tmp_path):
    result = invoke("run", "tests.runfuncs:passthrough", pair[0], tmp_path / "o.tif",
                    "--overlap", 1, "--boundary", "wrap")
    assert "wrap" in assert_clean_error(result, code=2)
