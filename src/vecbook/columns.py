"""NodeColumns: many nodes as parallel columns, for maps, tables and dataframes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .node import VectorNode, trusted_node

__all__ = ["NodeColumns"]


@dataclass
class NodeColumns:
    """Nodes of one workspace as columns; row ``i`` of each column is one node.

    ``vectors`` is an (n, d) float32 matrix (d = 0 while the workspace has no
    vectors). Everything is a copy: changing it does not change the store.
    """

    workspace_id: str
    ids: list[str]
    contents: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"NodeColumns(workspace_id={self.workspace_id!r}, rows={len(self)}, dimensions={self.vectors.shape[1]})"

    def nodes(self) -> list[VectorNode]:
        """The rows as VectorNodes (sharing this object's metadata dicts and vector rows)."""
        return [
            trusted_node(node_id, self.workspace_id, content, metadata, vector)
            for node_id, content, metadata, vector in zip(self.ids, self.contents, self.metadatas, self.vectors)
        ]

    def to_dataframe(self, vectors: bool = False):
        """A pandas DataFrame: ``unique_id``, ``content``, one column per top-level metadata key (and ``vector``)."""
        import pandas as pd

        frame = pd.DataFrame({"unique_id": self.ids, "content": self.contents})
        meta = pd.DataFrame.from_records(self.metadatas, index=frame.index) if self.metadatas else pd.DataFrame(index=frame.index)
        meta = meta.drop(columns=[c for c in meta.columns if c in frame.columns])
        frame = pd.concat([frame, meta], axis=1)
        if vectors:
            frame["vector"] = list(self.vectors)
        return frame

    @classmethod
    def from_nodes(cls, workspace_id: str, nodes: list[VectorNode], dimensions: int | None) -> NodeColumns:
        width = dimensions or (len(nodes[0].vector) if nodes and nodes[0].vector is not None else 0)
        vectors = np.empty((len(nodes), width), dtype=np.float32)
        for row, node in enumerate(nodes):
            vectors[row] = node.vector
        return cls(workspace_id, [n.unique_id for n in nodes], [n.content for n in nodes], [n.metadata for n in nodes], vectors)
