"""VectorNode: one piece of text, its metadata and its embedding."""

from __future__ import annotations

import html
import json
import reprlib
from itertools import repeat
from operator import attrgetter, is_not
from typing import Any
from uuid import uuid4

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

__all__ = ["VectorNode"]

class _Missing:
    """A sentinel that stays itself through a node's copies and pickles (``is _MISSING`` holds)."""

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self) -> str:
        return "_MISSING"  # unpickled as this module's _MISSING, not a new sentinel

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
_PRIVATE, _METADATA = attrgetter("__pydantic_private__"), attrgetter("metadata")
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxdict = 6
_short.maxlist = 6


class VectorNode(BaseModel):
    """A unit of content stored in a workspace.

    ``vector`` accepts a list of floats or a numpy array and is held as a
    1-D float32 array (the precision every backend stores); ``None`` means
    "embed ``content`` on insert". Search results carry their similarity in
    ``metadata["score"]`` (and in :attr:`score`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, validate_assignment=True, extra="ignore")

    unique_id: str = Field(default_factory=lambda: uuid4().hex)
    workspace_id: str = ""
    content: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    vector: Any = None

    # A search result's similarity ("_score") and the stored metadata["score"] it displaced
    # ("_displaced_score") live in pydantic's __pydantic_private__, which copies, deep-copies and
    # pickles them with the node; every other node leaves it None. Declared as private attributes,
    # they made pydantic build that dict for every node: 40 % of building one (4.14 against 2.35 ms
    # per 1,000 nodes).

    @field_validator("vector", mode="before")
    @classmethod
    def _as_float32(cls, value: Any) -> np.ndarray | None:
        if value is None:
            return None
        try:
            array = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"vector must be a sequence of numbers: {exc}") from None
        if array.ndim != 1:
            raise ValueError(f"vector must be 1-dimensional, got shape {array.shape}")
        return array

    @field_validator("metadata", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_serializer("vector")
    def _vector_as_list(self, vector: np.ndarray | None) -> list[float] | None:
        return None if vector is None else vector.tolist()

    @property
    def score(self) -> float | None:
        """The similarity of a search result (``None`` for nodes not from a search)."""
        private = self.__pydantic_private__
        return None if private is None else private["_score"]

    def with_score(self, score: float) -> VectorNode:
        """Mark this (freshly built) node as a search result with ``score``."""
        score = float(score)
        object.__setattr__(self, "__pydantic_private__", {"_score": score, "_displaced_score": self.metadata.get("score", _MISSING)})
        self.metadata["score"] = score
        return self

    def stored_metadata(self) -> dict[str, Any]:
        """The metadata to write: a search's score never replaces the user's own ``score``."""
        private = self.__pydantic_private__
        if private is None or self.metadata.get("score", _MISSING) != private["_score"]:
            return self.metadata
        metadata = dict(self.metadata)
        if private["_displaced_score"] is _MISSING:
            del metadata["score"]
        else:
            metadata["score"] = private["_displaced_score"]
        return metadata

    @staticmethod
    def stored_metadatas(nodes: list[VectorNode]) -> list[Any]:
        """``stored_metadata()`` of each node, in C-level passes when no node is a search result."""
        if any(map(is_not, map(_PRIVATE, nodes), repeat(None))):
            return [node.stored_metadata() for node in nodes]
        return list(map(_METADATA, nodes))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VectorNode):
            return NotImplemented
        if (self.unique_id, self.workspace_id, self.content, self.metadata) != (
            other.unique_id,
            other.workspace_id,
            other.content,
            other.metadata,
        ):
            return False
        if self.vector is None or other.vector is None:
            return self.vector is None and other.vector is None
        return bool(np.array_equal(self.vector, other.vector))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def _vector_summary(self) -> str:
        if self.vector is None:
            return "None"
        head = ", ".join(f"{x:.4g}" for x in self.vector[:3])
        more = ", …" if len(self.vector) > 3 else ""
        return f"<{len(self.vector)}-d float32 [{head}{more}]>"

    def __repr__(self) -> str:
        return (
            f"VectorNode(unique_id={self.unique_id!r}, workspace_id={self.workspace_id!r}, "
            f"content={_short.repr(self.content)}, metadata={_short.repr(self.metadata)}, "
            f"vector={self._vector_summary()})"
        )

    __str__ = __repr__

    def __repr_args__(self):  # used by pydantic's rich/pretty printers
        yield "unique_id", self.unique_id
        yield "workspace_id", self.workspace_id
        yield "content", self.content
        yield "metadata", self.metadata
        yield "vector", self._vector_summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        metadata = esc(json.dumps(self.metadata, ensure_ascii=False, default=str, indent=1))
        rows = [
            ("unique_id", f"<code>{esc(self.unique_id)}</code>"),
            ("workspace_id", f"<code>{esc(self.workspace_id)}</code>"),
            ("content", esc(self.content[:1000] + ("…" if len(self.content) > 1000 else ""))),
            ("metadata", f"<pre style='margin:0'>{metadata}</pre>"),
            ("vector", esc(self._vector_summary())),
        ]
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>" for k, v in rows)
        return f"<table class='vecbook-node'>{body}</table>"


def _trusted_node_factory():
    """Build ``trusted_node``: a VectorNode from already valid values, 1.8x cheaper than ``model_construct``
    (1.37 against 2.45 ms per 1,000 search results, score included: ~11 us of a 10-result query).

    ``model_construct`` spends most of a search result's cost on defaults; this
    fills the same slots directly. It is checked
    against ``model_construct`` once at import, and not used if they differ
    (another pydantic version).
    """
    fields = {"unique_id": "a", "workspace_id": "w", "content": "c", "metadata": {"k": 1}, "vector": None}
    template = VectorNode.model_construct(**fields)
    setattr_ = object.__setattr__
    new = VectorNode.__new__

    def trusted_node(unique_id: str, workspace_id: str, content: str, metadata: dict, vector: np.ndarray | None) -> VectorNode:
        node = new(VectorNode)
        values = {"unique_id": unique_id, "workspace_id": workspace_id, "content": content, "metadata": metadata, "vector": vector}
        setattr_(node, "__dict__", values)
        setattr_(node, "__pydantic_fields_set__", set(values))
        setattr_(node, "__pydantic_extra__", None)
        setattr_(node, "__pydantic_private__", None)  # not a search result until with_score
        return node

    try:
        probe = trusted_node(**dict(fields, metadata={"k": 1}))
        same = probe == template and probe.model_fields_set == template.model_fields_set and repr(probe) == repr(template)
        probe.with_score(0.5)
        if same and template.__pydantic_private__ is None and probe.metadata["score"] == 0.5 and probe.stored_metadata() == {"k": 1}:
            return trusted_node
    except Exception:  # another pydantic: fall back to the public constructor
        pass

    def constructed(unique_id: str, workspace_id: str, content: str, metadata: dict, vector: np.ndarray | None) -> VectorNode:
        return VectorNode.model_construct(unique_id=unique_id, workspace_id=workspace_id, content=content, metadata=metadata, vector=vector)

    return constructed


trusted_node = _trusted_node_factory()
trusted_node.__doc__ = """A VectorNode from values that are already valid (vector: a 1-D float32 array or None); no checks, no copies."""
