"""NodeColumns: many nodes as parallel columns, for maps, tables and dataframes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _big_arrays
from .node import VectorNode, trusted_node

__all__ = ["COLUMNS", "NodeColumns"]

COLUMNS = frozenset({"ids", "contents", "metadatas", "vectors"})


@dataclass
class NodeColumns:
    """Nodes of one workspace as columns; row ``i`` of each column is one node.

    ``vectors`` is an (n, d) float32 matrix (d = 0 while the workspace has no
    vectors). Everything is a copy: changing it does not change the store.
    A column that ``read_columns(columns=...)`` did not read is ``None``.

    ``insert`` takes one too, the fast way to load many nodes (no ``VectorNode`` per
    row): ``store.insert(NodeColumns(ids=ids, contents=texts, metadatas=metas,
    vectors=matrix), "ws")``. A column left ``None`` takes a node's default: new
    random ids, empty contents, empty metadata, and vectors embedded from the contents.
    ``vectors`` may be an (n, d) matrix of any float dtype, or a sequence of vectors.
    """

    workspace_id: str = ""
    ids: list[str] | None = None
    contents: list[str] | None = None
    metadatas: list[dict[str, Any]] | None = None
    vectors: np.ndarray | None = None

    def __len__(self) -> int:
        return next((len(c) for c in (self.ids, self.contents, self.metadatas, self.vectors) if c is not None), 0)

    def __repr__(self) -> str:
        read = [name for name in ("ids", "contents", "metadatas", "vectors") if getattr(self, name) is not None]
        dims = "" if self.vectors is None else f", dimensions={self.vectors.shape[1]}"
        more = "" if len(read) == 4 else f", columns={read}"
        return f"NodeColumns(workspace_id={self.workspace_id!r}, rows={len(self)}{dims}{more})"

    def nodes(self) -> list[VectorNode]:
        """The rows as VectorNodes (sharing this object's metadata dicts and vector rows); needs every column."""
        missing = [name for name in sorted(COLUMNS) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"nodes() needs every column; these were not read: {missing}")
        return [
            trusted_node(node_id, self.workspace_id, content, metadata, vector)
            for node_id, content, metadata, vector in zip(self.ids, self.contents, self.metadatas, self.vectors)
        ]

    def to_dataframe(self, vectors: bool = False):
        """A pandas DataFrame: ``unique_id``, ``content``, one column per top-level metadata key (and ``vector``)."""
        import pandas as pd

        base = {"unique_id": self.ids, "content": self.contents}
        frame = pd.DataFrame({k: v for k, v in base.items() if v is not None}, index=pd.RangeIndex(len(self)))
        if self.metadatas is not None:
            meta = pd.DataFrame.from_records(self.metadatas, index=frame.index) if self.metadatas else pd.DataFrame(index=frame.index)
            meta = meta.drop(columns=[c for c in meta.columns if c in frame.columns])
            frame = pd.concat([frame, meta], axis=1)
        if vectors and self.vectors is not None:
            frame["vector"] = list(self.vectors)
        return frame

    @classmethod
    def from_nodes(cls, workspace_id: str, nodes: list[VectorNode], dimensions: int | None,
                   columns: frozenset[str] = COLUMNS) -> NodeColumns:
        """The ``columns`` (names of fields) of ``nodes``; the others ``None``."""
        vectors = None
        if "vectors" in columns:
            width = dimensions or (len(nodes[0].vector) if nodes and nodes[0].vector is not None else 0)
            vectors = _big_arrays.empty((len(nodes), width), np.float32)  # a bulk read: see _big_arrays
            for row, node in enumerate(nodes):
                vectors[row] = node.vector
        return cls(workspace_id,
                   [n.unique_id for n in nodes] if "ids" in columns else None,
                   [n.content for n in nodes] if "contents" in columns else None,
                   [n.metadata for n in nodes] if "metadatas" in columns else None,
                   vectors)
