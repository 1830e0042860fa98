"""QdrantVectorStore: workspaces as Qdrant collections, on a server or embedded (local mode).

Layout. A workspace is the collection ``vecbook_<id>`` (``vecbookx_<hex>_<id in lower
case>`` when the id has capitals, so ids differing only in case never share a directory
on a case-insensitive disk). A node is a point whose id is a UUID5 of its ``unique_id``,
with the payload ``{"unique_id", "content", "metadata", "_present"}`` (``_present``
serves ``exists`` filters, see ``qdrant_filters``). Qdrant normalises vectors of cosine
collections, so there the original float32 vector is also kept, base64, in ``_vector``.

Clients. On a server, one ``AsyncQdrantClient`` per running event loop. Local mode is
pure Python and holds a file lock on its folder, so one sync client per folder (or per
``:memory:`` store) is shared by every loop and store of the process, called one
request at a time in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .._aio import PerLoop, to_thread
from ..errors import BackendUnavailableError, MissingDependencyError, PartialWriteError, ValidationError, WorkspaceNotFoundError
from ..filters import FilterNode, filter_mask
from ..node import VectorNode
from .base import BaseVectorStore
from .batch import NodeBatch, validate_workspace_id
from .scoring import normalize_distance

try:
    import grpc
    import httpx
    from qdrant_client import AsyncQdrantClient, QdrantClient, models
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    from .qdrant_filters import PRESENT_KEY, index_schemas, plan_filter, present_tokens
except ImportError:  # the constructor raises MissingDependencyError
    models = None

__all__ = ["QdrantVectorStore", "collection_name", "workspace_of", "point_id"]

log = logging.getLogger(__name__)

_PREFIX, _CASED_PREFIX = "vecbook_", "vecbookx_"
_ID_NAMESPACE = uuid.UUID("5b0c1f5e-0f4e-5c3a-9d1e-7a1c6b2e4f10")
_MIN_OVERFETCH = 32
_LOCAL_SCROLL = 4096


def collection_name(ws: str) -> str:
    """The collection that holds workspace ``ws`` (reversible, see :func:`workspace_of`)."""
    if ws == ws.lower():
        return _PREFIX + ws
    mask = sum(1 << i for i, c in enumerate(ws) if c.isupper())
    return f"{_CASED_PREFIX}{mask:x}_{ws.lower()}"


def workspace_of(name: str) -> str | None:
    """The workspace id a collection name encodes, or ``None`` if vecbook did not make it."""
    if name.startswith(_CASED_PREFIX):
        mask_hex, _, lower = name[len(_CASED_PREFIX) :].partition("_")
        try:
            mask = int(mask_hex, 16)
        except ValueError:
            return None
        ws = "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(lower))
    elif name.startswith(_PREFIX):
        ws = name[len(_PREFIX) :]
    else:
        return None
    try:
        validate_workspace_id(ws)
    except ValueError:
        return None
    return ws if collection_name(ws) == name else None


def point_id(unique_id: str) -> str:
    """The UUID5 point id of a node id (any string, even one with lone surrogates)."""
    digest = hashlib.sha1(_ID_NAMESPACE.bytes + unique_id.encode("utf-8", "surrogatepass")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


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
            self._client: _LocalClient | _RemoteClients = _LocalClient.open(None if path is None else os.fspath(path))
        else:
            self._mode, self._where, args = _server_args(host, port, url, api_key, prefer_grpc, grpc_port)
            args.update(timeout=timeout, check_compatibility=False)
            self._client = _RemoteClients(lambda: AsyncQdrantClient(**args))  # the key stays in this closure

    def _describe(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._mode.items())

    @property
    def _local(self) -> bool:
        return isinstance(self._client, _LocalClient)

    async def _call(self, method: str, ws: str | None = None, /, **kwargs: Any) -> Any:
        """Call the client; a missing collection or an unreachable server raises our error."""
        try:
            return await self._client.call(method, **kwargs)
        except Exception as exc:
            mapped = _translate_error(exc, ws, self._where)
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
            points = await to_thread(_points, chunk, distance) if len(chunk) > 256 else _points(chunk, distance)
            try:
                await self._call("upsert", ws, collection_name=name, points=points, wait=True)
            except Exception as exc:
                await self._raise_partial(ws, chunk, written, exc)
            written.extend(chunk.ids)

    async def _raise_partial(self, ws: str, chunk: NodeBatch, written: list[str], exc: Exception) -> None:
        """Re-raise a failed chunk's error, or PartialWriteError naming exactly what was stored."""
        landed, unknown = [], ""
        if not _never_sent(exc):
            try:  # a failed request may still have landed, wholly or in part: look
                stored = {n.unique_id: n for n in await self._get(ws, chunk.ids)}
                landed = [i for k, i in enumerate(chunk.ids) if _same(stored.get(i), chunk, k)]
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
        nodes: list[VectorNode] = []
        for start in range(0, len(ids), self.batch_size):
            chunk = [point_id(i) for i in ids[start : start + self.batch_size]]
            records = await self._call("retrieve", ws, collection_name=name, ids=chunk, with_payload=True, with_vectors=with_vectors)
            nodes += [_node(r, ws) for r in records]
        return nodes

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
        searches = [_Search(q.tolist()) for q in queries]
        pending, limit = searches, top_k if plan.exact else max(2 * top_k, _MIN_OVERFETCH)
        while pending:  # post-filtered queries over-fetch until top_k match or the hits run out
            requests = [
                models.QueryRequest(query=s.query, filter=plan.filter, limit=limit, offset=s.offset or None, with_payload=True, with_vector=distance != "cosine")
                for s in pending
            ]
            responses = await self._call("query_batch_points", ws, collection_name=collection_name(ws), requests=requests)
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
            nodes = [_node(r, ws) for r in records]
            if not plan.exact:
                nodes = _matching(nodes, filter)
            for start in range(0, len(nodes), page_size):
                yield nodes[start : start + page_size]
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
        client, self._client = self._client, _ClosedClient()
        await client.close()


