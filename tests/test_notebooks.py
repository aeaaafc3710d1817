"""Every notebook runs top to bottom on the shipped organism (outputs are not committed)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_are_committed_without_outputs():
    assert len(NOTEBOOKS) == 5
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    # every figure is shown inline (no forced backend), and every findings cell printed
    for c in code:
        kinds = {k for o in c.get("outputs", []) for k in o.get("data", {})}
        if "plt.show()" in c.source:
            assert "image/png" in kinds, f"{path.name}: a figure cell showed no figure"
        if c.source.lstrip().startswith("# findings") or "Finding" in c.source:
            text = "".join(o.get("text", "") for o in c.get("outputs", []))
            assert text.strip(), f"{path.name}: a findings cell printed nothing"
