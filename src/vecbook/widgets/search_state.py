"""Plain-Python state of the search panel: query, top_k, filter, results, errors."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from ..errors import FilterError
from ..node import VectorNode
from . import _table
from ._collect import collect
from ._events import Observable, describe_error
from .filter_builder import FilterBuilder, format_filter
from .filter_text import describe_unknown, parse_filter_text, unknown_fields
from .introspect import WorkspaceSchema, introspect_workspace

__all__ = ["SearchState"]


class SearchState(Observable):
    """Query, ``top_k`` and filter over one workspace; results with scores; errors kept in ``error``.

    The filter comes from ``filter_text`` when it is not empty (typed by hand),
    else from ``builder``. A hand-typed filter naming a field the workspace does
    not have is a FilterError with a "did you mean" (the schema covers every node). With an
    empty query, ``run`` lists the first ``top_k`` nodes that match the filter (no scores).

    With ``defer_schema=True`` the schema is not read at construction: until
    :meth:`load_schema_later` brings it (``schema_loaded`` False meanwhile) the
    builder offers no fields and a typed filter's fields are not checked.

    Events: ``"results"`` (list of nodes) after every run, ``[]`` after an error or
    ``clear()``; ``"focus"`` (node id) when the user clicks a result row;
    ``"schema"`` when a schema read in the background arrives.
    """

    def __init__(self, store, workspace_id: str, top_k: int = 10, schema: WorkspaceSchema | None = None,
                 defer_schema: bool = False):
        self.store = store
        self.workspace_id = workspace_id
        self.query = ""
        self.top_k = int(top_k)
        self.mode = "vector"  # "vector", "keyword" (BM25) or "hybrid": the store's search modes
        self.filter_text = ""
        self.results: list[VectorNode] = []
        self.query_vector: np.ndarray | None = None  # the embedded query of the last vector or hybrid search
        self.results_filter: dict | None = None  # the filter the results were fetched with
        self.has_run = False
        self.error: str | None = None
        self.status = ""
        self.elapsed: float | None = None
        self.sort_by: str | None = None
        self.ascending = True
        self.focused: str | None = None
        self.schema = schema if schema is not None else WorkspaceSchema(workspace_id)
        self.builder = FilterBuilder(self.schema.fields)
        self.schema_loaded = schema is not None
        self.schema_error: Exception | None = None  # why the last schema read failed (the store's typed error)
        self._schema_thread: threading.Thread | None = None
        self.schema_elapsed: float | None = None  # seconds the background read took
        if schema is None and not defer_schema:
            self.reload_schema()

    def reload_schema(self) -> None:
        """Introspect the workspace's metadata again (through the store's introspection API)."""
        try:
            self.schema = introspect_workspace(self.store, self.workspace_id)
            self.builder.fields = self.schema.fields
            self.schema_loaded, self.schema_error = True, None
        except Exception as exc:  # kept and shown: the filter section says why it offers no fields
            self.schema_error, self.error = exc, describe_error(exc)

    def load_schema_later(self) -> None:
        """Read the schema in a thread (once); emit ``"schema"`` when it arrives (or failed: see ``error``)."""
        if self._schema_thread is not None or self.schema_loaded:
            return

        def run() -> None:
            start = time.perf_counter()
            self.reload_schema()
            self.schema_elapsed = time.perf_counter() - start
            self._emit("schema")

        self._schema_thread = threading.Thread(target=run, name="vecbook-schema", daemon=True)
        self._schema_thread.start()

    def wait_schema(self, timeout: float | None = None) -> bool:
        """Wait for a schema being read in the background; whether it has arrived."""
        if self._schema_thread is not None:
            self._schema_thread.join(timeout)
        return self.schema_loaded

    def schema_note(self) -> str:
        """What the filter section says of the schema."""
        if self.schema_error is not None:
            return f"the workspace's metadata fields could not be read ({describe_error(self.schema_error)}): no fields to offer"
        return self.schema.describe() if self.schema_loaded else "reading the workspace's metadata fields…"

    def current_filter(self) -> dict | None:
        """The filter the next search uses. Raises FilterError if it is malformed or names an unknown field."""
        if not self.filter_text.strip():
            return self.builder.to_filter()
        filter_dict = parse_filter_text(self.filter_text)
        unknown = unknown_fields(filter_dict, self.schema)
        if unknown:
            raise FilterError(describe_unknown(unknown, self.schema))
        return filter_dict

    @property
    def filter_code(self) -> str:
        """The current filter as Python to copy into code, or the reason it is invalid."""
        try:
            return format_filter(self.current_filter())
        except FilterError as exc:
            return f"# invalid filter: {exc}"

    @property
    def stale(self) -> bool:
        """Whether the results shown were fetched with another filter than the current one (or failed)."""
        if not self.has_run:
            return False
        try:
            return self.error is not None or self.current_filter() != self.results_filter
        except FilterError:
            return True

    def run(self) -> list[VectorNode]:
        """Search now; on any error keep the message in ``error`` and return ``[]``."""
        self.error, self.has_run, self.focused, self.query_vector = None, True, None, None
        start = time.perf_counter()
        try:
            filter_dict = self.current_filter()
            self.results_filter = filter_dict
            if self.top_k < 1:
                raise FilterError("top_k must be at least 1")
            if self.query.strip() and self.mode == "vector" and self.store.embedding_model is not None:
                vector = self._embedded_query()
                self.results = self.store.search_by_vector(vector, self.workspace_id, top_k=self.top_k, filter_dict=filter_dict)
                self.query_vector = vector
                self.status = f"{len(self.results)} result(s), {self.mode} search"
            elif self.query.strip():
                self.results = self.store.search(self.query, self.workspace_id, top_k=self.top_k, filter_dict=filter_dict, mode=self.mode)
                self.query_vector = self._cached_query_vector()
                self.status = f"{len(self.results)} result(s), {self.mode} search"
            else:
                self.results = collect(self.store, self.workspace_id, limit=self.top_k, filter_dict=filter_dict)
                self.status = f"{len(self.results)} node(s) matching the filter (no query, so no scores)"
        except Exception as exc:  # a bad filter or a backend that is down: show it, keep working
            self.results = []
            self.error = describe_error(exc)
            self.status = ""
        self.elapsed = time.perf_counter() - start
        if not self.error:
            self.status += f" in {self.elapsed * 1000:.0f} ms"
        self._emit("results", self.results)
        return self.results

    def _embedded_query(self) -> np.ndarray:
        """The query embedded once by the store's model (the vector search and the map's query marker share it)."""
        return np.asarray(self.store.embedding_model.get_embeddings([self.query])[0])

    def _cached_query_vector(self) -> np.ndarray | None:
        """The query's vector after a hybrid search, if the model's cache kept it: never embedded a second time
        (a model with ``cache_size=0`` leaves the map without a query marker); None in keyword mode."""
        cache = getattr(self.store.embedding_model, "cache", None)
        if self.mode == "keyword" or cache is None:
            return None
        return cache.get(cache.key(self.query))

    def filter_changed(self) -> list[VectorNode]:
        """The filter was edited: once a search has run, run it again with the new filter, so the
        results shown always match the filter shown (an invalid filter clears them and says why)."""
        if not self.stale:
            return self.results
        return self.run()

    def clear(self) -> None:
        """Clear the search: query, results, status and errors (the filter stays). Emits ``"results"`` with ``[]``."""
        self.query = ""
        self.results, self.results_filter, self.has_run, self.query_vector = [], None, False, None
        self.error = self.focused = self.elapsed = None
        self.status = ""
        self._emit("results", self.results)

    def sort(self, column: str | None, ascending: bool | None = None) -> None:
        """Order the results by ``column`` (the same column again flips it; ``None`` or ``"#"``: by rank).

        A new column starts descending for ``score``, ascending otherwise."""
        if ascending is None:
            ascending = not self.ascending if column == self.sort_by and column else column != "score"
        self.sort_by, self.ascending = column or None, bool(ascending)
        self._emit("sorted")

    def focus(self, node_id: str) -> None:
        """The user picked a result (clicked its row): remember it and emit ``"focus"`` with its id."""
        self.focused = node_id
        self._emit("focus", node_id)

    def fail(self, message: str) -> None:
        """Show ``message`` as the error and no results (a filter the view could not read)."""
        self.results, self.error, self.status, self.has_run = [], message, "", True
        self._emit("results", self.results)

    def result_records(self, sort: bool = True) -> list[dict[str, Any]]:
        """The results as rows (``#`` = rank), in the order ``sort`` chose (``sort=False``: by rank)."""
        rows = []
        for rank, node in enumerate(self.results, 1):
            row = {"#": rank}
            row.update(_table.node_record(node))
            rows.append(row)
        return _table.sort_records(rows, self.sort_by, self.ascending) if sort else rows

    def results_frame(self):
        """The last results as a DataFrame, best first: ``#`` (1 = best), id, score, content, metadata columns."""
        return _table.frame(self.result_records(sort=False), columns=("#", "id", "score", "content"))
