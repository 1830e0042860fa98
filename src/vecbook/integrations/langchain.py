"""LangChain on vecbook: a ``VectorStore`` over any vecbook store, and embedding models both ways.

Needs the ``langchain`` extra (``pip install 'vecbook[langchain]'``, which installs
``langchain-core``); importing this module without it raises
:class:`~vecbook.MissingDependencyError`.

- :class:`VecbookVectorStore`: a ``langchain_core.vectorstores.VectorStore`` over one
  workspace of any vecbook store (memory, local, chroma, qdrant, elasticsearch).
  Documents are nodes: ``Document.id`` is the node's ``unique_id``, ``page_content``
  its ``content``, ``metadata`` its metadata, returned exactly as stored (the
  similarity is never put into it). Async methods call vecbook's ``async_*`` methods
  and the embeddings' ``aembed_*`` directly, on the caller's event loop.
- :class:`VecbookEmbeddings`: a vecbook embedding model as LangChain ``Embeddings``.
- :class:`LangChainEmbeddingModel`: LangChain ``Embeddings`` as a vecbook embedding model
  (batching, retries and the cache of :class:`~vecbook.BaseEmbeddingModel` included).

Scores. ``similarity_search_with_score`` returns vecbook's similarity as it is
(higher is better: cosine in [-1, 1] for ``distance="cosine"``, the dot product
for ``"dot"``, −‖q − x‖ for ``"euclidean"``). ``similarity_search_with_relevance_scores``
maps it to [0, 1] with :func:`relevance_score`: ``(1 + cos) / 2`` for cosine, the
same formula for unit vectors under ``dot`` (``dot == cos``) and ``euclidean``
(``cos = 1 − d² / 2``, so ``1 − d² / 4``), clipped to [0, 1] for other vectors.

Filters are vecbook's portable filter dicts (see the filters page), passed as
``filter=``, also through ``as_retriever(search_kwargs={"filter": {...}})``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..embedding.base import BaseEmbeddingModel
from ..errors import MissingDependencyError, ValidationError, WorkspaceNotFoundError
from ..node import VectorNode
from ..stores.base import BaseVectorStore
from ..stores.engine.batch import validate_workspace_id

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError:
    raise MissingDependencyError("langchain-core", "langchain", feature="vecbook.integrations.langchain") from None

__all__ = ["VecbookVectorStore", "VecbookEmbeddings", "LangChainEmbeddingModel", "relevance_score"]

DEFAULT_WORKSPACE = "langchain"


def relevance_score(score: float, distance: str = "cosine") -> float:
    """A vecbook similarity ``score`` mapped to a relevance in [0, 1] (1 = most similar).

    ``cosine``: ``(1 + cos) / 2``. ``dot``: the same formula (exact for unit vectors,
    where the dot product is the cosine). ``euclidean`` (``score = −d``): ``1 − d² / 4``,
    which is ``(1 + cos) / 2`` for unit vectors. Values are clipped to [0, 1].
    """
    if distance == "euclidean":
        value = 1.0 - (score * score) / 4.0
    else:
        value = (1.0 + score) / 2.0
    return min(1.0, max(0.0, value))


# ---- embeddings, both ways ------------------------------------------------------------------


class VecbookEmbeddings(Embeddings):
    """A vecbook embedding model as LangChain ``Embeddings``.

    Queries and documents are embedded alike (vecbook models make no difference);
    the async methods call the model's ``async_get_embeddings`` on the caller's loop.
    """

    def __init__(self, model: BaseEmbeddingModel):
        if not isinstance(model, BaseEmbeddingModel):
            raise TypeError(f"VecbookEmbeddings wraps a vecbook BaseEmbeddingModel, got {type(model).__name__}")
        self.model = model

    def __repr__(self) -> str:
        return f"VecbookEmbeddings({self.model!r})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.get_embeddings(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.model.get_embeddings(text).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return (await self.model.async_get_embeddings(list(texts))).tolist()

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.model.async_get_embeddings(text)).tolist()


class LangChainEmbeddingModel(BaseEmbeddingModel):
    """LangChain ``Embeddings`` as a vecbook embedding model (e.g. a store's ``embedding_model``).

    Every text, query or document, goes through ``embed_documents`` (vecbook models
    embed both alike). ``use_async=True`` (the default) makes the async path call
    ``aembed_documents``; a sync call of a vecbook store then runs it on vecbook's own
    background loop, so pass ``use_async=False`` for ``Embeddings`` whose async client
    is bound to another event loop (their sync ``embed_documents`` then runs in a
    worker thread). Other keyword arguments go to :class:`~vecbook.BaseEmbeddingModel`
    (``dimensions``, ``batch_size``, ``max_concurrency``, ``cache_size``, ...).
    """

    def __init__(self, embeddings: Embeddings, model_name: str = "", *, use_async: bool = True, **kwargs: Any):
        if not isinstance(embeddings, Embeddings):
            raise TypeError(f"LangChainEmbeddingModel wraps langchain_core Embeddings, got {type(embeddings).__name__}")
        name = model_name or str(getattr(embeddings, "model", "") or getattr(embeddings, "model_name", "") or type(embeddings).__name__)
        super().__init__(model_name=name, **kwargs)
        self.embeddings = embeddings
        self.use_async = use_async

    def embed_batch(self, texts: list[str]) -> list[list[float]]:
        return self.embeddings.embed_documents(texts)

    async def async_embed_batch(self, texts: list[str]) -> Any:
        if self.use_async:
            return await self.embeddings.aembed_documents(texts)
        return await super().async_embed_batch(texts)


# ---- the vector store ------------------------------------------------------------------------


def _document(node: VectorNode) -> Document:
    # stored_metadata(): the metadata as stored, without the score a search puts into it
    return Document(id=node.unique_id, page_content=node.content, metadata=node.stored_metadata())


def _scored(node: VectorNode) -> tuple[Document, float]:
    return _document(node), float(node.score)


def _reject_kwargs(method: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"VecbookVectorStore.{method}() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")


def _add_kwargs(method: str, kwargs: dict[str, Any]) -> None:
    kwargs.pop("batch_size", None)  # LangChain's indexing API passes it; vecbook chunks writes itself
    _reject_kwargs(method, kwargs)


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValidationError(f"{name} must be a non-negative integer, got {k!r}")
    return int(k)


class VecbookVectorStore(VectorStore):
    """A LangChain ``VectorStore`` over one workspace of a vecbook store.

    Args:
        store: any :class:`~vecbook.BaseVectorStore`; it is not closed by this object.
        workspace_id: the workspace holding the documents (default ``"langchain"``);
            created on the first write, with the length of the first vectors.
        embedding: LangChain ``Embeddings`` for texts and queries. Without one, the
            store's own ``embedding_model`` is used (through :class:`VecbookEmbeddings`).

    Until the workspace exists, searches return nothing, ``get_by_ids`` returns
    ``[]`` and ``delete`` does nothing.
    """

    def __init__(self, store: BaseVectorStore, workspace_id: str = DEFAULT_WORKSPACE, embedding: Embeddings | None = None):
        if not isinstance(store, BaseVectorStore):
            raise TypeError(f"store must be a vecbook BaseVectorStore, got {type(store).__name__}")
        if embedding is None:
            if store.embedding_model is None:
                raise ValidationError("pass embedding= (LangChain Embeddings) or give the store an embedding_model")
            embedding = VecbookEmbeddings(store.embedding_model)
        elif not isinstance(embedding, Embeddings):
            raise TypeError(f"embedding must be LangChain Embeddings, got {type(embedding).__name__}")
        self.store = store
        self.workspace_id = validate_workspace_id(workspace_id)
        self.embedding = embedding

    def __repr__(self) -> str:
        return f"VecbookVectorStore(store={self.store!r}, workspace_id={self.workspace_id!r}, embedding={self.embedding!r})"

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    def _select_relevance_score_fn(self):
        distance = self.store.distance
        return lambda score: relevance_score(score, distance)

    # ---- writes ------------------------------------------------------------------------

    @staticmethod
    def _batch(texts: Iterable[str], metadatas: Sequence[dict] | None, ids: Sequence[str | None] | None) -> tuple[list[str], list[dict], list[str]]:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValidationError(f"got {len(metadatas)} metadatas for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValidationError(f"got {len(ids)} ids for {len(texts)} texts")
        metas = [dict(m) if m else {} for m in metadatas] if metadatas is not None else [{} for _ in texts]
        given = list(ids) if ids is not None else [None] * len(texts)
        return texts, metas, [i if i is not None and i != "" else str(uuid.uuid4()) for i in given]

    @staticmethod
    def _nodes(texts: list[str], metadatas: list[dict], ids: list[str], vectors: Any) -> list[VectorNode]:
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise ValidationError(f"the embeddings returned shape {matrix.shape} for {len(texts)} texts")
        last = {node_id: i for i, node_id in enumerate(ids)}  # an id given twice: the last one wins, as in two upserts
        return [
            VectorNode(unique_id=node_id, content=texts[i], metadata=metadatas[i], vector=matrix[i])
            for node_id, i in last.items()
        ]

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts (an existing id is replaced); returns their ids, generated where missing.

        All or nothing: on an error nothing from this call is written.
        """
        _add_kwargs("add_texts", kwargs)
        texts, metas, ids = self._batch(texts, metadatas, ids)
        if not texts:
            return []
        nodes = self._nodes(texts, metas, ids, self.embedding.embed_documents(texts))
        try:
            self.store.insert(nodes, self.workspace_id)
        except WorkspaceNotFoundError:
            self.store.create_workspace(self.workspace_id, dimensions=len(nodes[0].vector))
            self.store.insert(nodes, self.workspace_id)
        return ids

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Async twin of :meth:`add_texts`."""
        _add_kwargs("aadd_texts", kwargs)
        texts, metas, ids = self._batch(texts, metadatas, ids)
        if not texts:
            return []
        nodes = self._nodes(texts, metas, ids, await self.embedding.aembed_documents(texts))
        try:
            await self.store.async_insert(nodes, self.workspace_id)
        except WorkspaceNotFoundError:
            await self.store.async_create_workspace(self.workspace_id, dimensions=len(nodes[0].vector))
            await self.store.async_insert(nodes, self.workspace_id)
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id; ids that do not exist are ignored.

        ``ids=None`` deletes every document of the workspace (LangChain's contract; the
        workspace itself stays), ``ids=[]`` none. All or nothing, like vecbook's ``delete``.
        """
        _reject_kwargs("delete", kwargs)
        try:
            if ids is None:
                ids = self.store.read_columns(self.workspace_id, columns=["ids"]).ids
            if ids:
                self.store.delete(list(ids), self.workspace_id)
        except WorkspaceNotFoundError:
            pass
        return True

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Async twin of :meth:`delete`."""
        _reject_kwargs("adelete", kwargs)
        try:
            if ids is None:
                ids = (await self.store.async_read_columns(self.workspace_id, columns=["ids"])).ids
            if ids:
                await self.store.async_delete(list(ids), self.workspace_id)
        except WorkspaceNotFoundError:
            pass
        return True

    # ---- reads ---------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents with these ids, in the order asked; missing ids are left out."""
        if not ids:
            return []
        try:
            return [_document(node) for node in self.store.get(list(ids), self.workspace_id)]
        except WorkspaceNotFoundError:
            return []

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Async twin of :meth:`get_by_ids`."""
        if not ids:
            return []
        try:
            return [_document(node) for node in await self.store.async_get(list(ids), self.workspace_id)]
        except WorkspaceNotFoundError:
            return []

    def _hits(self, vector: Any, k: int, filter: dict | None) -> list[VectorNode]:
        try:
            return self.store.search_by_vector(vector, self.workspace_id, top_k=_check_k(k), filter_dict=filter)
        except WorkspaceNotFoundError:
            return []

    async def _ahits(self, vector: Any, k: int, filter: dict | None) -> list[VectorNode]:
        try:
            return await self.store.async_search_by_vector(vector, self.workspace_id, top_k=_check_k(k), filter_dict=filter)
        except WorkspaceNotFoundError:
            return []

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` documents most similar to a query vector, with vecbook's similarity (higher is better)."""
        _reject_kwargs("similarity_search_with_score_by_vector", kwargs)
        return [_scored(node) for node in self._hits(embedding, k, filter)]

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Async twin of :meth:`similarity_search_with_score_by_vector`."""
        _reject_kwargs("asimilarity_search_with_score_by_vector", kwargs)
        return [_scored(node) for node in await self._ahits(embedding, k, filter)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` documents most similar to ``query``, best first, with vecbook's similarity.

        ``filter`` is a vecbook portable filter dict.
        """
        _reject_kwargs("similarity_search_with_score", kwargs)
        return self.similarity_search_with_score_by_vector(self.embedding.embed_query(query), k, filter)

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[tuple[Document, float]]:
        """Async twin of :meth:`similarity_search_with_score`."""
        _reject_kwargs("asimilarity_search_with_score", kwargs)
        return await self.asimilarity_search_with_score_by_vector(await self.embedding.aembed_query(query), k, filter)

    def similarity_search(self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[Document]:
        """The ``k`` documents most similar to ``query``, best first (``filter``: a vecbook filter dict)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[Document]:
        """Async twin of :meth:`similarity_search`."""
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[Document]:
        """Like :meth:`similarity_search`, with a query vector."""
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[Document]:
        """Async twin of :meth:`similarity_search_by_vector`."""
        return [doc for doc, _ in await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    # similarity_search_with_relevance_scores and its async twin come from VectorStore: they call
    # (a)similarity_search_with_score and map each score with _select_relevance_score_fn.

    @staticmethod
    def _mmr(embedding: Any, hits: list[VectorNode], k: int, lambda_mult: float) -> list[Document]:
        if not hits:
            return []
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), [hit.vector for hit in hits], lambda_mult=lambda_mult, k=k
        )
        return [_document(hits[i]) for i in chosen]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents chosen by maximal marginal relevance among the ``fetch_k`` most similar.

        ``lambda_mult`` runs from 0 (most diverse) to 1 (most similar); ``filter`` applies
        to the candidates.
        """
        _reject_kwargs("max_marginal_relevance_search_by_vector", kwargs)
        k = _check_k(k)
        hits = self._hits(embedding, max(_check_k(fetch_k, "fetch_k"), k), filter)
        return self._mmr(embedding, hits, k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Async twin of :meth:`max_marginal_relevance_search_by_vector`."""
        _reject_kwargs("amax_marginal_relevance_search_by_vector", kwargs)
        k = _check_k(k)
        hits = await self._ahits(embedding, max(_check_k(fetch_k, "fetch_k"), k), filter)
        return self._mmr(embedding, hits, k, lambda_mult)

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        """Like :meth:`max_marginal_relevance_search_by_vector`, for a text query."""
        vector = self.embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter, **kwargs)

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        """Async twin of :meth:`max_marginal_relevance_search`."""
        vector = await self.embedding.aembed_query(query)
        return await self.amax_marginal_relevance_search_by_vector(vector, k, fetch_k, lambda_mult, filter, **kwargs)

    # ---- constructors ----------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        store: BaseVectorStore | None = None,
        workspace_id: str = DEFAULT_WORKSPACE,
        **kwargs: Any,
    ) -> VecbookVectorStore:
        """A vector store holding ``texts``; ``store`` defaults to a new :class:`~vecbook.MemoryVectorStore`."""
        _add_kwargs("from_texts", kwargs)
        vectorstore = cls(_default_store(store), workspace_id, embedding)
        vectorstore.add_texts(texts, metadatas, ids=ids)
        return vectorstore

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        store: BaseVectorStore | None = None,
        workspace_id: str = DEFAULT_WORKSPACE,
        **kwargs: Any,
    ) -> VecbookVectorStore:
        """Async twin of :meth:`from_texts`."""
        _add_kwargs("afrom_texts", kwargs)
        vectorstore = cls(_default_store(store), workspace_id, embedding)
        await vectorstore.aadd_texts(texts, metadatas, ids=ids)
        return vectorstore


def _default_store(store: BaseVectorStore | None) -> BaseVectorStore:
    if store is not None:
        return store
    from ..stores.memory import MemoryVectorStore

    return MemoryVectorStore()
