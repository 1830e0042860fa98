"""QdrantVectorStore: workspaces as Qdrant collections, on a server or embedded (local mode).

Where things are: ``qdrant_points`` names collections and points and turns nodes into
points and back; ``qdrant_clients`` holds the clients (one ``AsyncQdrantClient`` per
event loop on a server, one shared sync client per folder in local mode) and maps their
errors; ``qdrant_filters`` translates filters.

A Qdrant collection needs its vector size when it is made. A workspace created without
dimensions is a marker collection (``pending_name``) until its first insert creates the
real one: creating is atomic (a racing insert finds it made and checks its size), so no
insert ever drops a collection another insert wrote to.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from ..._aio import to_thread
from ...errors import DimensionMismatchError, MissingDependencyError, ValidationError, WorkspaceNotFoundError
from ...filters import FilterNode
from ...node import VectorNode
from ..base import BaseVectorStore
from ..column_reads import COLUMNS
from ..engine.batch import NodeBatch
from ..engine.scoring import normalize_distance
from ..introspection import ValueCount
from ..matching import Translation
from .points import DEFAULT_PREFIX, FORMAT, FORMAT_KEY, READ_PAYLOAD, VECTOR_KEY, check_prefix, collection_name, nodes, pending_name, point_id, points, workspace_of

try:
    from qdrant_client import AsyncQdrantClient, models

    from .clients import LocalClient, RemoteClients, server_args, translate_error
    from .facets import distinct_values as facet_values
    from .filters import index_schemas, plan_filter
    from .requests import point_batches, query_spans
except ImportError:  # the constructor raises MissingDependencyError
    models = None

__all__ = ["QdrantVectorStore", "collection_name", "workspace_of", "point_id"]

log = logging.getLogger(__name__)

_LOCAL_SCROLL = 4096
_PAYLOAD_OF = (("unique_id", None), ("content", "contents"), ("metadata", "metadatas"), (VECTOR_KEY, "vectors"))  # None: always read
_QDRANT_DISTANCE = {"cosine": "Cosine", "dot": "Dot", "euclidean": "Euclid"}


class QdrantVectorStore(BaseVectorStore):
    """Workspaces in Qdrant: a server (``url=`` or ``host=``/``port=``) or local mode.

    Args:
        location: ``":memory:"`` for an in-process store (or a server URL).
        path: a folder for local mode, persisted on disk.
        url, host, port, api_key: the server; ``host``, ``port`` and ``api_key`` default
            to ``FLOW_QDRANT_HOST`` (``localhost``), ``FLOW_QDRANT_PORT`` (6333) and
            ``FLOW_QDRANT_API_KEY``.
        distance: ``"cosine"``, ``"dot"``, ``"euclidean"`` or a ``qdrant_client`` ``Distance``.
        timeout: seconds per server request, connecting included.
        prefer_grpc, grpc_port: talk to the server over gRPC, on that port.
        collection_prefix: starts the name of every collection vecbook makes (it must end
            with ``_``); others are ignored. Stores with different prefixes share a server
            without seeing each other's workspaces (vecbook also names collections
            ``<prefix without its _>x_...`` and ``...p_...``: choose prefixes that do not
            start one another).
    """

    backend = "qdrant"

    def __init__(
        self,
        embedding_model=None,
        host: str | None = None,
        port: int | None = None,
        url: str | None = None,
        api_key: str | None = None,
        distance: Any = "cosine",
        batch_size: int = 1024,
        location: str | None = None,
        path: str | os.PathLike | None = None,
        timeout: int = 5,
        prefer_grpc: bool = False,
        grpc_port: int = 6334,
        collection_prefix: str = DEFAULT_PREFIX,
        **kwargs: Any,
    ):
        if models is None:
            raise MissingDependencyError("qdrant-client", "qdrant", feature="QdrantVectorStore")
        super().__init__(embedding_model=embedding_model, batch_size=batch_size, distance=normalize_distance(distance), **kwargs)
        self.collection_prefix = check_prefix(collection_prefix)
        if sum(x is not None for x in (location, path, url, host)) > 1:
            raise ValidationError("give at most one of location, path, url and host")
        if location is not None and location != ":memory:":
            location, url = None, location
        self._indexed: dict[str, set[str]] = {}
        self._strict: dict[str, bool] = {}  # collection -> whether the server refuses filters on unindexed keys
        self._current: set[str] = set()  # collections known to hold no point of an older format
        if location is not None or path is not None:
            self._mode = {"location": location} if path is None else {"path": os.fspath(path)}
            self._where = location or os.fspath(path)
            self._client: LocalClient | RemoteClients = LocalClient.open(None if path is None else os.fspath(path))
        else:
            self._mode, self._where, args = server_args(host, port, url, api_key, prefer_grpc, grpc_port)
            args.update(timeout=timeout, check_compatibility=False)
            self._client = RemoteClients(lambda: AsyncQdrantClient(**args))  # the key stays in this closure

    def _after_fork(self) -> None:
        if self._local:
            self._refuse_in_child()

    def _describe(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in [*self._mode.items(), ("collection_prefix", self.collection_prefix)])

    def _name(self, ws: str) -> str:
        return collection_name(self.collection_prefix, ws)

    def _pending(self, ws: str) -> str:
        return pending_name(self.collection_prefix, ws)

    @property
    def _local(self) -> bool:
        return isinstance(self._client, LocalClient)

    async def _call(self, method: str, ws: str | None = None, /, **kwargs: Any) -> Any:
        """Call the client; a missing collection or an unreachable server raises our error."""
        try:
            return await self._client.call(method, **kwargs)
        except Exception as exc:
            mapped = translate_error(exc, ws, self._where)
            if mapped is exc:
                raise
            if isinstance(mapped, WorkspaceNotFoundError):
                raise mapped from None
            raise mapped from exc

    # ---- workspaces ------------------------------------------------------------------------

    async def _exists(self, ws: str) -> bool:
        name = self._name(ws)
        if self._local and name in self._client.info:
            return True
        # A first insert creates the real collection, then drops the marker: asked in this
        # order, a workspace being sized is never missed (the real one is asked again).
        for asked in (name, self._pending(ws), name):
            if await self._call("collection_exists", collection_name=asked):
                return True
        return False

    async def _create(self, ws: str, dimensions: int | None) -> None:
        if dimensions is None:  # a marker until the first insert knows the size
            await self._create_collection(self._pending(ws), {})
            return
        name = self._name(ws)
        vectors = models.VectorParams(size=dimensions, distance=_QDRANT_DISTANCE[self.distance])
        await self._create_collection(name, vectors)

    async def _create_collection(self, name: str, vectors: Any) -> None:
        """Create a collection, unless it exists already (made meanwhile by someone else)."""
        try:
            await self._call("create_collection", collection_name=name, vectors_config=vectors)
        except Exception as exc:
            if "already exists" not in str(exc):
                raise

    async def _drop(self, ws: str) -> None:
        for name in (self._name(ws), self._pending(ws)):
            self._forget(name)
            if await self._call("collection_exists", collection_name=name):
                await self._call("delete_collection", collection_name=name)

    async def _list(self) -> list[str]:
        response = await self._call("get_collections")
        found = (workspace_of(self.collection_prefix, c.name) for c in response.collections)
        return list(dict.fromkeys(ws for ws in found if ws is not None))

    async def _dimensions(self, ws: str) -> int | None:
        return (await self._info(ws))[0]

    async def _info(self, ws: str) -> tuple[int | None, str | None]:
        """The collection's vector size and distance ((None, None) for a marker; cached in local mode,
        where we hold the lock)."""
        name = self._name(ws)
        if self._local and name in self._client.info:
            return self._client.info[name]
        try:
            vectors = (await self._call("get_collection", ws, collection_name=name)).config.params.vectors
        except WorkspaceNotFoundError:
            if await self._call("collection_exists", collection_name=self._pending(ws)):
                return None, None
            if await self._call("collection_exists", collection_name=name):
                return await self._info(ws)  # sized meanwhile by a first insert, which then dropped the marker
            raise
        if vectors and not isinstance(vectors, models.VectorParams):
            raise ValidationError(f"collection {name!r} has named vectors: it was not made by vecbook")
        info = (vectors.size, normalize_distance(vectors.distance)) if vectors else (None, None)
        if self._local and info[0] is not None:
            self._client.info[name] = info
        return info

    async def _sized(self, ws: str, dimensions: int) -> str:
        """Make sure the workspace's real collection exists with ``dimensions``; return its distance."""
        dims, distance = await self._info(ws)
        if dims is None:
            await self._create(ws, dimensions)  # atomic: if a racing insert made it first, this is a no-op
            dims, distance = await self._info(ws)
            name = self._name(ws)
            if dims is None and (await self._call("count", ws, collection_name=name, exact=True)).count == 0:
                await self._call("delete_collection", collection_name=name)  # made without a size by vecbook < 0.2
                await self._create(ws, dimensions)
                dims, distance = await self._info(ws)
            if await self._call("collection_exists", collection_name=self._pending(ws)):
                await self._call("delete_collection", collection_name=self._pending(ws))
        if dims != dimensions:
            raise DimensionMismatchError(dims or 0, dimensions, f"workspace {ws!r}")
        return distance

    def _forget(self, name: str) -> None:
        self._indexed.pop(name, None)
        self._strict.pop(name, None)
        self._current.discard(name)
        if self._local:
            self._client.info.pop(name, None)

    # ---- writes ----------------------------------------------------------------------------

    async def _write_chunk(self) -> int:
        return self.batch_size

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        distance = await self._sized(ws, batch.dimensions)
        batches = await to_thread(_requests, batch, distance) if len(batch) > 256 else _requests(batch, distance)
        for batch_points in batches:  # all_or_nothing undoes the whole chunk if a later request fails
            await self._call("upsert", ws, collection_name=self._name(ws), points=batch_points, wait=True)

    async def _delete(self, ws: str, ids: list[str]) -> None:
        if (await self._info(ws))[0] is None:
            return  # a marker holds no points
        selector = models.PointIdsList(points=[point_id(i) for i in ids])
        await self._call("delete", ws, collection_name=self._name(ws), points_selector=selector, wait=True)

    # ---- reads -----------------------------------------------------------------------------

    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]:
        if (await self._info(ws))[0] is None:
            return []
        name, with_vectors = self._name(ws), await self._with_vectors(ws)
        found: list[VectorNode] = []
        for start in range(0, len(ids), self.batch_size):
            chunk = [point_id(i) for i in ids[start : start + self.batch_size]]
            records = await self._call("retrieve", ws, collection_name=name, ids=chunk, with_payload=READ_PAYLOAD, with_vectors=with_vectors)
            found += nodes(records, ws)
        return found

    async def _count(self, ws: str) -> int:
        if (await self._info(ws))[0] is None:
            return 0
        return (await self._call("count", ws, collection_name=self._name(ws), exact=True)).count

    async def _count_where(self, ws: str, native: Any) -> int:
        if (await self._info(ws))[0] is None:
            return 0
        return (await self._call("count", ws, collection_name=self._name(ws), count_filter=native, exact=True)).count

    async def _distinct_values(self, ws: str, filter: FilterNode | None, path: tuple, limit: int | None, offset: int) -> list[ValueCount]:
        """Facet counts (``facets.py``) for fields of strings and booleans; the base class's scan otherwise."""
        translation = await self._translate(ws, filter)
        if translation.empty or (await self._info(ws))[0] is None:
            return []
        if translation.exact and limit is not None:
            found = await facet_values(self, ws, translation.native, path, limit, offset)
            if found is not None:
                return found
        return await super()._distinct_values(ws, filter, path, limit, offset)

    async def _translate(self, ws: str, filter: FilterNode | None) -> Translation:
        if filter is not None and await self._holds_old_points(ws):
            return Translation(None, exact=False)  # no filter copies to filter on: every node is a candidate
        plan = plan_filter(filter)
        if not plan.empty:
            await self._ensure_indexes(ws, plan.filter)
        return Translation(plan.filter, exact=plan.exact, empty=plan.empty)

    async def _holds_old_points(self, ws: str) -> bool:
        """Whether some point was written before filters read ``_f`` (vecbook < 0.2): filters on it are
        then answered by post-filtering (``copy_workspace`` rewrites them). Once none is found, never again."""
        name = self._name(ws)
        if name in self._current or (await self._info(ws))[0] is None:
            return False
        old = models.Filter(must_not=[models.FieldCondition(key=FORMAT_KEY, match=models.MatchValue(value=FORMAT))])
        await self._ensure_indexes(ws, old)
        if (await self._call("count", ws, collection_name=name, count_filter=old, exact=True)).count:
            return True
        self._current.add(name)
        return False

    async def _search(self, ws: str, queries: np.ndarray, limit: int, native: Any) -> list[list[VectorNode]]:
        distance = (await self._info(ws))[1]
        if distance != self.distance:
            raise ValidationError(f"workspace {ws!r} was created with distance={distance!r}; open the store with that distance")
        name, with_vector = self._name(ws), distance != "cosine"
        if len(queries) == 1:  # one query: query_points takes the array as it is (a batch request copies it)
            options = {"limit": limit, "with_payload": READ_PAYLOAD, "with_vectors": with_vector}
            responses = [await self._call("query_points", ws, collection_name=name, query=queries[0], query_filter=native, **options)]
        else:
            responses = []
            for start, stop in query_spans(len(queries), queries.shape[1], native):  # each request under the server's limit
                requests = [
                    models.QueryRequest(query=q.tolist(), filter=native, limit=limit, with_payload=READ_PAYLOAD, with_vector=with_vector)
                    for q in queries[start:stop]
                ]
                responses += await self._call("query_batch_points", ws, collection_name=name, requests=requests)
        return [_unique(nodes(response.points, ws)) for response in responses]

    def _pages(self, ws: str, page_size: int, native: Any) -> AsyncIterator[list[VectorNode]]:
        return self._column_pages(ws, page_size, native, COLUMNS)

    async def _column_pages(self, ws: str, page_size: int, native: Any, columns: frozenset[str]) -> AsyncIterator[list[VectorNode]]:
        if (await self._info(ws))[0] is None:
            return
        name, with_vectors = self._name(ws), "vectors" in columns and await self._with_vectors(ws)
        payload = [key for key, column in _PAYLOAD_OF if column is None or column in columns]
        # A local-mode scroll sorts and filters the whole collection whatever its limit: fetch big pages.
        limit = max(page_size, _LOCAL_SCROLL) if self._local else page_size
        offset = None
        while True:
            records, offset = await self._call(
                "scroll", ws, collection_name=name, scroll_filter=native, limit=limit, offset=offset, with_payload=payload, with_vectors=with_vectors
            )
            page = nodes(records, ws)
            for start in range(0, len(page), page_size):
                yield page[start : start + page_size]
            if offset is None:
                return

    async def _with_vectors(self, ws: str) -> bool:
        return (await self._info(ws))[1] != "cosine"  # cosine collections keep the originals in the payload

    # ---- payload indexes (server mode) ---------------------------------------------------

    async def _ensure_indexes(self, ws: str, native: Any) -> None:
        """Index each key the native filter ``native`` reads (``index_schemas``) before it is sent: it runs
        faster, and a server in strict mode (as on Qdrant Cloud) refuses filters on unindexed keys, so
        there the indexes are waited for."""
        if self._local or native is None:
            return
        name = self._name(ws)
        if name not in self._strict:
            info = await self._call("get_collection", ws, collection_name=name)
            self._indexed.setdefault(name, set()).update(info.payload_schema or {})
            self._strict[name] = _refuses_unindexed(info)
        wanted = {k: v for k, v in index_schemas(native).items() if k not in self._indexed[name]}
        await self._create_indexes(name, wanted, wait=self._strict[name])

    async def _create_indexes(self, name: str, wanted: dict[str, Any], wait: bool = False) -> None:
        """Create payload indexes; ``wait`` for them when the next request needs them (a facet does, a filter
        only runs faster: a server applies an unawaited index later)."""
        # A key is tried once (a read-only key may refuse). Where the next request needs its index, the key
        # counts as indexed only once the index exists: a concurrent call meanwhile creates it too (creating
        # an index is idempotent) and waits, instead of sending a filter the server refuses.
        indexed = self._indexed.setdefault(name, set())
        for key, schema in wanted.items():
            if not wait:
                indexed.add(key)
            try:
                await self._call("create_payload_index", collection_name=name, field_name=key, field_schema=schema, wait=wait)
            except Exception as exc:
                log.warning("could not create a Qdrant payload index on %s.%s: %s", name, key, exc)
            indexed.add(key)

    async def _close(self) -> None:
        await self._client.close()


def _refuses_unindexed(info: Any) -> bool:
    """Whether a collection's strict mode refuses filters on keys without a payload index."""
    strict = info.config.strict_mode_config
    return bool(strict and strict.enabled and (strict.unindexed_filtering_retrieve is False or strict.unindexed_filtering_update is False))


def _requests(batch: NodeBatch, distance: str | None) -> list[Any]:
    """The points of ``batch``, in batches that each fit one request."""
    return point_batches(points(batch, distance))


def _unique(hits: list[VectorNode]) -> list[VectorNode]:
    """Hits without repeats (an approximate index may return a point twice)."""
    seen: set[str] = set()
    return [hit for hit in hits if not (hit.unique_id in seen or seen.add(hit.unique_id))]
