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
        shape = np.shape(self.vectors) if isinstance(self.vectors, np.ndarray) else ()
        dims = f", dimensions={shape[1]}" if len(shape) == 2 else ""
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
        pd = _pandas("to_dataframe()")

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
    def from_dataframe(cls, frame, vectors: str | None = "vector") -> NodeColumns:
        """Columns to ``insert``, from a pandas DataFrame laid out as :meth:`to_dataframe` writes one.

        Its ``unique_id`` and ``content`` columns become the ids and contents (a column the
        frame lacks is left ``None``: new ids, empty contents), the column named ``vectors``
        the vectors (one array or list per row; ``None`` or a missing value: embedded), and
        every other column a metadata field. A row's missing values (``NaN``, ``None``, ``NaT``)
        are left out of its metadata, as ``to_dataframe`` fills them in; numbers become Python
        numbers and timestamps ISO 8601 strings (what the filters compare as dates). Columns
        pandas widened stay wide: an int column with gaps holds floats.
        """
        pd = _pandas("from_dataframe()")
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"from_dataframe() takes a pandas DataFrame, got {type(frame).__name__}")
        if frame.columns.has_duplicates:
            raise ValueError(f"the frame has columns of the same name: {sorted(set(frame.columns[frame.columns.duplicated()]), key=str)}")
        fields = [name for name in frame.columns if name not in ("unique_id", "content", vectors)]
        metadatas: list[dict[str, Any]] = [{} for _ in range(len(frame))]
        for name in fields:
            for metadata, value in zip(metadatas, _present(pd, frame[name])):
                if value is not _ABSENT:
                    metadata[name] = value
        vector_column = None
        if vectors in frame.columns:
            vector_column = [None if value is _ABSENT else value for value in _present(pd, frame[vectors])]
        return cls(
            "",
            frame["unique_id"].tolist() if "unique_id" in frame.columns else None,
            frame["content"].tolist() if "content" in frame.columns else None,
            metadatas,
            vector_column,
        )

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


_ABSENT = object()


def _present(pd, column) -> list:
    """The column's values as Python objects, ``_ABSENT`` where a value is missing; timestamps as ISO strings."""
    missing = column.isna().to_numpy()
    if pd.api.types.is_datetime64_any_dtype(column):
        column = column.map(lambda stamp: stamp.isoformat(), na_action="ignore")
    values = column.tolist()  # numpy numbers become Python numbers
    if missing.any():
        return [_ABSENT if gone else value for value, gone in zip(values, missing)]
    return values


def _pandas(feature: str):
    try:
        import pandas
    except ImportError as exc:
        from .errors import MissingDependencyError

        raise MissingDependencyError("pandas", "notebook", feature=f"NodeColumns.{feature}") from exc
    return pandas
