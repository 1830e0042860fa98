"""The explorer tour notebook, generated fresh: no saved outputs, no widget state, no user edits.

``notebooks/explorer_tour.ipynb`` in the repository is this notebook as written
by :func:`write_tour` (a test keeps the two in step). The demo and the browser
test never open that tracked file: JupyterLab autosaves a notebook while it is
used, and a copy saved with widget views points at widget models that a new
kernel does not have ("model not found"). They write a fresh copy into a run
folder instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["TOUR_NAME", "cell_sources", "tour_notebook", "write_tour"]

TOUR_NAME = "explorer_tour.ipynb"

# (cell id, cell type, source): stable ids, so regenerating the tracked notebook changes nothing.
_CELLS: list[tuple[str, str, str]] = [
    ("eb523c6a", "markdown", """\
# A tour of the vecbook explorer

The bundled sample (3,000 popular PyPI packages: the summary as content; `name`, `version`, `month`, `rank` as metadata) in a `local` store, explored with `vecbook.widgets.explore`:

* **Search** (left): type a query, set `top_k`, add filter conditions; the filter it builds is shown as a line of Python to paste into code.
* **Map** (right): PCA at once; *UMAP* computes in a background thread (fitted on a sample, the rest placed beside their neighbours; the first fit in an environment compiles numba code once, 20-60 s). Colour by a field (linear, log or quantile scale), hover for content, click a point for its nearest neighbours, lasso points with the toolbar's lasso button.
* A search highlights its results on the map; a selection on the map is listed below it; the workspace browser is at the bottom."""),
    ("a407b014", "code", """\
import os
import tempfile

from vecbook import HashEmbeddingModel, LocalVectorStore
from vecbook.datasets import build_sample_workspace
from vecbook.widgets import explore

# The offline MiniLM model gives semantic search (embedding the sample takes 20-40 s once).
# VECBOOK_TOUR_EMBEDDING=hash switches to the instant hashing model (used by the browser tests in CI).
if os.environ.get("VECBOOK_TOUR_EMBEDDING", "local") == "hash":
    model = HashEmbeddingModel(dimensions=384)
else:
    from vecbook import LocalEmbeddingModel

    model = LocalEmbeddingModel()

store_dir = os.environ.get("VECBOOK_TOUR_STORE") or os.path.join(tempfile.gettempdir(), f"vecbook_tour_{model.model_name}")
store = LocalVectorStore(embedding_model=model, store_dir=store_dir)
print(build_sample_workspace(store), "nodes in", store_dir)"""),
    ("2e10bdd3", "code", """\
ex = explore(store, "pypi", top_k=10)
ex"""),
    ("e4f01027", "markdown", """\
Everything the widgets show is plain data too: drive them from Python, and read back what a user did."""),
    ("6e2af5a5", "code", """\
# ex.search.search("http client", top_k=5)           # type a query and run it
# ex.search.add_condition("rank", "lte", 100)         # add a filter condition
# ex.map.select(["requests", "httpx"])                # set the map's selection
# ex.map.show_umap()                                   # UMAP, computed in a thread
print(ex.search.state.filter_code)
ex.selection.head()"""),
]


def _cell(cell_id: str, cell_type: str, source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": cell_type, "id": cell_id, "metadata": {}, "source": source.splitlines(keepends=True)}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def tour_notebook() -> dict[str, Any]:
    """The tour as an nbformat 4.5 notebook (a dict), with no outputs."""
    return {
        "cells": [_cell(*spec) for spec in _CELLS],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_tour(path: str | Path) -> Path:
    """Write a fresh tour notebook to ``path`` (replacing what is there), as Jupyter formats it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(tour_notebook(), sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # never a half-written notebook for Lab to open
    return path


def cell_sources(notebook: dict[str, Any]) -> list[tuple[str, str]]:
    """``(cell type, source)`` of each cell: what a notebook says, without its outputs or metadata."""
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in notebook["cells"]]
