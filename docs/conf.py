"""Sphinx configuration of riomucho_dask's documentation (``make docs``).

Sphinx with numpydoc and MyST: the package's docstrings are numpydoc, the pages are
Markdown (MyST), the notebooks are rendered by myst-nb without being executed (they
are executed by ``tests/test_notebooks.py``).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's riomucho_dask, not an installed one

import riomucho_dask  # noqa: E402


def _copy_in(source: str, target: str, patterns: tuple[str, ...]) -> None:
    """Copy files kept elsewhere in the repository (the notebooks, the benchmark
    results) into the documentation's sources, as they are: MyST resolves links by real
    path, so a symbolic link would leave their cross-links unresolved. The copies are
    ignored by git (``.gitignore``) and made anew at every build."""
    target = os.path.join(HERE, target)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(os.path.dirname(HERE), source, pattern))):
            shutil.copy2(path, target)


_copy_in("notebooks", "notebooks", ("*.ipynb",))
_copy_in("benchmarks", os.path.join("benchmarks", "files"), ("*.md", "*.py"))

_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<target>[^)\s:#]+)(?:#[^)\s]*)?\)")


def _unlink_missing(folder: str) -> None:
    """In the copied benchmark pages, a link to a local file that is not there (a results
    file its benchmark has not written yet) becomes its text: the page says what it
    says, without a broken link that fails the build."""
    folder = os.path.join(HERE, folder)
    for path in glob.glob(os.path.join(folder, "*.md")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        kept = _LINK.sub(lambda m: m.group(0) if os.path.exists(
            os.path.join(folder, m.group("target"))) else m.group("text"), text)
        if kept != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(kept)


_unlink_missing(os.path.join("benchmarks", "files"))

project = "riomucho_dask"
author = "riomucho_dask contributors"
copyright = "riomucho_dask contributors"
release = version = riomucho_dask.__version__

extensions = [
    "myst_nb",  # MyST Markdown pages and notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
]

# .rst first: autosummary writes its generated pages (reStructuredText) with the first suffix
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# MyST: heading anchors for links such as [resume](resume.md#the-same-job)
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Notebooks are shown as stored (without outputs): tests/test_notebooks.py runs them.
nb_execution_mode = "off"

# API reference: autosummary pages from the docstrings, numpydoc sections.
autosummary_generate = True
autodoc_typehints = "none"  # the numpydoc Parameters say the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

intersphinx_mapping = {}  # no network during the build

html_theme = "furo"
html_title = f"riomucho_dask {release}"
