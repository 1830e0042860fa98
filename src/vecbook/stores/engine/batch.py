"""Checking what users hand in, and the columnar batch the backends receive."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from itertools import chain, compress, repeat
from operator import attrgetter, is_, is_not
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import numpy as np

from ...errors import DimensionMismatchError, InvalidWorkspaceIdError, ValidationError
from ...filters import INT64_MAX, INT64_MIN
from ...columns import NodeColumns
from ...node import VectorNode

__all__ = ["NodeBatch", "CheckedNodes", "validate_nodes", "validate_workspace_id", "clean_metadata", "check_vector", "check_node_id", "as_node_list"]

# Safe as a file name, a Chroma collection, a Qdrant collection and (mapped) an ES index.
_WORKSPACE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_ID_BYTES = 512


def validate_workspace_id(workspace_id: Any) -> str:
    """Return ``workspace_id`` if it is a safe name, else raise InvalidWorkspaceIdError.

    1–128 characters of ``A-Z a-z 0-9 _ . -``, not starting with ``.`` or ``-``,
    and not a Windows device name: such an id can never name a path outside the store.
    """
    if not isinstance(workspace_id, str):
        raise InvalidWorkspaceIdError(f"workspace_id must be a string, got {type(workspace_id).__name__}")
    if not _WORKSPACE_ID.fullmatch(workspace_id):
        shown = workspace_id if len(workspace_id) <= 60 else workspace_id[:60] + "…"
        raise InvalidWorkspaceIdError(
            f"invalid workspace_id {shown!r}: use 1-128 characters from A-Z a-z 0-9 _ . - "
            "starting with a letter, digit or underscore"
        )
    if workspace_id.split(".")[0].lower() in _RESERVED:
        raise InvalidWorkspaceIdError(f"invalid workspace_id {workspace_id!r}: a reserved device name on Windows")
    return workspace_id


def check_node_id(unique_id: Any, where: str = "") -> str:
    if not isinstance(unique_id, str) or not unique_id:
        raise ValidationError(f"unique_id must be a non-empty string, got {unique_id!r}{where}")
    if "\x00" in unique_id or len(unique_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        raise ValidationError(f"unique_id must be at most {MAX_ID_BYTES} bytes with no NUL character{where}")
    return unique_id


def clean_metadata(value: Any, where: Any = "metadata") -> Any:
    """A deep copy of JSON-compatible metadata; anything else raises ValidationError.

    Numbers are finite floats and ints in the int64 range (what every backend stores
    and compares exactly). ``where`` (formatted only if there is an error) names the
    metadata in the message.
    """
    return _clean(value, where, ())


_SCALARS = (str, bool, type(None))  # taken as they are; ints are checked for range
_INT64_MIN, _INT64_MAX = INT64_MIN, INT64_MAX


def _at(where: Any, path: tuple) -> str:
    return f"{where}" + "".join(f"[{key!r}]" for key in path)


def _clean(value: Any, where: Any, path: tuple) -> Any:
    kind = type(value)
    if kind in _SCALARS or (kind is int and _INT64_MIN <= value <= _INT64_MAX):
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise ValidationError(f"{_at(where, path)} has a non-string key {key!r}; metadata keys must be strings")
            kind = type(item)
            out[key] = item if kind in _SCALARS or (kind is int and _INT64_MIN <= item <= _INT64_MAX) else _clean(item, where, (*path, key))
        return out
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64_MIN <= value <= _INT64_MAX:
            shown = str(value) if value.bit_length() < 200 else f"an int of {len(str(abs(value)))} digits"
            raise ValidationError(
                f"{_at(where, path)} is {shown}, outside the int64 range [-2**63, 2**63-1] of metadata ints; "
                "store it as a string or a float"
            )
        return value
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{_at(where, path)} is {value!r}; metadata numbers must be finite")
        return value
    if isinstance(value, dict):
        return _clean(dict(value), where, path)
    if isinstance(value, (list, tuple)):
        return [_clean(item, where, (*path, i)) for i, item in enumerate(value)]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return _clean(value.item(), where, path)
    raise ValidationError(f"{_at(where, path)} is a {type(value).__name__}, which is not JSON-serialisable")


def check_vector(vector: Any, dimensions: int | None, where: str = "") -> np.ndarray:
    """A finite 1-D float32 vector of the expected length."""
    try:
        array = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValidationError(f"vector must be a sequence of numbers{where}") from None
    if array.ndim != 1 or array.size == 0:
        raise ValidationError(f"vector must be a non-empty 1-D sequence, got shape {array.shape}{where}")
    if dimensions is not None and array.shape[0] != dimensions:
        raise DimensionMismatchError(dimensions, array.shape[0], where.strip(" ()"))
    if not np.isfinite(array).all():
        raise ValidationError(f"vector contains NaN or infinity{where}")
    return array


def as_node_list(nodes: VectorNode | Iterable[VectorNode]) -> list[VectorNode]:
    if isinstance(nodes, VectorNode):
        return [nodes]
    if isinstance(nodes, (str, bytes, dict)):
        raise ValidationError(f"expected a VectorNode or a list of them, got {type(nodes).__name__}")
    node_list = list(nodes)
    if not all(map(isinstance, node_list, repeat(VectorNode))):
        i, node = next((i, node) for i, node in enumerate(node_list) if not isinstance(node, VectorNode))
        raise ValidationError(f"item #{i} is a {type(node).__name__}, not a VectorNode")
    return node_list


@dataclass
class CheckedNodes:
    """Nodes that passed validation; ``vectors[i]`` is None where node i still needs embedding
    (``vectors`` may be the ``stacked`` matrix itself, when every row has one)."""

    ids: list[str]
    contents: list[str]
    metadatas: list[dict[str, Any]]
    vectors: list[np.ndarray | None]
    dimensions: int | None
    stacked: np.ndarray | None = None  # ``vectors`` as one matrix, when validation stacked them all

    def missing(self) -> list[int]:
        """The rows that have no vector yet."""
        if self.stacked is not None and len(self.stacked) == len(self.ids):
            return []
        return [i for i, v in enumerate(self.vectors) if v is None]

    def to_batch(self, dimensions: int | None) -> NodeBatch:
        if not self.ids:
            return NodeBatch.empty(dimensions or 0)
        matrix = self.stacked if self.stacked is not None and len(self.stacked) == len(self.ids) else np.stack(self.vectors)
        return NodeBatch(self.ids, self.contents, self.metadatas, np.ascontiguousarray(matrix, dtype=np.float32))


class _Where:
    """" (node #i, unique_id=...)", formatted only when an error message needs it."""

    __slots__ = ("index", "node_id", "prefix")

    def __init__(self, index: int, node_id: Any, prefix: str = ""):
        self.index, self.node_id, self.prefix = index, node_id, prefix

    def __str__(self) -> str:
        return f"{self.prefix} (node #{self.index}, unique_id={self.node_id!r})"

    __format__ = lambda self, spec: format(str(self), spec)  # noqa: E731

    def strip(self, chars: str | None = None) -> str:
        return str(self).strip(chars)


def validate_nodes(nodes: Sequence[VectorNode] | NodeColumns, dimensions: int | None) -> CheckedNodes:
    """Check ids, content, metadata and vectors of a batch (pure CPU work, safe in a thread).

    ``nodes`` is a list of VectorNodes or a NodeColumns (see :func:`_columns_of`); both are
    checked as columns. Each column is checked for the whole batch at once (C-level passes, one
    matrix for the vectors); only if a check fails are the rows walked one by one, to raise the
    error a node-by-node check gives (the first problem in node order, non-finite float32
    vectors last), with that node named.
    """
    if isinstance(nodes, NodeColumns):
        ids, contents, metadatas, vectors = _columns_of(nodes)
    else:
        ids = list(map(_UNIQUE_ID, nodes))
        contents = list(map(_CONTENT, nodes))
        metadatas = VectorNode.stored_metadatas(nodes)
        vectors = list(map(_VECTOR, nodes))
    try:
        checked_metadatas = _checked_columns(ids, contents, metadatas)
        dims, stacked = _checked_vectors(vectors, dimensions)
    except (_Invalid, ValidationError, ValueError, TypeError, OverflowError):
        return _validate_each(ids, contents, metadatas, vectors, dimensions)  # raises, naming the node
    return CheckedNodes(ids, contents, checked_metadatas, vectors, dims, stacked)


def _columns_of(columns: NodeColumns) -> tuple[list, list, list, list | np.ndarray]:
    """The four columns of rows handed in as NodeColumns, a column left None filled with a node's default.

    Vectors given as a 2-D array come back as a float32 matrix of this call's own, always a copy
    (as a list of nodes is stacked into one): what is checked is what is written, whatever the
    caller does with theirs meanwhile. Otherwise they come back as a list, one item per row.
    """
    given = {name: getattr(columns, name) for name in ("ids", "contents", "metadatas", "vectors")}
    lengths = {name: len(column) for name, column in given.items() if column is not None}
    if len(set(lengths.values())) > 1:
        raise ValidationError(f"the columns of NodeColumns differ in length: {lengths}")
    n = next(iter(lengths.values()), 0)
    ids = [uuid4().hex for _ in range(n)] if columns.ids is None else list(columns.ids)
    if set(map(type, ids)) - {str}:  # numpy's str_, say: plain strings are what the backends store
        ids = [str(i) if isinstance(i, str) else i for i in ids]
    contents = [""] * n if columns.contents is None else list(columns.contents)
    metadatas = [{}] * n if columns.metadatas is None else list(columns.metadatas)  # copied when checked
    vectors = columns.vectors
    if vectors is None:
        vectors = [None] * n
    elif isinstance(vectors, np.ndarray) and vectors.ndim == 2 and vectors.dtype.kind in "fiu":
        vectors = np.array(vectors, dtype=np.float32, order="C")  # a copy: see above
    else:
        vectors = list(vectors)
    return ids, contents, metadatas, vectors


class _Invalid(Exception):
    """Some node in the batch has a problem: find it with _validate_each."""


_UNIQUE_ID, _CONTENT, _VECTOR = attrgetter("unique_id"), attrgetter("content"), attrgetter("vector")
_FLAT = frozenset({str, bool, type(None), int, float})
_DTYPE, _F32 = attrgetter("dtype"), {np.dtype(np.float32)}


def _checked_columns(ids: list, contents: list, metadatas: list) -> list[dict[str, Any]]:
    """Check ids and contents; return private copies of the metadata (raises _Invalid)."""
    if not all(map(isinstance, ids, repeat(str))) or not all(ids) or len(set(ids)) != len(ids):
        raise _Invalid
    if "\x00" in "".join(ids) or (max(map(len, ids), default=0) * 4 > MAX_ID_BYTES and any(_too_long(i) for i in ids)):
        raise _Invalid
    if not all(map(isinstance, contents, repeat(str))):
        raise _Invalid
    if not all(map(isinstance, metadatas, repeat(dict))):
        if not all(m is None or isinstance(m, dict) for m in metadatas):
            raise _Invalid
        metadatas = [{} if m is None else m for m in metadatas]
    if not set(map(type, chain.from_iterable(metadatas))) <= {str}:
        raise _Invalid
    values = list(chain.from_iterable(map(dict.values, metadatas)))
    kinds = set(map(type, values))
    if not kinds <= _FLAT or set(map(type, metadatas)) != {dict}:  # nested values, numpy scalars, dict subclasses
        return [_clean(m, "metadata", ()) for m in metadatas]
    if int in kinds:
        ints = list(compress(values, map(is_, map(type, values), repeat(int))))
        if min(ints) < _INT64_MIN or max(ints) > _INT64_MAX:
            raise _Invalid
    if float in kinds and not all(map(math.isfinite, compress(values, map(is_, map(type, values), repeat(float))))):
        raise _Invalid
    return list(map(dict.copy, metadatas))  # flat: a shallow copy is a deep one


def _too_long(node_id: str) -> bool:
    return len(node_id) * 4 > MAX_ID_BYTES and len(node_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES


def _checked_vectors(vectors: list | np.ndarray, dimensions: int | None) -> tuple[int | None, np.ndarray | None]:
    """Check the vectors as one matrix; return the batch's dimensions and that matrix (None if some are missing).

    Vectors not given as float32 arrays are converted in ``vectors`` in place.
    """
    if isinstance(vectors, np.ndarray):  # a matrix from NodeColumns (see _columns_of)
        if not vectors.shape[1] or (dimensions is not None and vectors.shape[1] != dimensions) or not np.isfinite(vectors).all():
            raise _Invalid
        return int(vectors.shape[1]), vectors
    present = list(compress(range(len(vectors)), map(is_not, vectors, repeat(None))))
    if not present:
        return dimensions, None
    given = vectors if len(present) == len(vectors) else [vectors[i] for i in present]
    matrix = None
    if set(map(type, given)) == {np.ndarray} and set(map(_DTYPE, given)) == _F32 and len(lengths := set(map(len, given))) == 1:
        flat = np.concatenate(given)  # 1-D arrays end to end: half the cost of np.stack
        matrix = flat.reshape(len(given), lengths.pop()) if flat.ndim == 1 else None
    if matrix is None or matrix.dtype != np.float32 or matrix.ndim != 2:
        matrix = np.stack([check_vector(v, None) for v in given])  # lists, other dtypes: converted as check_vector does
        for i, row in zip(present, matrix):
            vectors[i] = row
    if not matrix.shape[1] or (dimensions is not None and matrix.shape[1] != dimensions) or not np.isfinite(matrix).all():
        raise _Invalid
    return int(matrix.shape[1]), matrix if len(present) == len(vectors) else None


def _validate_each(ids: list, contents: list, metadatas: list, vectors: list | np.ndarray, dimensions: int | None) -> CheckedNodes:
    """Row by row, in order: raises the first problem with the node named (the batch check only says there is one)."""
    checked = CheckedNodes([], [], [], [], dimensions)
    seen: set[str] = set()
    unchecked: list[int] = []  # float32 arrays whose finiteness is checked at the end, all at once
    for i, (node_id, content, metadata) in enumerate(zip(ids, contents, metadatas)):
        if type(node_id) is not str or not node_id or "\x00" in node_id or len(node_id) * 4 > MAX_ID_BYTES:
            check_node_id(node_id, _Where(i, node_id))
        if node_id in seen:
            raise ValidationError(f"unique_id {node_id!r} appears twice in one batch")
        seen.add(node_id)
        if not isinstance(content, str):
            raise ValidationError(f"content must be a string{_Where(i, node_id)}")
        checked.ids.append(node_id)
        checked.contents.append(content)
        if metadata is None:
            metadata = {}
        elif not isinstance(metadata, dict):
            raise ValidationError(f"metadata must be a dict (a JSON object), got {type(metadata).__name__}{_Where(i, node_id)}")
        checked.metadatas.append(clean_metadata(metadata, _Where(i, node_id, "metadata")))
        vector = vectors[i]
        if vector is None:
            pass
        elif type(vector) is np.ndarray and vector.dtype == np.float32 and vector.ndim == 1 and vector.size:
            if checked.dimensions is not None and vector.shape[0] != checked.dimensions:
                raise DimensionMismatchError(checked.dimensions, vector.shape[0], _Where(i, node_id).strip(" ()"))
            unchecked.append(i)
        else:
            vector = check_vector(vector, checked.dimensions, _Where(i, node_id))
        if vector is not None and checked.dimensions is None:
            checked.dimensions = len(vector)
        checked.vectors.append(vector)
    if unchecked:
        stacked = np.stack([checked.vectors[i] for i in unchecked])
        finite = np.isfinite(stacked).all(axis=1)
        if not finite.all():
            first = unchecked[int(np.argmin(finite))]
            raise ValidationError(f"vector contains NaN or infinity{_Where(first, checked.ids[first])}")
        if len(unchecked) == len(ids):
            checked.stacked = stacked  # every vector, in order: the batch's matrix as it is
    return checked


@dataclass
class NodeBatch:
    """Validated nodes as columns: what a backend's ``_upsert`` receives.

    ``vectors`` is a C-contiguous float32 matrix, one row per id; ``metadatas``
    are private deep copies, safe to keep.
    """

    ids: list[str]
    contents: list[str]
    metadatas: list[dict[str, Any]]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dimensions(self) -> int | None:
        return int(self.vectors.shape[1]) if len(self.ids) else None

    def slice(self, start: int, stop: int) -> NodeBatch:
        return NodeBatch(self.ids[start:stop], self.contents[start:stop], self.metadatas[start:stop], self.vectors[start:stop])

    @classmethod
    def empty(cls, dimensions: int = 0) -> NodeBatch:
        return cls([], [], [], np.zeros((0, dimensions), dtype=np.float32))

    @classmethod
    def concat(cls, batches: Sequence[NodeBatch]) -> NodeBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        return cls(
            [i for b in batches for i in b.ids],
            [c for b in batches for c in b.contents],
            [m for b in batches for m in b.metadatas],
            np.ascontiguousarray(np.concatenate([b.vectors for b in batches])),
        )
