"""The documentation's code runs as written, and the site builds without a warning.

Every Python block of the README and of each page under ``docs/`` runs: each page's
blocks in order, as one script (``__name__ == "__main__"``), in a fresh empty
directory. A page whose blocks read files makes them itself (its first block). A block
preceded by the line ``<!-- no-run -->`` (one that needs what a test cannot start: real
S3 credentials, a remote cluster) is the only kind left out.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python\n(?P<code>.*?)^(?P=indent)```", re.S | re.M)
SKIP = "<!-- no-run -->"


def pages() -> list[Path]:
    """The README and the documentation's own Markdown pages (not the build, the
    generated API pages, or the notebooks and benchmark files that docs/conf.py copies in
    from elsewhere)."""
    found = [ROOT / "README.md"]
    for path in sorted(DOCS.rglob("*.md")):
        parts = path.relative_to(DOCS).parts
        if parts[0] in ("_build", "notebooks") or parts[:2] in (("api", "generated"),
                                                                 ("benchmarks", "files")):
            continue
        found.append(path)
    return found


def blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line, code, skipped) of every Python block."""
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        found.append((line, textwrap.dedent(match.group("code")), before == SKIP))
    return found


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


# Files a page's blocks must leave behind (that they ran, not only that they did not raise).
WRITES = {
    "README.md": ["ndvi.tif"],
    "docs/index.md": ["ndvi.tif"],
    "docs/guide/reading.md": ["out.tif", "composite.tif", "items.json"],
    "docs/guide/mapping.md": ["ndvi.tif", "hillshade.tif"],
    "docs/guide/writing.md": ["z.tif", "stack.tif", "x2.tif", "ndvi.tif", "green.tif",
                              "classes.tif"],
    "docs/guide/overviews-statistics.md": ["ndvi_stats.tif", "ndvi_overviews.tif"],
    "docs/guide/resume.md": ["mosaic.tif"],
    "docs/guide/clusters.md": ["ndvi.tif", "out.tif"],
    "docs/guide/from-rio-mucho.md": ["output.tif"],
    "docs/guide/vectors.md": ["fields.tif", "scene_in_fields.tif", "stats.json"],
}


def test_blocks_are_found():
    counted = {name(path): blocks(path.read_text()) for path in pages()}
    assert sum(len(found) for found in counted.values()) >= 20
    assert sum(skipped for found in counted.values() for *_, skipped in found) <= 2
    for page in WRITES:
        assert counted.get(page), f"{page}: no Python block"


def test_every_page_is_in_the_site():
    """A page left out of every toctree is a Sphinx warning; a page the block runner
    does not see would be a page whose code nobody runs."""
    assert {name(path) for path in pages()} >= set(WRITES)


def test_cluster_and_process_examples_have_a_main_guard():
    """A block that starts worker processes fails when pasted into a script without
    the guard: the workers import the script and start their own cluster."""
    for path in pages():
        for line, code, _ in blocks(path.read_text()):
            if "LocalCluster(" in code or re.search(r"""scheduler=["']processes""", code):
                assert 'if __name__ == "__main__":' in code, f"{name(path)}, line {line}"


@pytest.mark.parametrize("page", pages(), ids=name)
def test_page_python_blocks_run_in_order(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    ran = 0
    for line, code, skipped in blocks(page.read_text()):
        if skipped:
            continue
        with warnings.catch_warnings():
            # (a block shows how to use the library, not which warnings its
            # dependencies print: the dashboard's port, for one)
            warnings.simplefilter("default")
            try:
                exec(compile(code, f"{name(page)}, block at line {line}", "exec"), namespace)
            except Exception as err:
                pytest.fail(f"{name(page)} block at line {line} failed: {err!r}")
        ran += 1
    for written in WRITES.get(name(page), []):
        assert (tmp_path / written).exists(), f"{name(page)} did not write {written}"


def test_sphinx_build_has_no_warning(tmp_path):
    """``sphinx-build -W --keep-going``, as ``make docs`` runs it (in its own process:
    Sphinx's extensions print their own deprecation warnings, which are not ours)."""
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "html" / "api" / "generated" / "riomucho_dask.to_raster.html").exists()
