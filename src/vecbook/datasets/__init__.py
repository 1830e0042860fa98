"""The bundled sample: 3,000 of the most downloaded PyPI packages (late 2026).

Each node's content is the package's one-line summary; metadata holds
``name``, ``version``, ``month`` (``YYYY-MM`` of the latest release, absent
for a few) and ``rank`` (1 = most downloaded). Real text with terms, ranges and
a sometimes-missing field: enough to try every filter form.
"""

from __future__ import annotations

import csv
from importlib import resources

from ..node import VectorNode

__all__ = ["load_pypi_sample", "build_sample_workspace", "SAMPLE_WORKSPACE"]

SAMPLE_WORKSPACE = "pypi"
_FILE = "pypi_top_3000.tsv"


def load_pypi_sample(limit: int | None = None, workspace_id: str = SAMPLE_WORKSPACE) -> list[VectorNode]:
    """The sample as VectorNodes without vectors, most downloaded first; ``unique_id`` is the package name."""
    nodes = []
    with resources.files(__name__).joinpath(_FILE).open("r", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\"):
            if limit is not None and len(nodes) >= limit:
                break
            metadata = {"name": row["name"], "version": row["version"], "rank": int(row["rank"])}
            if row["month"]:
                metadata["month"] = row["month"]
            nodes.append(VectorNode(unique_id=row["name"], workspace_id=workspace_id, content=row["summary"], metadata=metadata))
    return nodes


def build_sample_workspace(store, workspace_id: str = SAMPLE_WORKSPACE, limit: int | None = None) -> int:
    """Create ``workspace_id`` in ``store`` and fill it with the sample unless it is already full.

    Returns the number of nodes in the workspace. Embedding uses the store's model.
    """
    nodes = load_pypi_sample(limit, workspace_id)
    store.create_workspace(workspace_id)
    if store.count(workspace_id) < len(nodes):
        store.insert(nodes, workspace_id)
    return store.count(workspace_id)
