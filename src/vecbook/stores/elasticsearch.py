"""EsVectorStore: one Elasticsearch index per workspace, approximate kNN search.

Document layout (index ``{index_prefix}{mapped workspace id}``, ``dynamic: strict``)::

    content        text
    metadata       object, enabled: false   the user's metadata, returned exactly as inserted
    vector         binary                   the float32 vector (base64), returned bit for bit
    embedding      dense_vector             what kNN searches: the vector, unit-normalised for cosine
    filter_terms   keyword                  typed terms the portable filters match (see es_filters)

Cosine and dot products both use ``max_inner_product`` (cosine over normalised
vectors), which, unlike ES's ``cosine`` and ``dot_product``, accepts zero vectors;
euclidean uses ``l2_norm``. The base class recomputes every score from ``vector``.
Writes are bulk requests of ``batch_size`` documents; Elasticsearch is not
transactional, so a failure midway raises PartialWriteError naming what was written.
A search returns at most 10,000 nodes (ES's cap on ``k``); iteration has no cap
(a point in time and ``search_after``).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._aio import PerLoop, run_sync, sync_twin
from ..errors import (
    BackendUnavailableError,
    MissingDependencyError,
    PartialWriteError,
    ValidationError,
    VecbookError,
    WorkspaceNotFoundError,
)
from ..filters import FilterNode
from ..node import VectorNode
from .base import BaseVectorStore
from .batch import NodeBatch, validate_workspace_id
from .es_filters import FIELD, filter_terms, to_query

try:
    import elastic_transport
    import elasticsearch
    from elasticsearch import AsyncElasticsearch, NotFoundError, helpers
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("elasticsearch", "elasticsearch", feature="EsVectorStore") from exc
try:
    import aiohttp  # AsyncElasticsearch's default HTTP layer
except ImportError:  # pragma: no cover - depends on the environment
    aiohttp = None

__all__ = ["EsVectorStore", "index_name", "workspace_of"]

MAX_WINDOW = 10_000  # ES caps k, num_candidates and a page's size at 10,000
PIT_KEEP_ALIVE = "5m"  # how long iteration may pause between two pages
SIMILARITY = {"cosine": "max_inner_product", "dot": "max_inner_product", "euclidean": "l2_norm"}
SOURCE = {"includes": ["content", "metadata", "vector"]}
FORMAT = 1
_UNREACHABLE = (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout)
_REFRESH: contextvars.ContextVar[Any] = contextvars.ContextVar("vecbook_es_refresh", default=None)


# ---- workspace id <-> index name ------------------------------------------------------------


def index_name(prefix: str, workspace_id: str) -> str:
    """The index of a workspace: lower-cased, with the upper-case positions as a hex bit mask.

    ``"My.Ws"`` -> ``"vecbook-my.ws~9"``; ids without capitals keep their plain name.
    """
    mask = sum(1 << i for i, ch in enumerate(workspace_id) if ch.isupper())
    return f"{prefix}{workspace_id.lower()}" + (f"~{mask:x}" if mask else "")


def workspace_of(prefix: str, name: str) -> str | None:
    """The workspace id an index name stands for, or None if vecbook did not name it."""
    if not name.startswith(prefix):
        return None
    lower, _, mask = name[len(prefix) :].partition("~")
    try:
        bits = int(mask, 16) if mask else 0
    except ValueError:
        return None
    ws = "".join(ch.upper() if bits >> i & 1 else ch for i, ch in enumerate(lower))
    try:
        validate_workspace_id(ws)
    except VecbookError:
        return None
    return ws if index_name(prefix, ws) == name else None


def _check_prefix(prefix: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", prefix or ""):
        raise ValidationError(
            f"index_prefix {prefix!r} must be 1-64 characters of a-z 0-9 . _ - starting with a letter or digit"
        )
    return prefix


def _default_hosts() -> list[str]:
    return [h.strip() for h in os.environ.get("FLOW_ES_HOSTS", "http://localhost:9200").split(",") if h.strip()]


@dataclass
class _Conn:
    client: Any
    checked: bool = False


@dataclass
class _IndexInfo:
    dimensions: int | None
    distance: str | None


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
        self.index_prefix = _check_prefix(index_prefix)
        self.default_refresh = _check_refresh(refresh)
        self.num_candidates = int(num_candidates)
        self.index_options = dict(index_options) if index_options is not None else {"type": "hnsw"}
        self.connect_timeout = float(connect_timeout)
        options = {"request_timeout": request_timeout, "max_retries": 1, "retry_on_timeout": False, **(client_options or {})}
        if aiohttp is None and "node_class" not in options:
            raise MissingDependencyError("aiohttp", "elasticsearch", feature="EsVectorStore (the async Elasticsearch client)")
        orjson_serializer = getattr(elasticsearch, "OrjsonSerializer", None)  # present when orjson is installed
        if orjson_serializer is not None and not {"serializer", "serializers"} & set(options):
            options["serializer"] = orjson_serializer()  # the client's own choice for vectors: ~10x faster
        hosts = _default_hosts() if hosts is None else hosts
        self._client_args = {"hosts": hosts, "basic_auth": basic_auth, "api_key": api_key, **options}
        nodes = AsyncElasticsearch(**self._client_args).transport.node_pool.all()  # checks the arguments now
        self._endpoints = [(n.config.host, n.config.port) for n in nodes]
        self.hosts = [n.base_url for n in nodes]  # without credentials
        self._clients: PerLoop[_Conn] = PerLoop(lambda: _Conn(AsyncElasticsearch(**self._client_args)))
        self._info: dict[str, _IndexInfo] = {}

    def _describe(self) -> str:
        return f"hosts={self.hosts!r}, index_prefix={self.index_prefix!r}"

    def _index(self, ws: str) -> str:
        return index_name(self.index_prefix, ws)

    # ---- client and errors ----------------------------------------------------------------

    @property
    def _where(self) -> str:
        return ", ".join(f"{host}:{port}" for host, port in self._endpoints)

    async def _es(self) -> Any:
        """This loop's client; its first use checks that some node accepts connections, quickly."""
        conn = self._clients.get()
        if not conn.checked:
            await self._probe()
            conn.checked = True
        return conn.client

    async def _probe(self) -> None:
        causes = []
        for host, port in self._endpoints:
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout)
            except (OSError, asyncio.TimeoutError) as exc:
                causes.append(f"{host}:{port}: {type(exc).__name__} {exc}".strip())
                continue
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
            return
        raise BackendUnavailableError(f"Elasticsearch is unreachable at {self._where} ({'; '.join(causes)})")

    def _unreachable(self, exc: BaseException, note: str = "") -> BackendUnavailableError:
        return BackendUnavailableError(f"Elasticsearch at {self._where} did not answer: {_scrub(exc)}{note}")

    @contextmanager
    def _calling(self, ws: str | None = None) -> Iterator[None]:
        """Translate the client's errors: unreachable server, vanished index."""
        try:
            yield
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from None
        except NotFoundError as exc:
            if ws is not None and exc.error == "index_not_found_exception":
                self._info.pop(ws, None)
                raise WorkspaceNotFoundError(ws) from None
            raise

    # ---- workspaces --------------------------------------------------------------------------

    async def _exists(self, ws: str) -> bool:
        es = await self._es()
        with self._calling():
            return bool(await es.indices.exists(index=self._index(ws)))

    async def _require(self, workspace_id: str) -> str:
        # An index whose mapping we hold needs no HEAD request before each read: if it vanished,
        # the read itself fails with index_not_found, which _calling turns into WorkspaceNotFoundError.
        ws = validate_workspace_id(workspace_id)
        return ws if ws in self._info else await super()._require(ws)

    async def _create(self, ws: str, dimensions: int | None) -> None:
        embedding: dict[str, Any] = {"type": "dense_vector", "index": True, "similarity": SIMILARITY[self.distance]}
        if dimensions is not None:
            embedding["dims"] = dimensions
        if self.index_options:
            embedding["index_options"] = self.index_options
        mappings = {
            "dynamic": "strict",
            "_meta": {"vecbook": {"format": FORMAT, "workspace_id": ws, "distance": self.distance}},
            "properties": {
                "content": {"type": "text"},
                "metadata": {"type": "object", "enabled": False},
                "vector": {"type": "binary"},
                "embedding": embedding,
                FIELD: {"type": "keyword"},
            },
        }
        es = await self._es()
        self._info.pop(ws, None)
        with self._calling():
            try:
                await es.indices.create(index=self._index(ws), mappings=mappings)
            except Exception as exc:  # created meanwhile by someone else: fine
                if getattr(exc, "error", None) != "resource_already_exists_exception":
                    raise

    async def _drop(self, ws: str) -> None:
        es = await self._es()
        self._info.pop(ws, None)
        with self._calling():
            await es.options(ignore_status=404).indices.delete(index=self._index(ws))

    async def _list(self) -> list[str]:
        es = await self._es()
        with self._calling():
            resp = await es.indices.resolve_index(name=f"{self.index_prefix}*", expand_wildcards="open")
        names = (workspace_of(self.index_prefix, entry["name"]) for entry in resp.get("indices", []))
        return [ws for ws in names if ws is not None]

    async def _index_info(self, ws: str) -> _IndexInfo:
        info = self._info.get(ws)
        if info is not None:
            return info
        es = await self._es()
        with self._calling(ws):
            resp = await es.indices.get_mapping(index=self._index(ws))
        mapping = next(iter(resp.body.values()))["mappings"]
        meta = mapping.get("_meta", {}).get("vecbook", {})
        dims = mapping.get("properties", {}).get("embedding", {}).get("dims")
        info = _IndexInfo(dims, meta.get("distance"))
        if dims is not None:  # an index's dims never change: keep it
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

    async def _upsert(self, ws: str, batch: NodeBatch) -> None:
        await self._check_distance(ws)
        terms = [filter_terms(md) for md in batch.metadatas]  # may raise: before anything is written
        index = self._index(ws)
        embeddings = _normalized(batch.vectors) if self.distance == "cosine" else batch.vectors

        def actions(start: int, stop: int) -> Iterator[dict]:
            for i in range(start, stop):
                yield {
                    "_index": index,
                    "_id": batch.ids[i],
                    "_source": {
                        "content": batch.contents[i],
                        "metadata": batch.metadatas[i],
                        "vector": base64.b64encode(batch.vectors[i].tobytes()).decode("ascii"),
                        "embedding": embeddings[i],  # both client serializers take numpy arrays
                        FIELD: terms[i],
                    },
                }

        await self._bulk(ws, len(batch), actions, "insert")

    async def _delete(self, ws: str, ids: list[str]) -> None:
        index = self._index(ws)

        def actions(start: int, stop: int) -> Iterator[dict]:
            return ({"_op_type": "delete", "_index": index, "_id": i} for i in ids[start:stop])

        await self._bulk(ws, len(ids), actions, "delete")

    async def _bulk(self, ws: str, total: int, actions, what: str) -> None:
        """Send ``actions(start, stop)`` in chunks of batch_size, stopping at the first failure."""
        es = await self._es()
        refresh = _REFRESH.get()
        refresh = self.default_refresh if refresh is None else refresh
        done: list[str] = []
        for start in range(0, total, self.batch_size):
            stop = min(total, start + self.batch_size)
            try:
                failures = await self._bulk_chunk(es, actions(start, stop), done, refresh == "wait_for")
            except elastic_transport.TransportError as exc:
                unknown = f"whether the {stop - start} node(s) of the interrupted request were written is unknown"
                if not done and isinstance(exc, _UNREACHABLE):
                    raise self._unreachable(exc, f"; {unknown}") from None
                raise PartialWriteError(f"{what} into workspace {ws!r} was interrupted ({_scrub(exc)}); {unknown}", done) from None
            if failures:
                await self._refresh_after(es, ws, refresh)
                if all(_index_missing(f) for f in failures) and not done:
                    raise WorkspaceNotFoundError(ws)
                raise PartialWriteError(f"Elasticsearch refused to {what} {len(failures)} node(s) in workspace {ws!r}: {failures[0]}", done)
        await self._refresh_after(es, ws, refresh)

    async def _bulk_chunk(self, es: Any, chunk: Iterator[dict], done: list[str], wait_for: bool) -> list[str]:
        failures = []
        stream = helpers.async_streaming_bulk(
            es,
            chunk,
            chunk_size=self.batch_size,
            raise_on_error=False,
            raise_on_exception=False,
            max_retries=2,
            initial_backoff=0.5,
            max_backoff=4,
            **({"refresh": "wait_for"} if wait_for else {}),
        )
        async with aclosing(stream):
            async for ok, item in stream:
                op, info = next(iter(item.items()))
                if ok or (op == "delete" and info.get("status") == 404 and "error" not in info):
                    done.append(info["_id"])
                else:
                    failures.append(_describe_failure(info))
        return failures

    async def _refresh_after(self, es: Any, ws: str, refresh: Any) -> None:
        if refresh is True:
            with self._calling(ws):
                await es.indices.refresh(index=self._index(ws))

    async def async_insert(self, nodes: Any, workspace_id: str, refresh: bool | str | None = None, **kwargs: Any) -> None:
        """Insert or replace nodes (see BaseVectorStore); ``refresh`` overrides the store's default."""
        token = _REFRESH.set(None if refresh is None else _check_refresh(refresh))
        try:
            await super().async_insert(nodes, workspace_id, **kwargs)
        finally:
            _REFRESH.reset(token)

    async def async_delete(self, node_ids: Any, workspace_id: str, refresh: bool | str | None = None, **kwargs: Any) -> None:
        """Delete nodes by id (see BaseVectorStore); ``refresh`` overrides the store's default."""
        token = _REFRESH.set(None if refresh is None else _check_refresh(refresh))
        try:
            await super().async_delete(node_ids, workspace_id, **kwargs)
        finally:
            _REFRESH.reset(token)

    async def async_refresh(self, workspace_id: str, **kwargs: Any) -> None:
        """Make every write so far visible to searches, counts and iteration."""
        ws = await self._require(workspace_id)
        es = await self._es()
        with self._calling(ws):
            await es.indices.refresh(index=self._index(ws))

    insert = sync_twin(async_insert)
    delete = sync_twin(async_delete)

    def refresh(self, workspace_id: str, **kwargs: Any) -> None:
        """Sync twin of :meth:`async_refresh`."""
        run_sync(self.async_refresh(workspace_id, **kwargs))

    # ---- reads -------------------------------------------------------------------------------

    def _node(self, ws: str, doc_id: str, source: dict) -> VectorNode:
        vector = np.frombuffer(base64.b64decode(source["vector"]), dtype=np.float32).copy()
        return VectorNode.model_construct(
            unique_id=doc_id, workspace_id=ws, content=source.get("content", ""), metadata=source.get("metadata") or {}, vector=vector
        )

    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]:
        es = await self._es()
        found = []
        for start in range(0, len(ids), self.batch_size):
            with self._calling(ws):
                resp = await es.mget(index=self._index(ws), ids=ids[start : start + self.batch_size], source=SOURCE["includes"])
            for doc in resp["docs"]:
                if "error" in doc:  # mget reports a missing index per document
                    raise self._doc_error(ws, doc["error"])
                if doc.get("found"):
                    found.append(self._node(ws, doc["_id"], doc["_source"]))
        return found

    async def _count(self, ws: str) -> int:
        es = await self._es()
        with self._calling(ws):
            return int((await es.count(index=self._index(ws)))["count"])

    async def _search(self, ws: str, queries: np.ndarray, top_k: int, filter: FilterNode | None) -> list[list[VectorNode]]:
        await self._check_distance(ws)
        k = min(top_k, MAX_WINDOW)
        if self.distance == "cosine":
            queries = _normalized(queries)
        knn_filter = {"filter": to_query(filter)} if filter is not None else {}
        bodies = [
            {
                "knn": {
                    "field": "embedding",
                    "query_vector": q,
                    "k": k,
                    "num_candidates": min(MAX_WINDOW, max(k, self.num_candidates)),
                    **knn_filter,
                },
                "size": k,
                "_source": SOURCE,
            }
            for q in queries
        ]
        es = await self._es()
        index = self._index(ws)
        with self._calling(ws):
            if len(bodies) == 1:
                responses = [(await es.search(index=index, **_search_kwargs(bodies[0]))).body]
            else:
                searches = [part for body in bodies for part in ({"index": index}, body)]
                responses = (await es.msearch(searches=searches))["responses"]
        return [self._hits(ws, resp) for resp in responses]

    def _doc_error(self, ws: str, error: Any) -> Exception:
        """The exception for an error reported inside a 200 response (mget, msearch)."""
        if isinstance(error, dict) and error.get("type") == "index_not_found_exception":
            self._info.pop(ws, None)
            return WorkspaceNotFoundError(ws)
        if isinstance(error, dict):
            return VecbookError(f"Elasticsearch failed: {error.get('type')}: {error.get('reason')}")
        return VecbookError(f"Elasticsearch failed: {error}")

    def _hits(self, ws: str, resp: dict) -> list[VectorNode]:
        if "error" in resp:
            raise self._doc_error(ws, resp["error"])
        return [self._node(ws, hit["_id"], hit["_source"]) for hit in resp["hits"]["hits"]]

    async def _pages(self, ws: str, page_size: int, filter: FilterNode | None) -> AsyncIterator[list[VectorNode]]:
        """Every matching node once, from a point in time of the index, with search_after."""
        es = await self._es()
        size = max(1, min(page_size, MAX_WINDOW))
        query = {"bool": {"filter": [to_query(filter)]}} if filter is not None else {"match_all": {}}
        with self._calling(ws):
            pit = (await es.open_point_in_time(index=self._index(ws), keep_alive=PIT_KEEP_ALIVE))["id"]
        try:
            after = None
            while True:
                resp = await self._page(es, ws, pit, query, size, after)
                pit = resp.get("pit_id", pit)
                hits = resp["hits"]["hits"]
                if hits:
                    yield [self._node(ws, h["_id"], h["_source"]) for h in hits]
                if len(hits) < size:
                    return
                after = hits[-1]["sort"]
        finally:
            try:
                await es.close_point_in_time(id=pit)
            except Exception:  # it expires by itself
                pass

    async def _page(self, es: Any, ws: str, pit: str, query: dict, size: int, after: list | None) -> Any:
        try:
            with self._calling(ws):
                return await es.search(
                    pit={"id": pit, "keep_alive": PIT_KEEP_ALIVE},
                    query=query,
                    sort=["_shard_doc"],
                    size=size,
                    source=SOURCE,
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
        current = asyncio.get_running_loop()
        for loop, conn in self._clients.pop_all():
            if loop is current:
                await conn.client.close()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(conn.client.close(), loop)
                try:
                    await asyncio.wait_for(asyncio.wrap_future(future), 5)
                except Exception:  # that loop is busy or dying; its connections go with it
                    pass
            # A client whose loop has stopped cannot be closed (aiohttp needs that loop): it is dropped.


# ---- helpers -----------------------------------------------------------------------------------


def _check_refresh(refresh: Any) -> bool | str:
    if refresh in (True, False, "wait_for"):
        return refresh
    raise ValidationError(f"refresh must be True, False or 'wait_for', got {refresh!r}")


def _normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): only ranks, so float32 is precise enough."""
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))[:, None]  # float64: no overflow
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _search_kwargs(body: dict) -> dict:
    out = dict(body)
    out["source"] = out.pop("_source")
    return out


def _describe_failure(info: dict) -> str:
    error = info.get("error")
    if isinstance(error, dict):
        return f"{info.get('_id')!r}: {error.get('type')}: {error.get('reason')}"
    return f"{info.get('_id')!r}: {error or 'status ' + str(info.get('status'))}"


def _index_missing(failure: str) -> bool:
    return ": index_not_found_exception:" in failure


def _scrub(exc: BaseException) -> str:
    """A short error text with any user:password@ taken out of URLs."""
    text = str(exc).split("\n")[0][:300]
    return re.sub(r"//[^/@\s]+@", "//", text)
