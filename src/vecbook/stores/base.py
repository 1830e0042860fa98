"""BaseVectorStore: the public API, written once over a few backend hooks.

Every public method is a coroutine named ``async_<name>`` with a sync twin
``<name>`` that runs it on vecbook's background loop (see ``vecbook._aio``): one
path per call. The base class validates input, embeds content, splits writes into
chunks and makes each call all or nothing (``writes.py``), over-fetches and
post-filters where a backend's filter is not exact (``matching.py``), recomputes
scores and applies the workspace rules. A backend implements the hooks below.

Hook contract (coroutines unless noted; ``ws`` is an already validated id):

``_exists(ws) -> bool``              asked fresh (``exist_workspace``, creating, deleting)
``_known(ws) -> bool``               (optional) the check before an operation on ``ws``; may answer
                                    from a cache if the other hooks raise WorkspaceNotFoundError
                                    when ``ws`` vanished meanwhile. Defaults to ``_exists``.
``_create(ws, dimensions)``         make an empty workspace (only called when it does not exist);
                                    ``dimensions`` may be ``None`` (learned from the first insert)
``_drop(ws)``                       remove the workspace and all its nodes (it exists)
``_list() -> list[str]``            every workspace id
``_dimensions(ws) -> int | None``   the vector length, if known
``_write_chunk() -> int | None``    (optional) the most nodes ``_upsert``/``_delete`` take at once;
                                    ``None`` (the default): any batch, atomically
``_upsert(ws, batch)``              insert or replace ``batch`` (a NodeBatch of at most one chunk)
``_delete(ws, ids)``                delete these ids (at most one chunk); unknown ids are ignored
``_get(ws, ids) -> list[VectorNode]``   the nodes that exist, any order, with vectors
``_count(ws) -> int``
``_translate(ws, filter) -> Translation``   (optional) the native form of a parsed filter and
                                    whether it is exact; the default hands the tree over, exact
``_search(ws, queries, limit, native) -> list[list[VectorNode]]``
                                    per query row, the best ``limit`` nodes matching ``native``
                                    (with vectors), best first; fewer only if no more match
``_searchable(ws, queries) -> bool``   (optional) False if ``ws`` holds no vectors yet; raises
                                    DimensionMismatchError if the query rows have another length.
                                    The default asks ``_dimensions``; a backend whose ``_search``
                                    checks both in the same trip returns True (one trip per search)
``_pages(ws, page_size, native)``   async iterator of lists of nodes matching ``native``, each once
``_column_pages(ws, page_size, native, columns)``   (optional) ``_pages`` that may leave out what
                                    ``columns`` does not name (content "", metadata {}, vector None);
                                    the default is ``_pages``
``_columns(ws, filter, limit, offset, columns)``   (optional) matching nodes ``offset`` to
                                    ``offset + limit`` (in ``_pages``' order) as NodeColumns of the
                                    names in ``columns`` (a frozenset, the others ``None``); the
                                    default reads pages
``_id_columns(ws, ids, filter, columns)``   (optional) the nodes with these ids (distinct, in that
                                    order, missing ones left out) that match ``filter``, as NodeColumns;
                                    the default reads them with ``_get``
``_close()``                        release clients
``_after_fork()``                   (optional, sync) make the store usable in a forked child

More hooks, each with a default that works on every backend, are listed beside the public
methods they serve: the search calls in ``search_api.py`` (keyword search in ``search_modes.py``), metadata introspection and update by
filter in ``metadata_api.py``. Dumps are in ``dump_api.py``.

Hooks raise WorkspaceNotFoundError if the workspace vanished underneath them.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from .._aio import iter_sync, on_fork, run_sync, sync_twin, to_thread
from ..columns import NodeColumns
from ..embedding.base import BaseEmbeddingModel
from ..errors import DimensionMismatchError, ValidationError, WorkspaceNotFoundError
from ..filters import FilterNode, parse_filter
from ..node import VectorNode
from . import by_filter
from .arguments import public
from .column_reads import COLUMNS, check_columns, check_slice, columns_of_pages, sliced
from .dump_api import DumpMethods
from .engine.batch import (
    NodeBatch,
    as_node_list,
    check_node_id,
    check_vector,
    validate_nodes,
    validate_workspace_id,
)
from .engine.scoring import normalize_distance
from .matching import Translation, keep_matching
from .metadata_api import MetadataMethods
from .search_api import SearchMethods
from .writes import all_or_nothing

__all__ = ["BaseVectorStore"]

_LOOKUP = object()


class BaseVectorStore(SearchMethods, MetadataMethods, DumpMethods, ABC):
    """One interface over every backend; see the module docstring for the hooks.

    Args:
        embedding_model: turns content into vectors; optional if every node and
            query comes with a vector.
        batch_size: nodes per write call to the backend, and per page when iterating.
        distance: ``"cosine"`` (default), ``"dot"`` or ``"euclidean"``.
    """

    backend: ClassVar[str] = ""

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
        self._closed: bool | str = False  # or why the store cannot be used
        on_fork(self)

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
    async def _search(self, ws: str, queries: np.ndarray, limit: int, native: Any) -> list[list[VectorNode]]: ...

    @abstractmethod
    def _pages(self, ws: str, page_size: int, native: Any) -> AsyncIterator[list[VectorNode]]: ...

    def _column_pages(self, ws: str, page_size: int, native: Any, columns: frozenset[str]) -> AsyncIterator[list[VectorNode]]:
        return self._pages(ws, page_size, native)

    async def _write_chunk(self) -> int | None:
        return None

    async def _translate(self, ws: str, filter: FilterNode | None) -> Translation:
        return Translation(filter)

    async def _close(self) -> None:
        return None

    def _after_fork(self) -> None:
        """Called in a forked child (sync): make the store usable there, or refuse it."""
        return None

    def _refuse_in_child(self) -> None:
        """An ``_after_fork`` for stores whose embedded engine cannot cross a fork."""
        if not self._closed:
            self._closed = "was opened in the parent of this forked process; its embedded engine cannot be shared"

    async def _known(self, ws: str) -> bool:
        return await self._exists(ws)

    async def _searchable(self, ws: str, queries: np.ndarray) -> bool:
        dims = await self._dimensions(ws)
        if dims is not None and len(queries) and queries.shape[1] != dims:
            raise DimensionMismatchError(dims, queries.shape[1], "query")
        return dims is not None

    async def _columns(self, ws: str, filter: FilterNode | None, limit: int | None, offset: int, columns: frozenset[str]) -> NodeColumns:
        pages = self._matching_pages(ws, self.batch_size, filter, columns)
        return await columns_of_pages(pages, ws, limit, offset, columns, await self._dimensions(ws))

    async def _id_columns(self, ws: str, ids: list[str], filter: FilterNode | None, columns: frozenset[str]) -> NodeColumns:
        found = {node.unique_id: node for node in await self._get(ws, ids)} if ids else {}
        nodes = keep_matching(filter, [found[i] for i in ids if i in found])
        return NodeColumns.from_nodes(ws, nodes, await self._dimensions(ws), columns)

    # ---- workspaces ----------------------------------------------------------------------

    async def _require(self, workspace_id: str) -> str:
        ws = validate_workspace_id(workspace_id)
        if not await self._known(ws):
            raise WorkspaceNotFoundError(ws)
        return ws

    @public
    async def async_exist_workspace(self, workspace_id: str) -> bool:
        """Whether the workspace exists."""
        return await self._exists(validate_workspace_id(workspace_id))

    @public
    async def async_create_workspace(self, workspace_id: str, dimensions: int | None = None) -> bool:
        """Create an empty workspace; an existing one is left as it is. Returns True if created."""
        return await self._create_missing(validate_workspace_id(workspace_id), dimensions)

    async def _create_missing(self, ws: str, dimensions: int | None) -> bool:
        if await self._exists(ws):
            return False
        if dimensions is None and self.embedding_model is not None:
            dimensions = self.embedding_model.dimensions
        if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
            raise ValidationError(f"dimensions must be a positive integer, got {dimensions!r}")
        await self._create(ws, dimensions)
        return True

    @public
    async def async_delete_workspace(self, workspace_id: str) -> bool:
        """Delete a workspace and its nodes; a missing one is not an error. Returns True if deleted."""
        ws = validate_workspace_id(workspace_id)
        if not await self._exists(ws):
            return False
        try:
            await self._drop(ws)
        finally:
            self._wrote(ws)
        return True

    @public
    async def async_list_workspaces(self) -> list[str]:
        """Every workspace id, sorted."""
        return sorted(await self._list())

    @public
    async def async_copy_workspace(self, src_workspace_id: str, dest_workspace_id: str) -> dict:
        """Upsert every node of ``src`` into ``dest`` (created if needed); vectors are copied, not re-embedded.

        All or nothing: if the copy fails or is cancelled, ``dest`` is as it was (or absent again).
        """
        src = await self._require(src_workspace_id)
        dest = validate_workspace_id(dest_workspace_id)
        if src == dest:
            return {"size": await self._count(src)}
        created = await self._create_missing(dest, await self._dimensions(src))
        size = 0
        async with all_or_nothing(self, dest, created=created) as writes:
            async for page in self._matching_pages(src, self.batch_size, None):
                await writes.upsert(await self._prepare(dest, page, embed=False))
                size += len(page)
        return {"size": size}

    # ---- nodes ---------------------------------------------------------------------------

    @public
    async def async_insert(self, nodes: VectorNode | Sequence[VectorNode] | NodeColumns, workspace_id: str) -> None:
        """Insert nodes, replacing any with the same ``unique_id``; nodes without a vector are embedded.

        ``nodes`` may also be a :class:`~vecbook.NodeColumns`: many nodes as columns (a
        vector matrix, lists of ids, contents and metadata), checked and written as a list
        of the same nodes would be, without building a ``VectorNode`` per row (a bulk load
        runs about twice as fast). Its ``workspace_id`` is not used.
        All or nothing: on any error, cancellation or interrupt nothing from this call is left written.
        """
        ws = await self._require(workspace_id)
        batch = await self._prepare(ws, nodes if isinstance(nodes, NodeColumns) else as_node_list(nodes))
        async with all_or_nothing(self, ws, single=True) as writes:
            await writes.upsert(batch)

    @public
    async def async_delete(
        self, node_ids: str | Sequence[str] | None = None, workspace_id: str | None = None, filter_dict: dict | None = None
    ) -> int | None:
        """Delete nodes by id (ids that do not exist are ignored), or every node matching ``filter_dict``.

        Give ``node_ids`` or ``filter_dict``, not both. By id it returns None, as in the guide;
        by filter, how many nodes were deleted (an empty filter is refused: use
        ``delete_workspace``). All or nothing, like :meth:`insert`.
        """
        if workspace_id is None:
            raise TypeError("delete() missing required argument: 'workspace_id'")
        ids, tree = by_filter.selection(node_ids, filter_dict, "delete")
        ws = await self._require(workspace_id)
        if ids is None:
            if tree is None:
                raise ValidationError("delete(filter_dict={}) would delete every node; use delete_workspace, or a filter")
            return await by_filter.delete_matching(self, ws, tree)
        async with all_or_nothing(self, ws, single=True) as writes:
            await writes.delete(ids)
        return None

    @public
    async def async_get(self, node_ids: str | Sequence[str], workspace_id: str) -> list[VectorNode]:
        """The nodes with these ids, in the order asked; missing ids are left out."""
        ws = await self._require(workspace_id)
        ids = _id_list(node_ids)
        found = {node.unique_id: node for node in await self._get(ws, ids)} if ids else {}
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    @public
    async def async_count(self, workspace_id: str, filter_dict: dict | None = None) -> int:
        """How many nodes the workspace holds (that match ``filter_dict``, if given)."""
        tree = parse_filter(filter_dict)
        ws = await self._require(workspace_id)
        if tree is None:
            return await self._count(ws)
        translation = await self._translate(ws, tree)
        if translation.empty:
            return 0
        counted = await self._count_where(ws, translation.native) if translation.exact else None
        if counted is None:
            counted = len(await self._matching_ids(ws, tree))
        return counted

    async def _matching_pages(self, ws: str, page_size: int, filter: FilterNode | None,
                              columns: frozenset[str] = COLUMNS) -> AsyncIterator[list[VectorNode]]:
        """Pages of the nodes matching ``filter`` (post-filtered where the native filter is a superset),
        with at least ``columns`` read (the metadata too when a post-filter needs it)."""
        translation = await self._translate(ws, filter)
        if translation.empty:
            return
        needed = columns if translation.exact else columns | {"metadatas"}
        async with contextlib.aclosing(self._column_pages(ws, page_size, translation.native, needed)) as pages:
            async for page in pages:
                page = page if translation.exact else keep_matching(filter, page)
                if page:
                    yield page

    @public
    async def async_iter_workspace_nodes(
        self,
        workspace_id: str,
        filter_dict: dict | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        callback_fn: Callable[[VectorNode], Any] | None = None,
    ) -> AsyncIterator[Any]:
        """Stream every node (optionally filtered, at most ``limit``), page by page, with no size cap.

        ``callback_fn(node)``, if given, maps each node to what is yielded.
        """
        tree, ws = parse_filter(filter_dict), await self._require(workspace_id)
        async with contextlib.aclosing(self._limited_pages(ws, tree, limit, page_size)) as pages:
            async for page in pages:
                for node in page:
                    yield callback_fn(node) if callback_fn else node

    @public
    def iter_workspace_nodes(
        self,
        workspace_id: str,
        filter_dict: dict | None = None,
        limit: int | None = None,
        page_size: int | None = None,
        callback_fn: Callable[[VectorNode], Any] | None = None,
    ) -> Iterator[Any]:
        """Sync twin of :meth:`async_iter_workspace_nodes`: pages come from the loop, ``callback_fn``
        runs on the caller's thread (so it may call the store)."""
        tree = parse_filter(filter_dict)
        ws = run_sync(self._require(workspace_id))  # raise now, not at the first next()
        return _each(iter_sync(self._limited_pages(ws, tree, limit, page_size)), callback_fn)

    async def _limited_pages(self, ws: str, filter: FilterNode | None, limit: int | None, page_size: int | None) -> AsyncIterator[list[VectorNode]]:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValidationError(f"limit must be a non-negative integer or None, got {limit!r}")
        remaining = limit
        async with contextlib.aclosing(self._matching_pages(ws, page_size or self.batch_size, filter)) as pages:
            async for page in pages:
                if remaining is not None:
                    if remaining <= 0:
                        return
                    page, remaining = page[:remaining], remaining - len(page)
                yield page

    @public
    async def async_read_columns(self, workspace_id: str, filter_dict: dict | None = None, limit: int | None = None,
                                 offset: int = 0, columns: Sequence[str] | None = None,
                                 node_ids: str | Sequence[str] | None = None) -> NodeColumns:
        """Every (matching) node at once, as columns: ids, contents, metadatas and an (n, d) vector matrix.

        The fast way to feed a map, a table or a DataFrame (``.to_dataframe()``);
        memory and local hand over their arrays without building a node per row.
        ``columns`` names the columns to read (any of ``"ids"``, ``"contents"``,
        ``"metadatas"``, ``"vectors"``; default all); the others are ``None``.
        ``offset`` skips that many matching nodes first, in iteration's order:
        ``offset``/``limit`` pages through a workspace that is not being written.
        ``node_ids`` reads those nodes only, in the order given (each once; missing ids,
        and nodes ``filter_dict`` rejects, are left out): the columnar twin of ``get``.
        """
        check_slice(limit, offset)
        which = check_columns(columns)
        tree = parse_filter(filter_dict)
        ids = None if node_ids is None else list(dict.fromkeys(_id_list(node_ids)))
        ws = await self._require(workspace_id)
        if ids is None:
            return await self._columns(ws, tree, limit, offset, which)
        return sliced(await self._id_columns(ws, ids, tree, which), offset, limit)

    # ---- the rest ------------------------------------------------------------------------------

    @public
    async def async_refresh(self, workspace_id: str) -> None:
        """Make recent writes visible to searches (a no-op where writes are visible at once)."""
        self._wrote(await self._require(workspace_id))

    async def async_close(self) -> None:
        """Release clients and files. Using the store afterwards raises StoreClosedError."""
        if self._closed:
            return
        self._closed = True
        await self._close()

    # ---- sync twins ------------------------------------------------------------------------

    exist_workspace = sync_twin(async_exist_workspace)
    create_workspace = sync_twin(async_create_workspace)
    delete_workspace = sync_twin(async_delete_workspace)
    list_workspaces = sync_twin(async_list_workspaces)
    copy_workspace = sync_twin(async_copy_workspace)
    insert = sync_twin(async_insert)
    delete = sync_twin(async_delete)
    get = sync_twin(async_get)
    count = sync_twin(async_count)
    read_columns = sync_twin(async_read_columns)
    refresh = sync_twin(async_refresh)
    close = sync_twin(async_close)

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.async_close()

    # ---- helpers -----------------------------------------------------------------------------

    async def _embed(self, texts: list[str]) -> np.ndarray:
        if self.embedding_model is None:
            raise ValidationError(
                f"{len(texts)} node(s)/queries need embedding but the store has no embedding_model; "
                "pass vectors or give the store an embedding model"
            )
        return await self.embedding_model.async_get_embeddings(texts)

    async def _prepare(self, ws: str, nodes: list[VectorNode] | NodeColumns, embed: bool = True, dimensions: Any = _LOOKUP) -> NodeBatch:
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
        missing = checked.missing()
        if missing:
            if not embed:
                raise ValidationError(f"node {checked.ids[missing[0]]!r} has no vector")
            embedded = await self._embed([checked.contents[i] for i in missing])
            dims = checked.dimensions or dims
            for i, vector in zip(missing, embedded):
                checked.vectors[i] = check_vector(vector, dims, f" (embedding of node {checked.ids[i]!r})")
                dims = len(checked.vectors[i])
        return checked.to_batch(dims)

def _each(pages: Iterator[list[VectorNode]], callback_fn: Callable[[VectorNode], Any] | None) -> Iterator[Any]:
    with contextlib.closing(pages):
        for page in pages:
            for node in page:
                yield callback_fn(node) if callback_fn else node


def _id_list(node_ids: str | Sequence[str]) -> list[str]:
    ids = [node_ids] if isinstance(node_ids, str) else list(node_ids)
    for node_id in ids:
        check_node_id(node_id)
    return ids
