"""Every Python block of the README runs as written, in order, in an empty directory.

A block preceded by the line ``<!-- no-run -->`` (one that needs what a test cannot
start: real S3 credentials, a remote cluster) is the only kind left out.
"""

from __future__ import annotations

import re
import textwrap
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python\n(?P<code>.*?)^(?P=indent)```", re.S | re.M)


def blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line, code, skipped) of every Python block."""
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        found.append((line, textwrap.dedent(match.group("code")), before == "<!-- no-run -->"))
    return found


def test_blocks_are_found():
    found = blocks(README.read_text())
    assert len(found) >= 10
    assert sum(skipped for _, _, skipped in found) <= 2  # (only what a test cannot start)


def test_readme_python_blocks_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    ran = 0
    for line, code, skipped in blocks(README.read_text()):
        if skipped:
            continue
        with warnings.catch_warnings():
            # (a block shows how to use the library, not which warnings its
            # dependencies print: the dashboard's port, for one)
            warnings.simplefilter("default")
            try:
                exec(compile(code, f"README.md, block at line {line}", "exec"), namespace)
            except Exception as err:
                pytest.fail(f"README.md block at line {line} failed: {err!r}")
        ran += 1
    assert ran >= 10
    for name in ("ndvi.tif", "z.tif", "stack.tif", "out.tif", "hillshade.tif", "mosaic.tif",
                 "output.tif"):
        assert (tmp_path / name).exists(), name
