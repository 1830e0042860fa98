"""EsVectorStore: one Elasticsearch index per workspace, approximate kNN search.

Where things are: ``documents`` names indices and holds the mapping, the documents
written, the nodes read back and the kNN bodies (the layout is described there);
``client`` holds the clients (one ``AsyncElasticsearch`` per event loop) and maps
their errors; ``filters`` translates filters. The base class recomputes every
score from the exact vector each document keeps.

Writes are bulk requests of ``batch_size`` documents; Elasticsearch is not
transactional, so the base class puts back what a failed or cancelled call wrote.
A search returns at most 10,000 nodes (ES's cap on ``k``); iteration has no cap
(a point in time and ``search_after``).
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import numpy as np

try:
    import elastic_transport
    import elasticsearch  # noqa: F401  (imported here so a missing client fails at import)
    from elasticsearch import NotFoundError, helpers
except ImportError as exc:  # pragma: no cover - depends on the environment
    from ...errors import MissingDependencyError

    raise MissingDependencyError("elasticsearch", "elasticsearch", feature="EsVectorStore") from exc

from ..._aio import sync_twin
from ...errors import ValidationError, VecbookError, WorkspaceNotFoundError
from ...filters import FilterNode
from ...node import VectorNode
from ..arguments import public
from ..base import BaseVectorStore
from ..column_reads import COLUMNS
from ..introspection import ValueCount
from ..matching import Translation
from ..engine.batch import NodeBatch
from .client import UNREACHABLE, EsClients, check_refresh, default_hosts, describe_failure, index_missing, scrub
from .documents import (
    FORMAT,
    MAX_WINDOW,
    SOURCE,
    IndexInfo,
    check_prefix,
    index_info,
    index_name,
    knn_bodies,
    mappings,
    nodes,
    search_kwargs,
    upsert_actions,
    workspace_of,
)
from .aggregations import MAX_AGG_VALUES, distinct_values
from .filters import to_query
from .keyword import cut_ties, keyword_error, match_bodies

__all__ = ["EsVectorStore", "index_name", "workspace_of"]

PIT_KEEP_ALIVE = "5m"  # how long iteration may pause between two pages
_REFRESH: contextvars.ContextVar[Any] = contextvars.ContextVar("vecbook_es_refresh", default=None)
_SOURCE_OF = (("content", "contents"), ("metadata", "metadatas"), ("vector", "vectors"))  # _source field, column
_BULK_REFRESH = {True: {"refresh": "true"}, "wait_for": {"refresh": "wait_for"}, False: {}}  # per bulk request


class EsVectorStore(BaseVectorStore):
    """Workspaces as Elasticsearch indices (ES 8.11+ / 9.x, official client, async).

    Args:
        hosts: URL(s) of the cluster; default ``$FLOW_ES_HOSTS`` (comma-separated) or
            ``http://localhost:9200``.
        basic_auth: ``(user, password)``; api_key: an API key. Never shown in repr or errors.
        index_prefix: every index vecbook creates starts with it; other indices are ignored.
        refresh: default for writes: ``True`` (visible to the next search), ``"wait_for"``
            or ``False`` (call :meth:`refresh` yourself); ``insert``/``delete`` take ``refresh=``.
        num_candidates: HNSW candidates per shard and query (at least ``top_k``, at most 10,000).
        index_options: ``dense_vector`` index options; the default ``{"type": "hnsw"}`` keeps
            float32 precision so ranking matches the exact backends (quantised types save memory).
        request_timeout / connect_timeout: seconds; a server that does not accept a connection
            within ``connect_timeout`` raises BackendUnavailableError.
        client_options: more keyword arguments for ``AsyncElasticsearch`` (``ca_certs``, ...).
    """

    backend = "elasticsearch"

    def __init__(
        self,
        embedding_model=None,
        hosts: Any = None,
        basic_auth: Any = None,
        batch_size: int = 1024,
        api_key: Any = None,
        index_prefix: str = "vecbook-",
        refresh: bool | str = True,
        num_candidates: int = 100,
        index_options: dict | None = None,
        request_timeout: float = 30.0,
        connect_timeout: float = 3.0,
        client_options: dict | None = None,
        **kwargs: Any,
    ):
        super().__init__(embedding_model=embedding_model, batch_size=batch_size, **kwargs)
        self.index_prefix = check_prefix(index_prefix)
        self.default_refresh = check_refresh(refresh)
        self.num_candidates = int(num_candidates)
        self.index_options = dict(index_options) if index_options is not None else {"type": "hnsw"}
        self.connect_timeout = float(connect_timeout)
        options = {"request_timeout": request_timeout, "max_retries": 1, "retry_on_timeout": False, **(client_options or {})}
        hosts = default_hosts() if hosts is None else hosts
        self._clients = EsClients({"hosts": hosts, "basic_auth": basic_auth, "api_key": api_key, **options}, connect_timeout)
        self.hosts = self._clients.hosts
        self._info: dict[str, IndexInfo] = {}

    def _describe(self) -> str:
        return f"hosts={self.hosts!r}, index_prefix={self.index_prefix!r}"

    def _index(self, ws: str) -> str:
        return index_name(self.index_prefix, ws)

    def _forget(self, ws: str) -> None:
        self._info.pop(ws, None)

    def _calling(self, ws: str | None = None):
        """Translate the client's errors (an index found missing is forgotten)."""
        return self._clients.calling(ws, self._forget)

    # ---- workspaces --------------------------------------------------------------------------

    async def _exists(self, ws: str) -> bool:
        es = await self._clients.get()
        with self._calling():
            return bool(await es.indices.exists(index=self._index(ws)))

    async def _known(self, ws: str) -> bool:
        # An index whose mapping we hold needs no HEAD request before each operation: if it vanished,
        # the operation fails with index_not_found, which _calling turns into WorkspaceNotFoundError.
        return ws in self._info or await self._exists(ws)

    async def _create(self, ws: str, dimensions: int | None) -> None:
        es = await self._clients.get()
        self._forget(ws)
        with self._calling():
            try:
                await es.indices.create(index=self._index(ws), mappings=mappings(ws, dimensions, self.distance, self.index_options))
            except Exception as exc:  # created meanwhile by someone else: fine
                if getattr(exc, "error", None) != "resource_already_exists_exception":
                    raise

    async def _drop(self, ws: str) -> None:
        es = await self._clients.get()
        self._forget(ws)
        with self._calling():
            await es.options(ignore_status=404).indices.delete(index=self._index(ws))

    async def _list(self) -> list[str]:
        es = await self._clients.get()
        with self._calling():
            resp = await es.indices.resolve_index(name=f"{self.index_prefix}*", expand_wildcards="open")
        names = (workspace_of(self.index_prefix, entry["name"]) for entry in resp.get("indices", []))
        return [ws for ws in names if ws is not None]

    async def _index_info(self, ws: str) -> IndexInfo:
        info = self._info.get(ws)
        if info is not None:
            return info
        es = await self._clients.get()
        with self._calling(ws):
            resp = await es.indices.get_mapping(index=self._index(ws))
        info = index_info(resp.body)
        if info.dimensions is not None:  # an index's dims never change: keep it
            self._info[ws] = info
        return info

    async def _dimensions(self, ws: str) -> int | None:
        return (await self._index_info(ws)).dimensions

    async def _check_distance(self, ws: str) -> None:
        created = (await self._index_info(ws)).distance
        if created is not None and created != self.distance:
            raise ValidationError(
                f"workspace {ws!r} was created with distance={created!r}; open it with the same distance "
                f"(this store uses {self.distance!r})"
            )

    # ---- writes ------------------------------------------------------------------------------

    async def _write_chunk(self) -> int:
        return self.batch_size

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        await self._check_distance(ws)
        actions = upsert_actions(self._index(ws), batch, self.distance)  # may raise: before anything is written
        await self._bulk(ws, actions(0, len(batch)), "insert")

    async def _delete(self, ws: str, ids: list[str]) -> None:
        index = self._index(ws)
        await self._bulk(ws, ({"_op_type": "delete", "_index": index, "_id": i} for i in ids), "delete")

    async def _bulk(self, ws: str, actions: Iterator[dict], what: str) -> None:
        """One chunk of actions in bulk requests; any failure raises (the base class undoes the call)."""
        es = await self._clients.get()
        failures = []
        stream = helpers.async_streaming_bulk(
            es,
            actions,
            chunk_size=self.batch_size,
            raise_on_error=False,
            raise_on_exception=False,
            max_retries=2,
            initial_backoff=0.5,
            max_backoff=4,
            **_BULK_REFRESH[self._refresh_mode()],
        )
        try:
            async with aclosing(stream):
                async for ok, item in stream:
                    op, info = next(iter(item.items()))
                    if not (ok or (op == "delete" and info.get("status") == 404 and "error" not in info)):
                        failures.append(info)
        except elastic_transport.TransportError as exc:
            if isinstance(exc, UNREACHABLE):
                raise self._clients.unreachable(exc) from None
            raise VecbookError(f"{what} into workspace {ws!r} was interrupted: {scrub(exc)}") from None
        if failures:
            if all(index_missing(describe_failure(f)) for f in failures):
                self._forget(ws)
                raise WorkspaceNotFoundError(ws)
            raise VecbookError(f"Elasticsearch refused to {what} {len(failures)} node(s) in workspace {ws!r}: {describe_failure(failures[0])}")

    def _refresh_mode(self) -> Any:
        refresh = _REFRESH.get()
        return self.default_refresh if refresh is None else refresh

    @public
    async def async_insert(self, nodes: Any, workspace_id: str, refresh: bool | str | None = None) -> None:
        """Insert or replace nodes (see BaseVectorStore); ``refresh`` overrides the store's default."""
        token = _REFRESH.set(None if refresh is None else check_refresh(refresh))
        try:
            await super().async_insert(nodes, workspace_id)
        finally:
            _REFRESH.reset(token)

    @public
    async def async_delete(
        self, node_ids: Any = None, workspace_id: str | None = None, filter_dict: dict | None = None, refresh: bool | str | None = None
    ) -> int | None:
        """Delete nodes by id or by filter (see BaseVectorStore); ``refresh`` overrides the store's default."""
        token = _REFRESH.set(None if refresh is None else check_refresh(refresh))
        try:
            return await super().async_delete(node_ids, workspace_id, filter_dict)
        finally:
            _REFRESH.reset(token)

    @public
    async def async_refresh(self, workspace_id: str) -> None:
        """Make every write so far visible to searches, counts and iteration."""
        ws = await self._require(workspace_id)
        es = await self._clients.get()
        with self._calling(ws):
            await es.indices.refresh(index=self._index(ws))

    insert = sync_twin(async_insert)
    delete = sync_twin(async_delete)
    refresh = sync_twin(async_refresh)

    # ---- reads -------------------------------------------------------------------------------

    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]:
        es = await self._clients.get()
        found = []
        for start in range(0, len(ids), self.batch_size):
            with self._calling(ws):
                resp = await es.mget(index=self._index(ws), ids=ids[start : start + self.batch_size], source=SOURCE["includes"])
            docs = resp["docs"]
            for doc in docs:
                if "error" in doc:  # mget reports a missing index per document
                    raise self._doc_error(ws, doc["error"])
            found += nodes(ws, [doc for doc in docs if doc.get("found")])
        return found

    async def _count(self, ws: str) -> int:
        es = await self._clients.get()
        with self._calling(ws):
            return int((await es.count(index=self._index(ws)))["count"])

    async def _count_where(self, ws: str, native: FilterNode | None) -> int:
        es = await self._clients.get()
        query = {"bool": {"filter": [to_query(native)]}} if native is not None else {"match_all": {}}
        with self._calling(ws):
            return int((await es.count(index=self._index(ws), query=query))["count"])

    async def _distinct_values(self, ws: str, filter: FilterNode | None, path: tuple, limit: int | None, offset: int) -> list[ValueCount]:
        """A terms aggregation (``aggregations.py``) for the first 10,000 values; pages beyond, and
        indices of an older layout, scan the matching nodes."""
        translation = await self._translate(ws, filter)
        if translation.empty:
            return []
        if not translation.exact or limit is None or offset + limit > MAX_AGG_VALUES:
            return await super()._distinct_values(ws, filter, path, limit, offset)
        es = await self._clients.get()
        with self._calling(ws):
            return await distinct_values(es, self._index(ws), translation.native, path, limit, offset)

    async def _translate(self, ws: str, filter: FilterNode | None) -> Translation:
        if filter is not None and (await self._index_info(ws)).format < FORMAT:
            return Translation(None, exact=False)  # terms of an older layout (vecbook < 0.2): post-filter
        return Translation(filter)

    async def _search(self, ws: str, queries: np.ndarray, limit: int, native: FilterNode | None) -> list[list[VectorNode]]:
        await self._check_distance(ws)
        bodies = knn_bodies(queries, limit, self.distance, self.num_candidates, native)
        es = await self._clients.get()
        index = self._index(ws)
        with self._calling(ws):
            if len(bodies) == 1:
                responses = [(await es.search(index=index, **search_kwargs(bodies[0]))).body]
            else:
                searches = [part for body in bodies for part in ({"index": index}, body)]
                responses = (await es.msearch(searches=searches))["responses"]
        return [self._hits(ws, resp) for resp in responses]

    async def _keyword_translate(self, ws: str, filter: FilterNode | None) -> Translation:
        return await self._translate(ws, filter)

    async def _keyword(self, ws: str, texts: list[str], limit: int, native: FilterNode | None) -> list[list[tuple[VectorNode, float]]]:
        """ES's own BM25: a ``match`` query on ``content`` (see keyword.py); ties at the cut ordered by id."""
        found: list[list[dict] | None] = [None] * len(texts)
        pending, size = list(range(len(texts))), limit + 1
        es = await self._clients.get()
        while pending:
            bodies = match_bodies([texts[i] for i in pending], size, native)
            with self._calling(ws):
                searches = [part for body in bodies for part in ({"index": self._index(ws)}, body)]
                responses = (await es.msearch(searches=searches))["responses"]
            for i, resp in zip(pending, responses):
                if "error" in resp:
                    raise keyword_error(ws, resp["error"]) or self._doc_error(ws, resp["error"])
                found[i] = cut_ties(resp["hits"]["hits"], limit, size)
            pending, size = [i for i in pending if found[i] is None], size * 4
        return [list(zip(nodes(ws, hits), [float(h["_score"]) for h in hits])) for hits in found]

    def _doc_error(self, ws: str, error: Any) -> Exception:
        """The exception for an error reported inside a 200 response (mget, msearch)."""
        if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
            self._forget(ws)
            return WorkspaceNotFoundError(ws)
        if isinstance(error, dict):
            return VecbookError(f"Elasticsearch failed: {error.get('type')}: {error.get('reason')}")
        return VecbookError(f"Elasticsearch failed: {error}")

    def _hits(self, ws: str, resp: dict) -> list[VectorNode]:
        if "error" in resp:
            raise self._doc_error(ws, resp["error"])
        return nodes(ws, resp["hits"]["hits"])

    def _pages(self, ws: str, page_size: int, native: FilterNode | None) -> AsyncIterator[list[VectorNode]]:
        return self._column_pages(ws, page_size, native, COLUMNS)

    async def _column_pages(self, ws: str, page_size: int, native: FilterNode | None, columns: frozenset[str]) -> AsyncIterator[list[VectorNode]]:
        """Every matching node once, from a point in time of the index, with search_after; ``_source``
        holds only the fields of ``columns`` (the id is the document's)."""
        source = {"includes": [field for field, column in _SOURCE_OF if column in columns] or ["_none_"]}
        es = await self._clients.get()
        size = max(1, min(page_size, MAX_WINDOW))
        query = {"bool": {"filter": [to_query(native)]}} if native is not None else {"match_all": {}}
        with self._calling(ws):
            pit = (await es.open_point_in_time(index=self._index(ws), keep_alive=PIT_KEEP_ALIVE))["id"]
        try:
            after = None
            while True:
                resp = await self._page(es, ws, pit, query, size, after, source)
                pit = resp.get("pit_id", pit)
                hits = resp["hits"]["hits"]
                if hits:
                    yield nodes(ws, hits)
                if len(hits) < size:
                    return
                after = hits[-1]["sort"]
        finally:
            try:
                await es.close_point_in_time(id=pit)
            except Exception:  # it expires by itself
                pass

    async def _page(self, es: Any, ws: str, pit: str, query: dict, size: int, after: list | None, source: dict) -> Any:
        try:
            with self._calling(ws):
                return await es.search(
                    pit={"id": pit, "keep_alive": PIT_KEEP_ALIVE},
                    query=query,
                    sort=["_shard_doc"],
                    size=size,
                    source=source,
                    track_total_hits=False,
                    **({"search_after": after} if after is not None else {}),
                )
        except NotFoundError as exc:
            if exc.error != "search_context_missing_exception":
                raise
            if not await self._exists(ws):
                raise WorkspaceNotFoundError(ws) from None
            raise VecbookError(
                f"iterating workspace {ws!r} failed: its point in time expired (more than {PIT_KEEP_ALIVE} between two pages)"
            ) from None

    # ---- closing -----------------------------------------------------------------------------

    async def _close(self) -> None:
        await self._clients.close()