_QDRANT_DISTANCE = {"cosine": "Cosine", "dot": "Dot", "euclidean": "Euclid"}


def _server_args(host, port, url, api_key, prefer_grpc, grpc_port) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """What repr shows, the "host:port" errors name, and the client's arguments."""
    api_key = api_key if api_key is not None else os.getenv("FLOW_QDRANT_API_KEY") or None
    if url is not None:
        parts = urlsplit(url)  # shown without any user:password@ or query
        mode: dict[str, Any] = {"url": f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")}
        host, port = parts.hostname, parts.port or 6333
        args: dict[str, Any] = {"url": url}
    else:
        host = host or os.getenv("FLOW_QDRANT_HOST") or "localhost"
        port = int(port if port is not None else os.getenv("FLOW_QDRANT_PORT") or 6333)
        mode = {"host": host, "port": port}
        args = {"host": host, "port": port}
    if prefer_grpc:
        mode["grpc_port"] = port = grpc_port
    args.update(api_key=api_key, prefer_grpc=prefer_grpc, grpc_port=grpc_port)
    return mode, f"{host}:{port}", args


def _points(chunk: NodeBatch, distance: str | None) -> Any:
    """A ``Batch`` of points; built without pydantic's per-float checks (the batch is validated)."""
    payloads = []
    for i, metadata in enumerate(chunk.metadatas):
        payload = {"unique_id": chunk.ids[i], "content": chunk.contents[i], "metadata": metadata, PRESENT_KEY: present_tokens(metadata)}
        if distance == "cosine":
            payload["_vector"] = base64.b64encode(chunk.vectors[i].astype("<f4").tobytes()).decode("ascii")
        payloads.append(payload)
    return models.Batch.model_construct(ids=[point_id(i) for i in chunk.ids], vectors=chunk.vectors.tolist(), payloads=payloads)


@dataclass
class _Search:
    """One query's hits so far, and how far down Qdrant's ranking it has read."""

    query: list[float]
    offset: int = 0
    hits: list[VectorNode] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # an ANN index may repeat a hit across pages

    def take(self, points: list[Any], ws: str, post_filter: FilterNode | None, top_k: int) -> None:
        self.offset += len(points)
        nodes = [n for n in (_node(p, ws) for p in points) if n.unique_id not in self.seen]
        self.seen.update(n.unique_id for n in nodes)
        if post_filter is not None:
            nodes = _matching(nodes, post_filter)
        self.hits += nodes[: top_k - len(self.hits)]


def _matching(nodes: list[VectorNode], tree: FilterNode) -> list[VectorNode]:
    return [n for n, ok in zip(nodes, filter_mask(tree, [n.metadata for n in nodes])) if ok]


def _node(record: Any, ws: str) -> VectorNode:
    payload = record.payload or {}
    if "_vector" in payload:
        vector = np.frombuffer(base64.b64decode(payload["_vector"]), dtype="<f4").astype(np.float32)
    else:
        vector = None if record.vector is None else np.asarray(record.vector, dtype=np.float32)
    return VectorNode.model_construct(
        unique_id=payload.get("unique_id", str(record.id)),
        workspace_id=ws,
        content=payload.get("content", ""),
        metadata=payload.get("metadata") or {},
        vector=vector,
    )


def _same(stored: VectorNode | None, chunk: NodeBatch, k: int) -> bool:
    return (
        stored is not None
        and stored.content == chunk.contents[k]
        and stored.metadata == chunk.metadatas[k]
        and stored.vector is not None
        and stored.vector.tobytes() == chunk.vectors[k].tobytes()
    )


def _translate_error(exc: Exception, ws: str | None, where: str) -> Exception:
    if ws is not None and _is_not_found(exc):
        return WorkspaceNotFoundError(ws)
    reason = _unreachable_reason(exc)
    if reason is not None:
        return BackendUnavailableError(f"Qdrant server at {where} is not reachable: {reason}")
    return exc


def _never_sent(exc: BaseException) -> bool:
    """Whether the request failed before reaching the server (so nothing of it was applied)."""
    source = exc.__cause__ if isinstance(exc, BackendUnavailableError) else exc
    source = source.source if isinstance(source, ResponseHandlingException) else source
    return isinstance(source, (httpx.ConnectError, httpx.ConnectTimeout, ConnectionRefusedError))


def _is_not_found(exc: Exception) -> bool:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 404
    if isinstance(exc, grpc.RpcError):
        return exc.code() == grpc.StatusCode.NOT_FOUND
    return isinstance(exc, ValueError) and str(exc).startswith("Collection ") and str(exc).endswith(" not found")


def _unreachable_reason(exc: Exception) -> str | None:
    source = exc.source if isinstance(exc, ResponseHandlingException) else exc
    if isinstance(source, (httpx.TransportError, ConnectionError, TimeoutError)):
        return f"{type(source).__name__}: {source}".rstrip(": ")
    if isinstance(source, grpc.RpcError) and source.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"gRPC {source.code().name}"
    return None


class _RemoteClients:
    """One AsyncQdrantClient per running event loop."""

    def __init__(self, factory: Callable[[], Any]):
        self._clients = PerLoop(factory)

    async def call(self, method: str, /, **kwargs: Any) -> Any:
        return await getattr(self._clients.get(), method)(**kwargs)

    async def close(self) -> None:
        current = asyncio.get_running_loop()
        for loop, client in self._clients.pop_all():
            if loop is current:
                await client.close()
            elif loop.is_running():  # another thread's loop: close it there, without waiting
                asyncio.run_coroutine_threadsafe(client.close(), loop)


class _LocalClient:
    """A sync local-mode client: one per folder in this process, one call at a time."""

    _open: dict[str, _LocalClient] = {}
    _guard = threading.Lock()

    def __init__(self, path: str | None):
        self.path = path
        self.client = QdrantClient(location=":memory:") if path is None else QdrantClient(path=path)
        self.lock = threading.Lock()
        self.refs = 1
        self.info: dict[str, tuple[int | None, str | None]] = {}  # collection -> (dims, distance)

    @classmethod
    def open(cls, path: str | None) -> _LocalClient:
        if path is None:
            return cls(None)
        key = os.path.realpath(path)
        with cls._guard:  # re-running a notebook cell must not trip Qdrant's folder lock
            holder = cls._open.get(key)
            if holder is not None:
                holder.refs += 1
                return holder
            holder = cls._open[key] = cls(key)
            return holder

    async def call(self, method: str, /, **kwargs: Any) -> Any:
        def run() -> Any:
            with self.lock:
                return getattr(self.client, method)(**kwargs)

        return await to_thread(run)

    async def close(self) -> None:
        with self._guard:
            self.refs -= 1
            if self.refs > 0:
                return
            if self.path is not None:
                self._open.pop(self.path, None)
        await to_thread(self.client.close)


class _ClosedClient:
    async def call(self, method: str, /, **kwargs: Any) -> Any:
        raise ValidationError("this QdrantVectorStore is closed")

    async def close(self) -> None:
        return None
