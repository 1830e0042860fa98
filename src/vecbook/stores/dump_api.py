"""Dumps: ``dump_workspace`` and ``load_workspace``, public methods of BaseVectorStore (a mixin of it).

The file format (JSON lines, an optional header) is ``vecbook.dumps``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

from .. import dumps
from .._aio import sync_twin, to_thread
from ..errors import DimensionMismatchError, ValidationError
from ..node import VectorNode
from .arguments import public
from .engine.batch import as_node_list, validate_workspace_id
from .writes import all_or_nothing

__all__ = ["DumpMethods"]


class DumpMethods:
    """``dump_workspace`` and ``load_workspace`` (``path`` defaults to :meth:`_default_dump_dir`)."""


    @public
    async def async_dump_workspace(
        self, workspace_id: str, path: str | Path = "", callback_fn: Callable | None = None, header: bool = True
    ) -> dict:
        """Write ``{path}/{workspace_id}.jsonl`` atomically, one node per line. Returns ``{"size": n, "path": ...}``.

        ``path`` defaults to the store's dump folder (see :meth:`_default_dump_dir`). The first
        line is a header naming the embedding model, the vector length, the distance and the
        vecbook version (``vecbook.dumps``), which ``load_workspace`` checks; ``header=False``
        writes nodes only, the guide's exact format (for readers that take every line as a node).
        """
        ws = await self._require(workspace_id)
        target = dumps.dump_path(self._dump_dir(path), ws)
        first_line = dumps.make_header(ws, await self._dimensions(ws), self.distance, self.embedding_model) if header else None
        with dumps.AtomicJsonlWriter(target) as writer:
            if first_line is not None:
                writer.write_header(first_line)
            async with contextlib.aclosing(self._matching_pages(ws, self.batch_size, None)) as pages:
                async for page in pages:
                    await to_thread(writer.write_nodes, page, callback_fn)
        return {"size": writer.count, "path": str(target)}

    @public
    async def async_load_workspace(
        self,
        workspace_id: str,
        path: str | Path = "",
        nodes: Sequence[VectorNode] | None = None,
        callback_fn: Callable | None = None,
        mode: str = "replace",
        check_header: bool = True,
    ) -> dict:
        """Load a dump and/or ``nodes`` into the workspace. Returns ``{"size": n}``.

        ``path`` is a dump file, or a folder holding ``{workspace_id}.jsonl`` or a single
        dump (so a dump of one workspace loads under another name); by default the
        store's dump folder. The file is read and checked completely, and missing
        vectors are embedded, before anything is written. ``mode="replace"`` (the
        default, as in flowllm) leaves the workspace holding exactly the loaded nodes;
        ``"merge"`` upserts them beside what is there. All or nothing.

        A dump whose header (see :meth:`dump_workspace`) names another embedding model or
        vector length than the store's model raises DumpMismatchError before anything is
        written, unless ``check_header=False``. Files without a header load as they are.
        """
        ws = validate_workspace_id(workspace_id)
        if mode not in ("replace", "merge"):
            raise ValidationError(f"mode must be 'replace' or 'merge', got {mode!r}")
        loaded = list(as_node_list(nodes)) if nodes is not None else []
        if path or nodes is None:
            source = dumps.find_dump(Path(path) if path else self._default_dump_dir(), ws, only_named=not path)
            header, read = await to_thread(dumps.read_dump, source, callback_fn)
            if header is not None and check_header:
                dumps.check_header(header, source, self.embedding_model)
            loaded.extend(read)
        loaded = list({node.unique_id: node for node in loaded}.values())  # last one wins, as in an upsert
        dims = await self._dimensions(ws) if await self._exists(ws) else None
        batch = await self._prepare(ws, loaded, dimensions=dims if mode == "merge" else None)
        if mode == "replace" and dims is not None and batch.dimensions not in (None, dims):
            raise DimensionMismatchError(dims, batch.dimensions or 0, f"workspace {ws!r}; delete it first to load vectors of another length")
        created = await self._create_missing(ws, batch.dimensions)
        async with all_or_nothing(self, ws, created=created) as writes:
            await writes.upsert(batch)
            if mode == "replace" and not created:
                keep = set(batch.ids)
                stale = [n.unique_id async for page in self._matching_pages(ws, self.batch_size, None) for n in page if n.unique_id not in keep]
                await writes.delete(stale)
        return {"size": len(batch)}

    def _dump_dir(self, path: str | Path) -> Path:
        return Path(path) if path else self._default_dump_dir()

    def _default_dump_dir(self) -> Path:
        """Where dumps go without a ``path``: the store's ``store_dir`` if it has one, else the current folder."""
        return Path(getattr(self, "store_dir", None) or ".")

    dump_workspace = sync_twin(async_dump_workspace)
    load_workspace = sync_twin(async_load_workspace)
