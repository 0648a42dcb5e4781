"""The notebooks run top to bottom on a real Jupyter kernel, and are stored stripped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
IDS = [path.name for path in NOTEBOOKS]

#: Appended to every notebook run: which Python the kernel is.
KERNEL_CHECK = "import json, sys\nprint(json.dumps([sys.executable, sys.prefix]))"


def test_notebooks_are_found():
    names = {path.name for path in NOTEBOOKS}
    assert {"01-quickstart.ipynb", "02-from-rio-mucho.ipynb", "03-cluster.ipynb",
            "04-terrain.ipynb", "05-fields.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stripped(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {index} has outputs"
            assert cell.execution_count is None, f"{path.name}: cell {index} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, tmp_path, monkeypatch):
    # The kernel inherits this environment: its tempfile.mkdtemp() (and dask's
    # scratch space) land in tmp_path; Jupyter's connection files and IPython's
    # history too; and this venv's kernel spec comes first.
    for name in ("tmp", "runtime", "ipython", "cwd"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "1")

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(KERNEL_CHECK))
    cwd = tmp_path / "cwd"
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()  # a failing cell raises CellExecutionError

    printed = "".join(
        output.get("text", "") for output in nb.cells[-1].outputs
        if output.output_type == "stream" and output.name == "stdout"
    )
    executable, prefix = json.loads(printed)
    assert (executable, prefix) == (sys.executable, sys.prefix), "the kernel is another Python"
    assert list(cwd.iterdir()) == [], "the notebook wrote into its working directory"
    for index, cell in enumerate(nb.cells[:-1]):  # outputs a reader would find odd
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                assert "Warning" not in output.get("text", ""), (path.name, index, output)
            if output.output_type == "execute_result":
                shown = output.get("data", {}).get("text/plain", "")
                assert not shown.lstrip("-").isdigit(), (path.name, index, shown)

    if path.name.startswith("01-"):
        # progress=True in a notebook draws an HTML progress bar, updated in place
        html = [
            output.get("data", {}).get("text/html", "")
            for cell in nb.cells for output in cell.get("outputs", [])
            if output.output_type in ("display_data", "update_display_data")
        ]
        assert any("<progress" in text and "tiles" in text for text in html)
