"""BaseVectorStore: the public API, written once over a few backend hooks.

Every public method is a coroutine named ``async_<name>`` with a sync twin
``<name>`` that runs it on vecbook's background loop (see ``vecbook._aio``).
The base class validates input, embeds content, recomputes scores and applies
the workspace rules; a backend implements the hooks below.

Hook contract (all coroutines unless noted; ``ws`` is an already validated id):

``_exists(ws) -> bool``              asked fresh (``exist_workspace``, creating, deleting)
``_known(ws) -> bool``               (optional) the check before an operation on ``ws``; may answer
                                    from a cache if the other hooks raise WorkspaceNotFoundError
                                    when ``ws`` vanished meanwhile. Defaults to ``_exists``.
``_create(ws, dimensions)``         make an empty workspace (only called when it does not exist);
                                    ``dimensions`` may be ``None`` (learned from the first insert)
``_drop(ws)``                       remove the workspace and all its nodes (it exists)
``_list() -> list[str]``            every workspace id
``_dimensions(ws) -> int | None``   the vector length, if known
``_upsert(ws, batch)``              insert or replace ``batch`` (a NodeBatch): all or nothing
``_delete(ws, ids)``                delete these ids; unknown ids are ignored
``_get(ws, ids) -> list[VectorNode]``   the nodes that exist, any order
``_count(ws) -> int``
``_search(ws, queries, top_k, filter) -> list[list[VectorNode]]``
                                    the best ``top_k`` nodes per query row (with vectors),
                                    best first; ``filter`` is a parsed FilterNode or None
``_pages(ws, page_size, filter)``   async iterator of lists of nodes, every node exactly once
``_columns(ws, filter, limit)``     (optional) matching nodes as NodeColumns; the default reads ``_pages``
``_close()``                        release clients

Hooks raise WorkspaceNotFoundError if the workspace vanished underneath them.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._aio import iter_sync, require_loop, run_sync, sync_twin, to_thread
from ..embedding.base import BaseEmbeddingModel
from ..errors import DimensionMismatchError, ValidationError, WorkspaceNotFoundError
from ..filters import FilterNode, parse_filter
from ..columns import NodeColumns
from ..node import VectorNode
from .. import dumps
from .engine.batch import NodeBatch, as_node_list, check_node_id, check_vector, validate_nodes, validate_workspace_id
from .engine.scoring import exact_scores, normalize_distance

__all__ = ["BaseVectorStore"]

_LOOKUP = object()


class BaseVectorStore(ABC):
    """One interface over every backend; see the module docstring for the hooks.

    Args:
        embedding_model: turns content into vectors; optional if every node and
            query comes with a vector.
        batch_size: nodes per write call to the backend, and per page when iterating.
        distance: ``"cosine"`` (default), ``"dot"`` or ``"euclidean"``.
    """

    backend: ClassVar[str] = ""
    # True where no hook waits on a socket, so sync calls can skip the loop hop (see vecbook._aio).
    _runs_eagerly: bool = False

    def __init__(
        self,
        embedding_model: BaseEmbeddingModel | None = None,
        batch_size: int = 1024,
        distance: Any = "cosine",
        **kwargs: Any,
    ):
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected arguments: {', '.join(sorted(kwargs))}")
        if batch_size < 1:
            raise ValidationError("batch_size must be at least 1")
        self.embedding_model = embedding_model
        self.batch_size = int(batch_size)
        self.distance = normalize_distance(distance)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._describe()}, distance={self.distance!r}, embedding_model={self.embedding_model!r})"

    def _describe(self) -> str:
        return f"backend={self.backend!r}"

    # ---- hooks ---------------------------------------------------------------------------

    @abstractmethod
    async def _exists(self, ws: str) -> bool: ...

    @abstractmethod
    async def _create(self, ws: str, dimensions: int | None) -> None: ...

    @abstractmethod
    async def _drop(self, ws: str) -> None: ...

    @abstractmethod
    async def _list(self) -> list[str]: ...

    @abstractmethod
    async def _dimensions(self, ws: str) -> int | None: ...

    @abstractmethod
    async def _upsert(self, ws: str, batch: NodeBatch) -> None: ...

    @abstractmethod
    async def _delete(self, ws: str, ids: list[str]) -> None: ...

    @abstractmethod
    async def _get(self, ws: str, ids: list[str]) -> list[VectorNode]: ...

    @abstractmethod
    async def _count(self, ws: str) -> int: ...

    @abstractmethod
    async def _search(self, ws: str, queries: np.ndarray, top_k: int, filter: FilterNode | None) -> list[list[VectorNode]]: ...

    @abstractmethod
    def _pages(self, ws: str, page_size: int, filter: FilterNode | None) -> AsyncIterator[list[VectorNode]]: ...

    async def _close(self) -> None:
        return None

    async def _known(self, ws: str) -> bool:
        return await self._exists(ws)

    async def _columns(self, ws: str, filter: FilterNode | None, limit: int | None) -> NodeColumns:
        nodes: list[VectorNode] = []
        async with contextlib.aclosing(self._pages(ws, self.batch_size, filter)) as pages:
            async for page in pages:
                nodes.extend(page if limit is None else page[: limit - len(nodes)])
                if limit is not None and len(nodes) >= limit:
                    break
        return NodeColumns.from_nodes(ws, nodes, await self._dimensions(ws))

    # ---- workspaces ----------------------------------------------------------------------

    async def _require(self, workspace_id: str) -> str:
        ws = validate_workspace_id(workspace_id)
        if not await self._known(ws):
            raise WorkspaceNotFoundError(ws)
        return ws

    async def async_exist_workspace(self, workspace_id: str, **kwargs: Any) -> bool:
        """Whether the workspace exists."""
        return await self._exists(validate_workspace_id(workspace_id))

    async def async_create_workspace(self, workspace_id: str, dimensions: int | None = None, **kwargs: Any) -> bool:
        """Create an empty workspace; an existing one is left as it is. Returns True if created."""
        ws = validate_workspace_id(workspace_id)
        if await self._exists(ws):
            return False
        if dimensions is None and self.embedding_model is not None:
            dimensions = self.embedding_model.dimensions
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
            raise ValidationError(f"dimensions must be a positive integer, got {dimensions!r}")
        await self._create(ws, dimensions)
        return True

    async def async_delete_workspace(self, workspace_id: str, **kwargs: Any) -> bool:
        """Delete a workspace and its nodes; a missing one is not an error. Returns True if deleted."""
        ws = validate_workspace_id(workspace_id)
        if not await self._exists(ws):
            return False
        await self._drop(ws)
        return True

    async def async_list_workspaces(self, **kwargs: Any) -> list[str]:
        """Every workspace id, sorted."""
        return sorted(await self._list())

    async def async_copy_workspace(self, src_workspace_id: str, dest_workspace_id: str, **kwargs: Any) -> dict:
        """Upsert every node of ``src`` into ``dest`` (created if needed); vectors are copied, not re-embedded."""
        src = await self._require(src_workspace_id)
        dest = validate_workspace_id(dest_workspace_id)
        if src == dest:
            return {"size": await self._count(src)}
        await self.async_create_workspace(dest, dimensions=await self._dimensions(src))
        size = 0
        async for page in self._pages(src, self.batch_size, None):
            await self._upsert(dest, await self._prepare(dest, page, embed=False))
            size += len(page)
        return {"size": size}

    # ---- nodes ---------------------------------------------------------------------------

    async def async_insert(self, nodes: VectorNode | Sequence[VectorNode], workspace_id: str, **kwargs: Any) -> None:
        """Insert nodes, replacing any with the same ``unique_id``; nodes without a vector are embedded.

        All or nothing: on any error nothing from this call is written.
        """
        ws = await self._require(workspace_id)
        batch = await self._prepare(ws, as_node_list(nodes))
        if len(batch):
            await self._upsert(ws, batch)

    async def async_delete(self, node_ids: str | Sequence[str], workspace_id: str, **kwargs: Any) -> None:
        """Delete nodes by id; ids that do not exist are ignored."""
        ws = await self._require(workspace_id)
        ids = _id_list(node_ids)
        if ids:
            await self._delete(ws, ids)

    async def async_get(self, node_ids: str | Sequence[str], workspace_id: str, **kwargs: Any) -> list[VectorNode]:
        """The nodes with these ids, in the order asked; missing ids are left out."""
        ws = await self._require(workspace_id)
        ids = _id_list(node_ids)
        found = {node.unique_id: node for node in await self._get(ws, ids)} if ids else {}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    async def async_count(self, workspace_id: str, **kwargs: Any) -> int:
        """How many nodes the workspace holds."""
        return await self._count(await self._require(workspace_id))

    async def async_search(
        self, query: str, workspace_id: str, top_k: int = 1, filter_dict: dict | None = None, **kwargs: Any
    ) -> list[VectorNode]:
        """The ``top_k`` nodes most similar to ``query``, best first, with ``metadata["score"]``."""
        if not isinstance(query, str):
            raise ValidationError(f"query must be a string, got {type(query).__name__}; use search_by_vector for vectors")
        return (await self.async_batch_search([query], workspace_id, top_k, filter_dict))[0]

    async def async_search_by_vector(
        self, vector: Any, workspace_id: str, top_k: int = 1, filter_dict: dict | None = None, **kwargs: Any
    ) -> list[VectorNode]:
        """Like :meth:`search`, with a query vector instead of a text."""
        query = check_vector(vector, None, " (query vector)")
        return (await self.async_batch_search(query[None, :], workspace_id, top_k, filter_dict))[0]

    async def async_batch_search(
        self, queries: Sequence[str] | np.ndarray, workspace_id: str, top_k: int = 1, filter_dict: dict | None = None, **kwargs: Any
    ) -> list[list[VectorNode]]:
        """Search several queries in one call: texts, or a 2-D array of query vectors."""
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 0:
            raise ValidationError(f"top_k must be a non-negative integer, got {top_k!r}")
        tree = parse_filter(filter_dict)
        ws = await self._require(workspace_id)
        matrix = await self._query_matrix(queries)
        dims = await self._dimensions(ws)
        if dims is not None and len(matrix) and matrix.shape[1] != dims:
            raise DimensionMismatchError(dims, matrix.shape[1], "query")
        if top_k == 0 or not len(matrix) or dims is None:
            return [[] for _ in range(len(matrix))]
        results = await self._search(ws, matrix, int(top_k), tree)
        return [self._scored(query, hits) for query, hits in zip(matrix, results)]

    async def async_iter_workspace_nodes(
        self,
        workspace_id: str,
        filter_dict: dict | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        callback_fn: Callable[[VectorNode], Any] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Stream every node (optionally filtered, at most ``limit``), page by page, with no size cap."""
        tree = parse_filter(filter_dict)
        ws = await self._require(workspace_id)
        remaining = limit
        # aclosing: a backend's cursor (e.g. an ES point in time) is released as soon as we stop.
        async with contextlib.aclosing(self._pages(ws, page_size or self.batch_size, tree)) as pages:
            async for page in pages:
                if remaining is not None and remaining <= 0:
                    return
                for node in page[:remaining]:
                    yield callback_fn(node) if callback_fn else node
                if remaining is not None:
                    remaining -= len(page)

    def iter_workspace_nodes(self, workspace_id: str, **kwargs: Any) -> Iterator[Any]:
        """Sync twin of :meth:`async_iter_workspace_nodes`."""
        run_sync(self._require(workspace_id))  # raise now, not at the first next()
        return iter_sync(self.async_iter_workspace_nodes(workspace_id, **kwargs))

    async def async_read_columns(
        self, workspace_id: str, filter_dict: dict | None = None, limit: int | None = None, **kwargs: Any
    ) -> NodeColumns:
        """Every (matching) node at once, as columns: ids, contents, metadatas and an (n, d) vector matrix.

        The fast way to feed a map, a table or a DataFrame (``.to_dataframe()``);
        memory and local hand over their arrays without building a node per row.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError(f"limit must be a non-negative integer or None, got {limit!r}")
        tree = parse_filter(filter_dict)
        ws = await self._require(workspace_id)
        return await self._columns(ws, tree, limit)

    async def async_dump_workspace(
        self, workspace_id: str, path: str | Path = "", callback_fn: Callable | None = None, **kwargs: Any
    ) -> dict:
        """Write ``{path}/{workspace_id}.jsonl`` atomically, one node per line. Returns ``{"size": n}``."""
        ws = await self._require(workspace_id)
        target = dumps.dump_path(self._default_dump_dir(path), ws)
        with dumps.AtomicJsonlWriter(target) as writer:
            async for page in self._pages(ws, self.batch_size, None):
                await to_thread(writer.write_nodes, page, callback_fn)
        return {"size": writer.count, "path": str(target)}

    async def async_load_workspace(
        self,
        workspace_id: str,
        path: str | Path = "",
        nodes: Sequence[VectorNode] | None = None,
        callback_fn: Callable | None = None,
        mode: str = "replace",
        **kwargs: Any,
    ) -> dict:
        """Load ``{path}/{workspace_id}.jsonl`` and/or ``nodes`` into the workspace.

        The file is read and checked completely, and missing vectors are embedded,
        before anything is written. ``mode="replace"`` (the default, as in flowllm)
        leaves the workspace holding exactly the loaded nodes; ``"merge"`` upserts
        them beside what is there. Returns ``{"size": n}``.
        """
        ws = validate_workspace_id(workspace_id)
        if mode not in ("replace", "merge"):
            raise ValidationError(f"mode must be 'replace' or 'merge', got {mode!r}")
        if not path and nodes is None:
            raise ValidationError("load_workspace needs a path to a dump directory or nodes (or both)")
        loaded = list(as_node_list(nodes)) if nodes is not None else []
        if path:
            source = dumps.dump_path(Path(path), ws)
            loaded.extend(await to_thread(dumps.read_nodes, source, callback_fn))
        loaded = list({node.unique_id: node for node in loaded}.values())  # last one wins, as in an upsert
        dims = await self._dimensions(ws) if await self._exists(ws) else None
        batch = await self._prepare(ws, loaded, dimensions=dims if mode == "merge" else None)
        if mode == "replace" and dims is not None and batch.dimensions not in (None, dims):
            await self._drop(ws)  # vectors of another length: the old index cannot hold them
        await self.async_create_workspace(ws, dimensions=batch.dimensions)
        if len(batch):
            await self._upsert(ws, batch)
        if mode == "replace":
            keep = set(batch.ids)
            stale = [n.unique_id async for page in self._pages(ws, self.batch_size, None) for n in page if n.unique_id not in keep]
            if stale:
                await self._delete(ws, stale)
        return {"size": len(batch)}

    def refresh(self, workspace_id: str, **kwargs: Any) -> None:
        """Make recent writes visible to searches (a no-op where writes are visible at once)."""

    async def async_refresh(self, workspace_id: str, **kwargs: Any) -> None:
        self.refresh(workspace_id, **kwargs)

    async def async_close(self) -> None:
        """Release clients and files. The store should not be used afterwards."""
        await self._close()

    # ---- sync twins ------------------------------------------------------------------------

    # eager=True: methods with at most one write, made after anything that may need the loop.
    exist_workspace = sync_twin(async_exist_workspace, eager=True)
    create_workspace = sync_twin(async_create_workspace, eager=True)
    delete_workspace = sync_twin(async_delete_workspace, eager=True)
    list_workspaces = sync_twin(async_list_workspaces, eager=True)
    copy_workspace = sync_twin(async_copy_workspace)
    insert = sync_twin(async_insert, eager=True)
    delete = sync_twin(async_delete, eager=True)
    get = sync_twin(async_get, eager=True)
    count = sync_twin(async_count, eager=True)
    search = sync_twin(async_search, eager=True)
    search_by_vector = sync_twin(async_search_by_vector, eager=True)
    batch_search = sync_twin(async_batch_search, eager=True)
    read_columns = sync_twin(async_read_columns, eager=True)
    dump_workspace = sync_twin(async_dump_workspace)
    load_workspace = sync_twin(async_load_workspace)

    def close(self) -> None:
        run_sync(self.async_close())

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.async_close()

    # ---- helpers -----------------------------------------------------------------------------

    def _default_dump_dir(self, path: str | Path) -> Path:
        return Path(path) if path else Path(getattr(self, "store_dir", None) or ".")

    async def _embed(self, texts: list[str]) -> np.ndarray:
        require_loop()  # embedding models batch, retry and wait: they need the loop
        if self.embedding_model is None:
            raise ValidationError(
                f"{len(texts)} node(s)/queries need embedding but the store has no embedding_model; "
                "pass vectors or give the store an embedding model"
            )
        return await self.embedding_model.async_get_embeddings(texts)

    async def _query_matrix(self, queries: Sequence[str] | np.ndarray) -> np.ndarray:
        if isinstance(queries, np.ndarray) and queries.ndim == 2:
            matrix = np.ascontiguousarray(queries, dtype=np.float32)
            if not np.isfinite(matrix).all():
                raise ValidationError("query vectors contain NaN or infinity")
            return matrix
        if isinstance(queries, str):
            raise ValidationError("batch_search takes a list of queries; use search for one")
        texts = list(queries)
        if not all(isinstance(q, str) for q in texts):
            raise ValidationError("batch_search takes a list of strings or a 2-D array of vectors")
        return await self._embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)

    async def _prepare(self, ws: str, nodes: list[VectorNode], embed: bool = True, dimensions: Any = _LOOKUP) -> NodeBatch:
        """Validate nodes into a NodeBatch, embedding those without a vector. Raises before any write.

        Vectors must match ``dimensions`` (by default the workspace's, if it exists and knows it).
        """
        dims = dimensions
        if dims is _LOOKUP:
            dims = await self._dimensions(ws) if await self._known(ws) else None
        if len(nodes) > 256:  # keep the event loop responsive while checking big batches
            checked = await to_thread(validate_nodes, nodes, dims)
        else:
            checked = validate_nodes(nodes, dims)
        missing = [i for i, v in enumerate(checked.vectors) if v is None]
        if missing:
            if not embed:
                raise ValidationError(f"node {checked.ids[missing[0]]!r} has no vector")
            embedded = await self._embed([checked.contents[i] for i in missing])
            dims = checked.dimensions or dims
            for i, vector in zip(missing, embedded):
                checked.vectors[i] = check_vector(vector, dims, f" (embedding of node {checked.ids[i]!r})")
                dims = len(checked.vectors[i])
        return checked.to_batch(dims)

    def _scored(self, query: np.ndarray, hits: list[VectorNode]) -> list[VectorNode]:
        if not hits:
            return []
        scores = exact_scores(query, np.array([h.vector for h in hits], dtype=np.float64), self.distance)
        if len(hits) > 1 and not (scores[:-1] >= scores[1:]).all():  # backends usually rank them already
            order = np.argsort(-scores, kind="stable")
            hits, scores = [hits[i] for i in order], scores[order]
        return [hit.with_score(score) for hit, score in zip(hits, scores.tolist())]


def _id_list(node_ids: str | Sequence[str]) -> list[str]:
    ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
    for node_id in ids:
        check_node_id(node_id)
    return ids
