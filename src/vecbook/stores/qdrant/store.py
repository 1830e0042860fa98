"""QdrantVectorStore: workspaces as Qdrant collections, on a server or embedded (local mode).

Where things are: ``qdrant_points`` names collections and points and turns nodes into
points and back; ``qdrant_clients`` holds the clients (one ``AsyncQdrantClient`` per
event loop on a server, one shared sync client per folder in local mode) and maps their
errors; ``qdrant_filters`` translates filters. Local mode never waits on a socket, so
its sync calls run on the caller's thread (``_runs_eagerly``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from ..._aio import to_thread
from ...errors import MissingDependencyError, PartialWriteError, ValidationError, WorkspaceNotFoundError
from ...filters import FilterNode
from ...node import VectorNode
from ..base import BaseVectorStore
from ..engine.batch import NodeBatch
from .points import Search, collection_name, matching, nodes, point_id, points, same, workspace_of
from ..engine.scoring import normalize_distance

try:
    from qdrant_client import AsyncQdrantClient, models

    from .clients import ClosedClient, LocalClient, RemoteClients, never_sent, server_args, translate_error
    from .filters import PRESENT_KEY, index_schemas, plan_filter
except ImportError:  # the constructor raises MissingDependencyError
    models = None

__all__ = ["QdrantVectorStore", "collection_name", "workspace_of", "point_id"]

log = logging.getLogger(__name__)

_MIN_OVERFETCH = 32
_LOCAL_SCROLL = 4096
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
        **kwargs: Any,
    ):
        if models is None:
            raise MissingDependencyError("qdrant-client", "qdrant", feature="QdrantVectorStore")
        super().__init__(embedding_model=embedding_model, batch_size=batch_size, distance=normalize_distance(distance), **kwargs)
        if sum(x is not None for x in (location, path, url, host)) > 1:
            raise ValidationError("give at most one of location, path, url and host")
        if location is not None and location != ":memory:":
            location, url = None, location
        self._indexed: dict[str, set[str]] = {}
        if location is not None or path is not None:
            self._mode = {"location": location} if path is None else {"path": os.fspath(path)}
            self._where = location or os.fspath(path)
            self._client: LocalClient | RemoteClients = LocalClient.open(None if path is None else os.fspath(path))
            self._runs_eagerly = True  # local mode: every wait is a to_thread call, run inline in sync calls
        else:
            self._mode, self._where, args = server_args(host, port, url, api_key, prefer_grpc, grpc_port)
            args.update(timeout=timeout, check_compatibility=False)
            self._client = RemoteClients(lambda: AsyncQdrantClient(**args))  # the key stays in this closure

    def _describe(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._mode.items())

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
        name = collection_name(ws)
        if self._local and name in self._client.info:
            return True
        return await self._call("collection_exists", collection_name=name)

    async def _create(self, ws: str, dimensions: int | None) -> None:
        name = collection_name(ws)
        vectors = models.VectorParams(size=dimensions, distance=_QDRANT_DISTANCE[self.distance]) if dimensions else {}
        try:
            await self._call("create_collection", collection_name=name, vectors_config=vectors)
        except Exception as exc:
            if "already exists" not in str(exc):  # created meanwhile by someone else: fine
                raise
            return
        if not self._local:
            await self._create_indexes(name, {PRESENT_KEY: models.PayloadSchemaType.KEYWORD})

    async def _drop(self, ws: str) -> None:
        name = collection_name(ws)
        self._forget(name)
        await self._call("delete_collection", collection_name=name)

    async def _list(self) -> list[str]:
        response = await self._call("get_collections")
        return [ws for c in response.collections if (ws := workspace_of(c.name)) is not None]

    async def _dimensions(self, ws: str) -> int | None:
        return (await self._info(ws))[0]

    async def _info(self, ws: str) -> tuple[int | None, str | None]:
        """The collection's vector size and distance (cached in local mode, where we hold the lock)."""
        name = collection_name(ws)
        if self._local and name in self._client.info:
            return self._client.info[name]
        vectors = (await self._call("get_collection", ws, collection_name=name)).config.params.vectors
        if vectors and not isinstance(vectors, models.VectorParams):
            raise ValidationError(f"collection {name!r} has named vectors: it was not made by vecbook")
        info = (vectors.size, normalize_distance(vectors.distance)) if vectors else (None, None)
        if self._local:
            self._client.info[name] = info
        return info

    def _forget(self, name: str) -> None:
        self._indexed.pop(name, None)
        if self._local:
            self._client.info.pop(name, None)

    # ---- writes ----------------------------------------------------------------------------

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        dims, distance = await self._info(ws)
        if dims is None:  # created without a size: recreate it, still empty, with one
            await self._drop(ws)
            await self._create(ws, batch.dimensions)
            distance = self.distance
        name = collection_name(ws)
        written: list[str] = []
        for start in range(0, len(batch), self.batch_size):
            chunk = batch.slice(start, start + self.batch_size)
            batch_points = await to_thread(points, chunk, distance) if len(chunk) > 256 else points(chunk, distance)
            try:
                await self._call("upsert", ws, collection_name=name, points=batch_points, wait=True)
            except Exception as exc:
                await self._raise_partial(ws, chunk, written, exc)
            written.extend(chunk.ids)

    async def _raise_partial(self, ws: str, chunk: NodeBatch, written: list[str], exc: Exception) -> None:
        """Re-raise a failed chunk's error, or PartialWriteError naming exactly what was stored."""
        landed, unknown = [], ""
        if not never_sent(exc):
            try:  # a failed request may still have landed, wholly or in part: look
                stored = {n.unique_id: n for n in await self._get(ws, chunk.ids)}
                landed = [i for k, i in enumerate(chunk.ids) if same(stored.get(i), chunk, k)]
            except Exception:
                unknown = f"whether the {len(chunk)} node(s) of the failed request were stored is unknown"
        if not written and not landed:
            if unknown and hasattr(exc, "add_note"):
                exc.add_note(unknown)
            raise exc
        more = f"; {unknown}" if unknown else ""
        raise PartialWriteError(f"writing to Qdrant workspace {ws!r} failed: {exc}{more}", written + landed) from exc

    async def _delete(self, ws: str, ids: list[str]) -> None:
        name = collection_name(ws)
        for start in range(0, len(ids), self.batch_size):
            selector = models.PointIdsList(points=[point_id(i) for i in ids[start : start + self.batch_size]])
            await self._call("delete", ws, collection_name=name, points_selector=selector, wait=True)

    # ---- reads -----------------------------------------------------------------------------

    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]:
        name, with_vectors = collection_name(ws), await self._with_vectors(ws)
        found: list[VectorNode] = []
        for start in range(0, len(ids), self.batch_size):
            chunk = [point_id(i) for i in ids[start : start + self.batch_size]]
            records = await self._call("retrieve", ws, collection_name=name, ids=chunk, with_payload=True, with_vectors=with_vectors)
            found += nodes(records, ws)
        return found

    async def _count(self, ws: str) -> int:
        return (await self._call("count", ws, collection_name=collection_name(ws), exact=True)).count

    async def _search(self, ws: str, queries: np.ndarray, top_k: int, filter: FilterNode | None) -> list[list[VectorNode]]:
        distance = (await self._info(ws))[1]
        if distance != self.distance:
            raise ValidationError(f"workspace {ws!r} was created with distance={distance!r}; open the store with that distance")
        plan = plan_filter(filter)
        if plan.empty:
            return [[] for _ in range(len(queries))]
        await self._ensure_indexes(ws, filter)
        searches = [Search(q) for q in queries]
        pending, limit = searches, top_k if plan.exact else max(2 * top_k, _MIN_OVERFETCH)
        name, with_vector = collection_name(ws), distance != "cosine"
        while pending:  # post-filtered queries over-fetch until top_k match or the hits run out
            if len(pending) == 1:  # one query: query_points takes the array as it is (a batch request copies it)
                s = pending[0]
                options = {"limit": limit, "offset": s.offset or None, "with_payload": True, "with_vectors": with_vector}
                responses = [await self._call("query_points", ws, collection_name=name, query=s.query, query_filter=plan.filter, **options)]
            else:
                requests = [
                    models.QueryRequest(query=s.query.tolist(), filter=plan.filter, limit=limit, offset=s.offset or None, with_payload=True, with_vector=with_vector)
                    for s in pending
                ]
                responses = await self._call("query_batch_points", ws, collection_name=name, requests=requests)
            for search, response in zip(pending, responses):
                search.take(response.points, ws, None if plan.exact else filter, top_k)
            pending = [s for s, r in zip(pending, responses) if len(s.hits) < top_k and len(r.points) == limit]
            limit *= 2
        return [s.hits for s in searches]

    async def _pages(self, ws: str, page_size: int, filter: FilterNode | None) -> AsyncIterator[list[VectorNode]]:
        plan = plan_filter(filter)
        if plan.empty:
            return
        await self._ensure_indexes(ws, filter)
        name, with_vectors = collection_name(ws), await self._with_vectors(ws)
        # A local-mode scroll sorts and filters the whole collection whatever its limit: fetch big pages.
        limit = max(page_size, _LOCAL_SCROLL) if self._local else page_size
        offset = None
        while True:
            records, offset = await self._call(
                "scroll", ws, collection_name=name, scroll_filter=plan.filter, limit=limit, offset=offset, with_payload=True, with_vectors=with_vectors
            )
            page = nodes(records, ws)
            if not plan.exact:
                page = matching(page, filter)
            for start in range(0, len(page), page_size):
                yield page[start : start + page_size]
            if offset is None:
                return

    async def _with_vectors(self, ws: str) -> bool:
        return (await self._info(ws))[1] != "cosine"  # cosine collections keep the originals in the payload

    # ---- payload indexes (server mode) ---------------------------------------------------

    async def _ensure_indexes(self, ws: str, filter: FilterNode | None) -> None:
        if self._local or filter is None:
            return
        name = collection_name(ws)
        if name not in self._indexed:
            schema = (await self._call("get_collection", ws, collection_name=name)).payload_schema or {}
            self._indexed[name] = set(schema)
        await self._create_indexes(name, {k: v for k, v in index_schemas(filter).items() if k not in self._indexed[name]})

    async def _create_indexes(self, name: str, wanted: dict[str, Any]) -> None:
        for key, schema in wanted.items():
            self._indexed.setdefault(name, set()).add(key)  # tried once: a read-only key may refuse
            try:
                await self._call("create_payload_index", collection_name=name, field_name=key, field_schema=schema, wait=False)
            except Exception as exc:
                log.warning("could not create a Qdrant payload index on %s.%s: %s", name, key, exc)

    async def _close(self) -> None:
        client, self._client = self._client, ClosedClient()
        await client.close()
