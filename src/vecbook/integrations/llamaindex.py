"""LlamaIndex on vecbook: a vector store over any vecbook store, and a vecbook model as LlamaIndex embedding.

Needs the ``llamaindex`` extra (``pip install 'vecbook[llamaindex]'``, which installs
``llama-index-core``); importing this module without it raises
:class:`~vecbook.MissingDependencyError`.

- :class:`VecbookVectorStore`: a LlamaIndex ``BasePydanticVectorStore`` over one workspace
  of any vecbook store (memory, local, chroma, qdrant, elasticsearch), to use with
  ``VectorStoreIndex.from_vector_store(...)`` or a ``StorageContext``. Every method has
  its async twin (``async_add``, ``adelete``, ``adelete_nodes``, ``aget_nodes``,
  ``aclear``, ``aquery``), which calls vecbook's ``async_*`` methods on the caller's
  event loop; the sync methods run the same code on vecbook's background loop, as
  vecbook's own sync methods do.
- :class:`VecbookEmbedding`: a vecbook embedding model as a LlamaIndex ``BaseEmbedding``.
- :func:`to_vecbook_filter`: LlamaIndex ``MetadataFilters`` as a vecbook portable filter.

Nodes. A LlamaIndex node is stored as a vecbook node with the same id: its text is the
``content``, its embedding the ``vector`` (a node without one is embedded by the store's
``embedding_model``), and its metadata are the node's metadata plus LlamaIndex's
bookkeeping keys (``_node_content``, ``_node_type``, ``doc_id``, ``document_id``,
``ref_doc_id``), the layout LlamaIndex's own Chroma and Qdrant stores write. Nodes come
back as they were added, metadata untouched (the score of a hit is ``NodeWithScore.score``
and ``VectorStoreQueryResult.similarities``, never in the metadata). Nodes of the
workspace written without LlamaIndex (no ``_node_content``) come back as ``TextNode``
with the vecbook node's id, content and metadata.

Filters (see :func:`to_vecbook_filter`): EQ NE GT GTE LT LTE IN NIN CONTAINS ANY ALL
IS_EMPTY, conditions AND, OR and NOT, nested. A filter key names one top-level metadata
key, dots included (``"file.name"`` is that key, not a nested path).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._aio import run_sync
from ..embedding.base import BaseEmbeddingModel
from ..errors import FilterError, MissingDependencyError, ValidationError, WorkspaceNotFoundError
from ..filters import field_key, parse_filter
from ..node import VectorNode
from ..stores.base import BaseVectorStore
from ..stores.engine.batch import validate_workspace_id
from ..stores.engine.scoring import exact_scores
from ..stores.matching import keep_matching

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
    from llama_index.core.schema import BaseNode, MetadataMode, TextNode
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
except ImportError:
    raise MissingDependencyError("llama-index-core", "llamaindex", feature="vecbook.integrations.llamaindex") from None

__all__ = ["VecbookVectorStore", "VecbookEmbedding", "to_vecbook_filter"]

DEFAULT_WORKSPACE = "llamaindex"

# The key LlamaIndex's node_to_metadata_dict writes the node's ref_doc_id under (also as doc_id, document_id).
REF_DOC_KEY = "ref_doc_id"

# A filter no node matches (vecbook has no "false"): a key both present and not.
_NOTHING: dict = {"$and": [{REF_DOC_KEY: {"exists": True}}, {REF_DOC_KEY: {"exists": False}}]}

# ---- filters --------------------------------------------------------------------------------


def _scalar(f: MetadataFilter) -> Any:
    if f.value is None or isinstance(f.value, list):
        raise FilterError(f"the {FilterOperator(f.operator).name} filter on {f.key!r} takes one value (a string or a number), got {f.value!r}")
    return f.value


def _values(f: MetadataFilter) -> list:
    if not isinstance(f.value, list):
        raise FilterError(f"the {FilterOperator(f.operator).name} filter on {f.key!r} takes a list of values, got {f.value!r}")
    return list(f.value)


_RANGES = {FilterOperator.GT: "gt", FilterOperator.GTE: "gte", FilterOperator.LT: "lt", FilterOperator.LTE: "lte"}


def _leaf(f: MetadataFilter) -> dict:
    op = FilterOperator(f.operator)
    key = field_key([f.key])  # the literal top-level key, dots included
    if op in (FilterOperator.EQ, FilterOperator.CONTAINS):
        return {key: {"eq": _scalar(f)}}
    if op == FilterOperator.NE:
        return {key: {"ne": _scalar(f)}}
    if op in _RANGES:
        return {key: {_RANGES[op]: _scalar(f)}}
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return {key: {"in": _values(f)}}
    if op == FilterOperator.NIN:
        return {key: {"nin": _values(f)}}
    if op == FilterOperator.ALL:
        values = _values(f)
        return {"$and": [{key: {"eq": v}} for v in values]} if values else {key: {"exists": True}}
    if op == FilterOperator.IS_EMPTY:
        return {"$or": [{key: {"exists": False}}, {key: {"eq": ""}}]}
    raise FilterError(
        f"the {op.name} filter (on {f.key!r}) has no vecbook counterpart: vecbook filters compare whole values, "
        "without substring matching"
    )


def _tree(filters: MetadataFilters) -> dict | bool:
    """The filter as a vecbook dict, or True (every node) / False (no node) for empty groups."""
    parts = [_tree(f) if isinstance(f, MetadataFilters) else _leaf(f) for f in filters.filters]
    condition = FilterCondition(filters.condition or FilterCondition.AND)
    if condition == FilterCondition.AND:
        return _combine("$and", parts, neutral=True)
    if condition == FilterCondition.OR:
        return _combine("$or", parts, neutral=False)
    if condition == FilterCondition.NOT:  # none of them matches
        either = _combine("$or", parts, neutral=False)
        return (not either) if isinstance(either, bool) else {"$not": either}
    raise FilterError(f"unknown filter condition {condition!r}")


def _combine(op: str, parts: list[dict | bool], neutral: bool) -> dict | bool:
    if (not neutral) in parts:  # False in an AND, True in an OR decides
        return not neutral
    kept = [p for p in parts if not isinstance(p, bool)]
    if not kept:
        return neutral
    return kept[0] if len(kept) == 1 else {op: kept}


def to_vecbook_filter(filters: MetadataFilters | None) -> dict | None:
    """LlamaIndex ``MetadataFilters`` as a vecbook portable filter dict (``None``: no filter).

    ======================  =====================================================================
    LlamaIndex              vecbook (``k`` the literal key: ``field_key([key])``)
    ======================  =====================================================================
    EQ, CONTAINS            ``{k: {"eq": v}}`` — a list-valued field matches when any element does
    NE                      ``{k: {"ne": v}}`` — a node without the key matches
    GT, GTE, LT, LTE        ``{k: {"gt": v}}`` ... (numbers, strings, ISO dates as vecbook compares them)
    IN, ANY                 ``{k: {"in": [...]}}``
    NIN                     ``{k: {"nin": [...]}}`` — a node without the key matches
    ALL                     ``{"$and": [{k: {"eq": v}}, ...]}``
    IS_EMPTY                ``{"$or": [{k: {"exists": False}}, {k: {"eq": ""}}]}``: missing, null, ``[]`` or ``""``
    AND / OR / NOT          ``$and`` / ``$or`` / ``{"$not": {"$or": [...]}}`` (NOT: none matches), nested
    ======================  =====================================================================

    On scalar fields this is LlamaIndex's documented semantics (its ``SimpleVectorStore``
    evaluator): a missing or null key matches NE and NIN only. Where vecbook's rules differ
    from that evaluator's Python comparisons: list-valued fields match element-wise (NE "x"
    excludes a list holding "x"; LlamaIndex compares the whole list), CONTAINS/ANY/ALL on a
    string field compare whole strings (no substrings), booleans are never numbers, ranges
    over mixed types match nothing (no ``TypeError``), and IS_EMPTY also counts ``{}`` and
    lists of nulls as empty.

    An empty ``MetadataFilters`` means no filter (as in LlamaIndex's own stores); nested, an empty
    group is neutral as in Python's ``all([])``/``any([])``.
    TEXT_MATCH and TEXT_MATCH_INSENSITIVE (substring matching) raise :class:`~vecbook.FilterError`,
    as does a value of the wrong shape (a list for EQ, a scalar for IN, ``None``).
    """
    if filters is None:
        return None
    if isinstance(filters, MetadataFilter):
        filters = MetadataFilters(filters=[filters])
    if not isinstance(filters, MetadataFilters):
        raise FilterError(f"filters must be LlamaIndex MetadataFilters, got {type(filters).__name__}")
    if not filters.filters:
        return None
    tree = _tree(filters)
    if tree is True:
        return None
    return _NOTHING if tree is False else tree


def _and(*parts: dict | None) -> dict | None:
    kept = [p for p in parts if p]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else {"$and": kept}


# ---- embeddings -----------------------------------------------------------------------------


class VecbookEmbedding(BaseEmbedding):
    """A vecbook embedding model as a LlamaIndex ``BaseEmbedding`` (queries and texts embedded alike).

    The async methods call the model's ``async_get_embeddings`` on the caller's loop.
    """

    _model: BaseEmbeddingModel = PrivateAttr()

    def __init__(self, model: BaseEmbeddingModel, **kwargs: Any):
        if not isinstance(model, BaseEmbeddingModel):
            raise TypeError(f"VecbookEmbedding wraps a vecbook BaseEmbeddingModel, got {type(model).__name__}")
        kwargs.setdefault("model_name", getattr(model, "model_name", "") or type(model).__name__)
        super().__init__(**kwargs)
        self._model = model

    @classmethod
    def class_name(cls) -> str:
        return "VecbookEmbedding"

    @property
    def model(self) -> BaseEmbeddingModel:
        return self._model

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._model.get_embeddings(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await self._model.async_get_embeddings(query)).tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._model.get_embeddings(text).tolist()

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return (await self._model.async_get_embeddings(text)).tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._model.get_embeddings(list(texts)).tolist() if texts else []

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return (await self._model.async_get_embeddings(list(texts))).tolist() if texts else []


# ---- nodes both ways ------------------------------------------------------------------------


def _to_vecbook(node: BaseNode) -> VectorNode:
    metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)
    vector = node.embedding
    return VectorNode(
        unique_id=node.node_id,
        content=node.get_content(metadata_mode=MetadataMode.NONE),
        metadata=metadata,
        vector=None if vector is None else np.asarray(vector, dtype=np.float32),
    )


def _to_llama(node: VectorNode, with_embedding: bool = False) -> BaseNode:
    metadata = node.stored_metadata()  # without the score a search puts into the metadata
    if "_node_content" in metadata:
        result = metadata_dict_to_node(metadata, text=node.content)
    else:  # a node written without LlamaIndex
        result = TextNode(id_=node.unique_id, text=node.content, metadata=dict(metadata))
    if with_embedding and node.vector is not None:
        result.embedding = np.asarray(node.vector, dtype=np.float64).tolist()
    return result


# ---- the vector store ------------------------------------------------------------------------

_MMR_KWARGS = {"mmr_threshold", "mmr_prefetch_k", "mmr_prefetch_factor"}
DEFAULT_MMR_PREFETCH_FACTOR = 4


class VecbookVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over one workspace of a vecbook store.

    Args:
        store: any :class:`~vecbook.BaseVectorStore`; it is not closed by this object.
        workspace_id: the workspace holding the nodes (default ``"llamaindex"``); created
            on the first write, with the length of the first vectors.

    Until the workspace exists, queries and ``get_nodes`` return nothing and deletes do
    nothing. Query modes: ``default`` and ``mmr``; others raise ``ValueError``.
    """

    stores_text: bool = True
    workspace_id: str = DEFAULT_WORKSPACE

    _store: BaseVectorStore = PrivateAttr()

    def __init__(self, store: BaseVectorStore, workspace_id: str = DEFAULT_WORKSPACE, **kwargs: Any):
        if not isinstance(store, BaseVectorStore):
            raise TypeError(f"store must be a vecbook BaseVectorStore, got {type(store).__name__}")
        super().__init__(workspace_id=validate_workspace_id(workspace_id), **kwargs)
        self._store = store

    @classmethod
    def class_name(cls) -> str:
        return "VecbookVectorStore"

    def __repr__(self) -> str:
        return f"VecbookVectorStore(store={self._store!r}, workspace_id={self.workspace_id!r})"

    @property
    def client(self) -> BaseVectorStore:
        """The vecbook store."""
        return self._store

    @property
    def store(self) -> BaseVectorStore:
        """The vecbook store (same as :attr:`client`)."""
        return self._store

    # ---- writes ------------------------------------------------------------------------

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert nodes (an existing id is replaced); returns their ids. All or nothing.

        A node without an embedding is embedded by the store's ``embedding_model``.
        """
        converted = [_to_vecbook(node) for node in nodes]
        if not converted:
            return []
        last = {node.unique_id: node for node in converted}  # an id given twice: the last one wins
        batch = list(last.values())
        ws = self.workspace_id
        try:
            await self._store.async_insert(batch, ws)
        except WorkspaceNotFoundError:
            first = next((n.vector for n in batch if n.vector is not None), None)
            await self._store.async_create_workspace(ws, dimensions=None if first is None else len(first))
            await self._store.async_insert(batch, ws)
        return [node.node_id for node in nodes]

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Upsert nodes; see :meth:`async_add`."""
        return run_sync(self.async_add(nodes, **kwargs))

    async def _matching_ids(self, filter_dict: dict | None) -> list[str]:
        return (await self._store.async_read_columns(self.workspace_id, filter_dict=filter_dict, columns=["ids"])).ids

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id`` (its source document's id)."""
        try:
            ids = await self._matching_ids({REF_DOC_KEY: {"eq": ref_doc_id}})
            if ids:
                await self._store.async_delete(ids, self.workspace_id)
        except WorkspaceNotFoundError:
            pass

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id``; see :meth:`adelete`."""
        run_sync(self.adelete(ref_doc_id, **delete_kwargs))

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete the nodes with these ids that match ``filters``; ids that do not exist are ignored.

        ``node_ids=None`` means any id, ``filters=None`` any metadata; with neither, nothing
        is deleted (use :meth:`aclear` to empty the store).
        """
        filter_dict = to_vecbook_filter(filters)
        if node_ids is None and filter_dict is None:
            return
        try:
            if filter_dict is None:
                ids = list(node_ids)
            else:
                matching = await self._matching_ids(filter_dict)
                wanted = None if node_ids is None else set(node_ids)
                ids = matching if wanted is None else [i for i in matching if i in wanted]
            if ids:
                await self._store.async_delete(ids, self.workspace_id)
        except WorkspaceNotFoundError:
            pass

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any) -> None:
        """Delete nodes by id and/or filter; see :meth:`adelete_nodes`."""
        run_sync(self.adelete_nodes(node_ids, filters, **delete_kwargs))

    async def aclear(self) -> None:
        """Delete every node of the workspace (the workspace itself stays)."""
        try:
            ids = await self._matching_ids(None)
            if ids:
                await self._store.async_delete(ids, self.workspace_id)
        except WorkspaceNotFoundError:
            pass

    def clear(self) -> None:
        """Delete every node of the workspace; see :meth:`aclear`."""
        run_sync(self.aclear())

    # ---- reads ---------------------------------------------------------------------------

    async def aget_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """The nodes with these ids (in the order asked, missing ones left out) that match ``filters``.

        ``node_ids=None``: every matching node of the workspace. Nodes carry their embedding.
        """
        filter_dict = to_vecbook_filter(filters)
        try:
            if node_ids is None:
                columns = await self._store.async_read_columns(self.workspace_id, filter_dict=filter_dict)
                found = columns.nodes()
            else:
                if not node_ids:
                    return []
                found = await self._store.async_get(list(node_ids), self.workspace_id)
                found = keep_matching(parse_filter(filter_dict), found)
        except WorkspaceNotFoundError:
            return []
        return [_to_llama(node, with_embedding=True) for node in found]

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes by id and/or filter; see :meth:`aget_nodes`."""
        return run_sync(self.aget_nodes(node_ids, filters))

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes most similar to ``query.query_embedding``, best first.

        ``query.filters`` (LlamaIndex ``MetadataFilters``), ``query.doc_ids`` (ref doc ids)
        and ``query.node_ids`` narrow the candidates before ranking; empty or ``None``
        lists narrow nothing, as in LlamaIndex's own stores (``VectorStoreIndex.as_retriever``
        passes ``node_ids=[]`` for a store that keeps the text). Similarities are
        vecbook's (higher is better: the cosine for ``distance="cosine"``).

        MMR mode (``vector_store_query_mode="mmr"``) picks the nodes by maximal marginal
        relevance among the ``mmr_prefetch_k`` most similar (default ``mmr_prefetch_factor``
        × ``similarity_top_k``, factor 4); ``mmr_threshold`` (``query.mmr_threshold`` or a
        keyword, default 0.5) runs from 0 (most diverse) to 1 (most similar); LlamaIndex's
        MMR measures both with the cosine. The similarities returned are still the nodes'
        similarities to the query.
        """
        unknown = set(kwargs) - _MMR_KWARGS
        if unknown:
            raise TypeError(f"VecbookVectorStore.query() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
        mode = VectorStoreQueryMode(query.mode)
        if mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise ValueError(f"VecbookVectorStore supports the query modes 'default' and 'mmr', not {mode.value!r}")
        if query.query_embedding is None:
            raise ValueError("VecbookVectorStore needs query.query_embedding (give the index an embed_model)")
        top_k = query.similarity_top_k
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
            raise ValidationError(f"similarity_top_k must be a non-negative integer, got {top_k!r}")
        top_k = int(top_k)
        filter_dict = _and(
            to_vecbook_filter(query.filters),
            {REF_DOC_KEY: {"in": list(query.doc_ids)}} if query.doc_ids else None,
        )
        vector = np.asarray(query.query_embedding, dtype=np.float32)
        fetch = top_k
        if mode == VectorStoreQueryMode.MMR:
            prefetch_k = kwargs.get("mmr_prefetch_k")
            factor = kwargs.get("mmr_prefetch_factor", DEFAULT_MMR_PREFETCH_FACTOR)
            fetch = max(top_k, int(prefetch_k) if prefetch_k is not None else int(factor * top_k))
        try:
            if query.node_ids:  # an empty list is no restriction (the index passes [] when the store keeps the text)
                hits = await self._among(list(query.node_ids), vector, fetch, filter_dict)
            else:
                hits = await self._store.async_search_by_vector(vector, self.workspace_id, top_k=fetch, filter_dict=filter_dict)
        except WorkspaceNotFoundError:
            hits = []
        if mode == VectorStoreQueryMode.MMR and hits:
            threshold = query.mmr_threshold if query.mmr_threshold is not None else kwargs.get("mmr_threshold")
            _, chosen = get_top_k_mmr_embeddings(
                vector.astype(np.float64).tolist(),
                [np.asarray(hit.vector, dtype=np.float64).tolist() for hit in hits],
                similarity_top_k=top_k,
                embedding_ids=list(range(len(hits))),
                mmr_threshold=threshold,
            )
            hits = [hits[i] for i in chosen]
        hits = hits[:top_k]
        return VectorStoreQueryResult(
            nodes=[_to_llama(hit) for hit in hits],
            similarities=[float(hit.score) for hit in hits],
            ids=[hit.unique_id for hit in hits],
        )

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Query the workspace; see :meth:`aquery`."""
        return run_sync(self.aquery(query, **kwargs))

    async def _among(self, node_ids: list[str], vector: np.ndarray, limit: int, filter_dict: dict | None) -> list[VectorNode]:
        """The ``limit`` nodes among ``node_ids`` matching the filter most similar to ``vector``, scored as vecbook scores."""
        if not node_ids or limit == 0:
            return []
        found = keep_matching(parse_filter(filter_dict), await self._store.async_get(list(dict.fromkeys(node_ids)), self.workspace_id))
        if not found:
            return []
        scores = exact_scores(vector.astype(np.float64), np.array([n.vector for n in found], dtype=np.float64), self._store.distance)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [found[i].with_score(float(scores[i])) for i in order]
