"""ChromaVectorStore: workspaces as Chroma collections, embedded or on a Chroma server.

``store_dir`` (the default) opens an embedded ``chromadb.PersistentClient``;
``host``/``port`` talk to a ``chroma run`` server (chroma_client.py: which client
serves which call, kept collection handles, errors). vecbook always hands Chroma
vectors, never texts, so Chroma's default embedder (which downloads a model) is
never called.

Workspace ``ws`` is the collection ``{collection_prefix}{ws}`` (chroma_layout: names,
and how vectors are stored); node metadata is stored as chroma_filters describes, which
is also where filters are translated (format 4; earlier formats: legacy.py).

Writes go in chunks of ``batch_size`` (at most Chroma's maximum batch), one Chroma
call each; the base class makes a call all or nothing over its chunks (``writes.py``).

What Chroma 1.5.9 does that this module works around (each at its place):

- cosine collections return vectors rescaled from unit length, a few ulps off:
  cosine workspaces are ``ip`` collections of vectors vecbook normalises (chroma_layout);
- ``upsert`` merges the new metadata into the old one: stale keys are set to None;
- ``delete_collection`` leaves list-valued metadata for the next records that
  reuse its row ids (chroma-core/chroma#7594): records are deleted first;
- a float operand against a stored int is truncated (``0 == 0.5``), an int operand
  against a stored float rounded: numbers are stored as floats (with an int rest
  beyond 2**53), and compared with float operands (chroma_filters);
- a query may return fewer hits than asked although more match: checked;
- a query may return a hit deleted while it ran, without metadata or document: read
  again, and dropped if gone;
- a filter on scalar metadata slows down with everything stored beside it, list
  clauses (``$or`` with ``$contains``) most: the exact copies are lists, which Chroma
  keeps apart, and while a collection holds no list of the user's (``vecbook:no_lists``
  in its metadata) filters leave the list clauses out;
- ``where`` cannot test whether a key is present: each record lists its present paths
  in one list-valued key (chroma_filters);
- the HTTP clients set no timeout, and ``AsyncHttpClient`` pools one httpx client per
  ``hash(event loop)``: see chroma_client.py.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from ...errors import MissingDependencyError, ValidationError, WorkspaceNotFoundError
from ...filters import FilterNode
from ...node import VectorNode, trusted_node
from ..base import BaseVectorStore
from ..column_reads import COLUMNS
from ..matching import Translation
from ..engine.batch import NodeBatch
from .client import Clients
from .filters import EVERYTHING, JSON_KEY, SHAPE_KEY, VECTOR_KEY, decode_metadatas, decode_vectors, encode_metadata, has_lists
from .filters import Where, needs_list_check, to_where
from .layout import FORMAT, SPACES, Layout, collection_name, layout_of, workspace_of
from .legacy import read_layouts, side_name

__all__ = ["ChromaVectorStore", "collection_name", "workspace_of"]

_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{1,199}")
NO_LISTS = "vecbook:no_lists"  # in a collection's metadata from its creation until a list is written


def _chromadb() -> Any:
    try:
        import chromadb
    except ImportError:
        raise MissingDependencyError("chromadb", "chroma", feature="ChromaVectorStore") from None
    return chromadb


class ChromaVectorStore(BaseVectorStore):
    """Workspaces in Chroma: embedded under ``store_dir``, or on a server at ``host``/``port``.

    Args:
        store_dir: directory of the embedded database (and the default dump directory).
        host, port: a Chroma server (``chroma run``); either one selects server mode.
        collection_prefix: starts the name of every collection vecbook makes; others are ignored.
        ssl, headers: passed to ``chromadb.AsyncHttpClient`` (e.g. an auth token header).
        connect_timeout: seconds to wait for a server before BackendUnavailableError.
        request_timeout: seconds a server may take to answer a request before BackendUnavailableError
            (``None``: wait forever).
    """

    backend = "chroma"

    def __init__(
        self,
        embedding_model=None,
        store_dir: str = "./chroma_vector_store",
        batch_size: int = 1024,
        host: str | None = None,
        port: int | None = None,
        distance: Any = "cosine",
        collection_prefix: str = "vecbook_",
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 5.0,
        request_timeout: float | None = 60.0,
        **kwargs: Any,
    ):
        super().__init__(embedding_model=embedding_model, batch_size=batch_size, distance=distance, **kwargs)
        if not isinstance(collection_prefix, str) or not _PREFIX.fullmatch(collection_prefix):
            raise ValidationError(
                f"collection_prefix must be 2-200 characters of A-Z a-z 0-9 _ - starting with a letter or digit, got {collection_prefix!r}"
            )
        self.store_dir = str(store_dir)
        self.collection_prefix = collection_prefix
        self.server = host is not None or port is not None
        self.host = (host or "localhost") if self.server else None
        self.port = int(port or 8000) if self.server else None
        self.connect_timeout, self.request_timeout = connect_timeout, request_timeout
        self._space = SPACES[self.distance]
        options = {"ssl": ssl, "headers": headers}
        self._clients = Clients(_chromadb(), self._name, self.store_dir, self.host, self.port, options, connect_timeout, request_timeout)
        self._not_found = self._clients.not_found
        self._layouts: dict[str, list] = {}  # format 3: shape id -> compiled metadata layout (ids are content hashes: kept for good)

    def _after_fork(self) -> None:
        if not self.server:
            self._refuse_in_child()

    def _describe(self) -> str:
        where = f"host={self.host!r}, port={self.port}" if self.server else f"store_dir={self.store_dir!r}"
        return f"{where}, collection_prefix={self.collection_prefix!r}"

    def _name(self, ws: str) -> str:
        return collection_name(self.collection_prefix, ws)

    async def _write_chunk(self) -> int:
        """Nodes per write: ``batch_size``, or less if Chroma takes less in one call."""
        most = await self._clients.max_batch()
        return min(self.batch_size, most) if most > 0 else self.batch_size

    # ---- workspaces ----------------------------------------------------------------------

    async def _exists(self, ws: str) -> bool:
        try:
            await self._clients.collection(ws, fresh=True)  # also renews the handle the next hooks use
        except WorkspaceNotFoundError:
            return False
        return True

    async def _known(self, ws: str) -> bool:
        # A collection we hold a handle of needs no fresh look-up before each operation: if it was
        # deleted meanwhile, the operation fails and _on renews the handle or raises WorkspaceNotFoundError.
        if ws in (await self._clients.conn()).collections:
            return True
        return await self._exists(ws)

    async def _layout(self, ws: str) -> Layout:
        return layout_of(await self._clients.collection(ws))

    async def _create(self, ws: str, dimensions: int | None) -> None:
        metadata: dict[str, Any] = {"vecbook:format": FORMAT, "vecbook:distance": self.distance, NO_LISTS: True}
        if dimensions is not None:
            metadata["vecbook:dimensions"] = dimensions
        self._clients.forget(ws)
        conn = await self._clients.conn()
        conn.collections[ws] = await self._clients.run(
            conn.client.get_or_create_collection,
            name=self._name(ws),
            schema=self._schema(),
            metadata=metadata,
            embedding_function=None,
        )

    def _schema(self) -> Any:
        """The distance, and no string index on the keys that are only read back (``%j``, ``%x``)."""
        from chromadb.api.types import Schema, StringInvertedIndexConfig, VectorIndexConfig

        schema = Schema().create_index(VectorIndexConfig(space=self._space, embedding_function=None))
        for key in (JSON_KEY, VECTOR_KEY):
            schema.delete_index(StringInvertedIndexConfig(), key=key)
        return schema

    async def _drop(self, ws: str) -> None:
        conn = await self._clients.conn()
        try:
            # Chroma (1.5.9) leaves a deleted collection's list-valued metadata behind, and records that later
            # reuse its row ids inherit it (chroma-core/chroma#7594): delete the records first.
            await self._clients.on(ws, "delete", where=EVERYTHING)
            await self._clients.run(conn.client.delete_collection, name=self._name(ws))
        except (self._not_found, WorkspaceNotFoundError):
            pass
        with contextlib.suppress(self._not_found):
            await self._clients.run(conn.client.delete_collection, name=side_name(self._name(ws)))
        self._clients.forget(ws)

    async def _list(self) -> list[str]:
        conn = await self._clients.conn()
        names: list[str] = []
        page = 1000
        while True:
            collections = await self._clients.run(conn.client.list_collections, limit=page, offset=len(names))
            names.extend(c.name for c in collections)
            if len(collections) < page:
                break
        found = (workspace_of(self.collection_prefix, name) for name in names)
        return [ws for ws in found if ws is not None]

    async def _dimensions(self, ws: str) -> int | None:
        dimension = _dimension_of(await self._clients.collection(ws))
        if dimension is None:  # a handle from before the first insert does not learn it: look again
            dimension = _dimension_of(await self._clients.collection(ws, fresh=True))
        return dimension

    # ---- nodes ---------------------------------------------------------------------------

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        layout = await self._layout(ws)
        embeddings, copies = layout.stored(batch.vectors)
        metadatas = [encode_metadata(m, v) for m, v in zip(batch.metadatas, copies)]  # all before any write
        if any(has_lists(m) for m in metadatas):
            await self._allow_lists(ws)
        await self._write(ws, batch, metadatas, embeddings)

    async def _write(self, ws: str, chunk: NodeBatch, metadatas: list[dict[str, Any]], embeddings: np.ndarray) -> None:
        # Chroma's upsert merges the new metadata into the stored one: a key set to None is removed.
        old = await self._clients.on(ws, "get", ids=chunk.ids, include=["metadatas"])
        stale = {node_id: stored.keys() for node_id, stored in zip(old["ids"], old["metadatas"] or []) if stored}
        for node_id, metadata in zip(chunk.ids, metadatas):
            metadata.update(dict.fromkeys(stale.get(node_id, set()) - metadata.keys()))
        await self._clients.on(ws, "upsert", ids=chunk.ids, embeddings=embeddings, metadatas=metadatas, documents=chunk.contents)

    async def _learn_layouts(self, ws: str) -> None:
        """Read a format-3 workspace's shape layouts (for its records that have no ``%j``)."""
        side = await self._clients.side(ws)
        try:
            found = await self._clients.run(side.get, include=["documents"]) if side is not None else {"ids": []}
        except self._not_found:
            (await self._clients.conn()).sides.pop(ws, None)
            return
        self._layouts.update(read_layouts(found))

    async def _read(self, ws: str, found: dict[str, Any], row: int | None = None, vectors: bool = True) -> list[VectorNode]:
        """The nodes of a get result, or of row ``row`` of a query result (``vectors=False``: vectors may be None)."""
        metadatas = found.get("metadatas")
        metadatas = (metadatas[row] if row is not None else metadatas) or []
        if any(m is None for m in metadatas):
            found, row = await self._without_vanished(ws, found, row, metadatas), None
            metadatas = found.get("metadatas") or []
        if any(m and JSON_KEY not in m and m.get(SHAPE_KEY) is not None and m[SHAPE_KEY] not in self._layouts for m in metadatas):
            await self._learn_layouts(ws)  # a format-3 record: its shape's layout rebuilds it
        nodes = _nodes(ws, found, row, self._layouts)
        return await self._with_vectors(ws, nodes) if vectors else nodes

    async def _without_vanished(self, ws: str, found: dict[str, Any], row: int | None, metadatas: list) -> dict[str, Any]:
        """A result without the hits deleted while Chroma made it, as a get result.

        Chroma (1.5.9, embedded) may return a hit deleted meanwhile with its metadata and
        document None. Each record vecbook writes has metadata, so a hit without is read again:
        kept if it is still there (another tool wrote it so), else dropped.
        """
        columns = {key: found[key][row] if row is not None else found[key] for key in ("ids", "embeddings", "metadatas", "documents") if found.get(key) is not None}
        doubtful = [node_id for node_id, metadata in zip(columns["ids"], metadatas) if metadata is None]
        again = await self._clients.on(ws, "get", ids=doubtful, include=["metadatas", "documents", "embeddings"])
        fresh = {node_id: i for i, node_id in enumerate(again["ids"])}
        keep = []
        for i, (node_id, metadata) in enumerate(zip(columns["ids"], metadatas)):
            if metadata is not None:
                keep.append((columns, i))
            elif node_id in fresh:
                keep.append((again, fresh[node_id]))
        return {key: [source[key][i] for source, i in keep] for key in columns}

    async def _allow_lists(self, ws: str) -> None:
        """Take NO_LISTS out of the collection's metadata before the first list is written.

        The flag only ever goes away, and Chroma's ``modify`` replaces the whole metadata,
        so writers racing to remove it cannot bring it back.
        """
        collection = await self._clients.collection(ws, fresh=True)
        metadata = dict(collection.metadata or {})
        if metadata.pop(NO_LISTS, None) is not None:
            await self._clients.run(collection.modify, metadata=metadata)

    async def _where(self, ws: str, filter: FilterNode | None) -> Any:
        """The ``where`` of a filter (see filters.py); in a collection of an earlier format, whose
        records are indexed in several ways, none: the base class post-filters."""
        if filter is not None and not (await self._layout(ws)).exact_filters:
            return Where(None, False)
        return to_where(filter, lists=await self._may_hold_lists(ws, filter))

    async def _may_hold_lists(self, ws: str, filter: FilterNode | None) -> bool:
        """False if the collection holds no list (numeric ranges are then simpler and exact);
        looked up only for filters where that pays."""
        if not needs_list_check(filter):
            return True
        conn = await self._clients.conn()
        if ws in conn.lists_seen:  # the flag never comes back: no need to look again
            return True
        collection = await self._clients.collection(ws, fresh=True)  # fresh: another store may have written lists
        if (collection.metadata or {}).get(NO_LISTS):
            return False
        conn.lists_seen.add(ws)
        return True

    async def _delete(self, ws: str, ids: list[str]) -> None:
        await self._clients.on(ws, "delete", ids=ids)

    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]:
        step = await self._write_chunk()
        nodes: list[VectorNode] = []
        for start in range(0, len(ids), step):
            found = await self._clients.on(ws, "get", ids=list(dict.fromkeys(ids[start : start + step])), include=(await self._layout(ws)).include)
            nodes.extend(await self._read(ws, found))
        return nodes

    async def _with_vectors(self, ws: str, nodes: list[VectorNode]) -> list[VectorNode]:
        """Fill in vectors a cosine collection lacks a copy of (records written by other tools)."""
        missing = [node.unique_id for node in nodes if node.vector is None]
        if missing:
            found = await self._clients.on(ws, "get", ids=missing, include=["embeddings"])
            vectors = dict(zip(found["ids"], found["embeddings"]))
            for node in nodes:
                if node.vector is None and node.unique_id in vectors:
                    node.vector = np.asarray(vectors[node.unique_id], dtype=np.float32)
        return [node for node in nodes if node.vector is not None]

    async def _count(self, ws: str) -> int:
        return int(await self._clients.on(ws, "count"))

    async def _translate(self, ws: str, filter: FilterNode | None) -> Translation:
        where = await self._where(ws, filter)
        return Translation(where.clause, exact=where.exact)

    async def _search(self, ws: str, queries: np.ndarray, limit: int, native: dict | None) -> list[list[VectorNode]]:
        """Chroma's nearest neighbours. Chroma may return fewer hits than asked although more match (it
        drops hits deleted since its index was last flushed): then ask again for more."""
        await self._check_space(ws)
        results: list[list[VectorNode]] = [[] for _ in range(len(queries))]
        pending, n, total = list(range(len(queries))), limit, None
        more_than: dict[int, bool] = {}  # number of hits -> whether more nodes match
        while pending:
            short = []
            for row, hits in zip(pending, await self._query(ws, queries[pending], n, native)):
                results[row] = hits[:limit]
                if len(hits) < limit:
                    if len(hits) not in more_than:
                        more = await self._clients.on(ws, "get", where=native, limit=len(hits) + 1, include=[])
                        more_than[len(hits)] = len(more["ids"]) > len(hits)
                    if more_than[len(hits)]:
                        short.append(row)
            total = await self._count(ws) if total is None and short else total
            if not short or n >= total:
                return results
            pending, n, more_than = short, min(total, max(4 * n, n + 64)), {}
        return results

    async def _query(self, ws: str, queries: np.ndarray, n: int, where: dict | None) -> list[list[VectorNode]]:
        found = await self._clients.on(ws, "query", query_embeddings=queries, n_results=n, where=where, include=(await self._layout(ws)).include)
        return [await self._read(ws, found, row) for row in range(len(found["ids"]))]

    async def _check_space(self, ws: str) -> None:
        distance = (await self._layout(ws)).distance
        if distance != self.distance:
            raise ValidationError(
                f"workspace {ws!r} was created with distance {distance!r}, which cannot rank for this store's {self.distance!r}; "
                f"open it with distance={distance!r} or copy it into a workspace of this store"
            )

    def _pages(self, ws: str, page_size: int, native: dict | None) -> AsyncIterator[list[VectorNode]]:
        return self._column_pages(ws, page_size, native, COLUMNS)

    async def _column_pages(self, ws: str, page_size: int, native: dict | None, columns: frozenset[str]) -> AsyncIterator[list[VectorNode]]:
        # the metadata always: it holds the user's metadata and the exact vector copies
        wanted = {"metadatas", "documents" if "contents" in columns else "", "embeddings" if "vectors" in columns else ""}
        include = [key for key in (await self._layout(ws)).include if key in wanted]
        offset = 0
        while True:
            found = await self._clients.on(ws, "get", where=native, limit=page_size, offset=offset, include=include)
            nodes = await self._read(ws, found, vectors="vectors" in columns)
            offset += len(found["ids"])
            if nodes:
                yield nodes
            if len(found["ids"]) < page_size:
                return

    async def _close(self) -> None:
        await self._clients.close()


def _dimension_of(collection: Any) -> int | None:
    dimension = collection.get_model().dimension
    if dimension is None:
        dimension = (collection.metadata or {}).get("vecbook:dimensions")
    return int(dimension) if dimension is not None else None


def _nodes(ws: str, found: dict[str, Any], row: int | None, layouts: dict[str, list]) -> list[VectorNode]:
    """Nodes from a get result, or from row ``row`` of a query result (vectors may be None)."""

    def column(key: str) -> Any:
        values = found.get(key)
        return values if values is None or row is None else values[row]

    ids, vectors, metadatas, documents = column("ids"), column("embeddings"), column("metadatas"), column("documents")
    if not ids:
        return []
    metadatas = metadatas if metadatas is not None else [None] * len(ids)
    documents = documents if documents is not None else [None] * len(ids)
    decoded = decode_vectors(metadatas, vectors)
    return [
        trusted_node(node_id, ws, document or "", metadata, vector)
        for node_id, document, metadata, vector in zip(ids, documents, decode_metadatas(metadatas, layouts), decoded)
    ]
