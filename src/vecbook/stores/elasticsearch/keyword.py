"""Keyword search on Elasticsearch: its own full-text engine, a ``match`` query on ``content``.

``content`` is mapped as ``text`` (the standard analyzer: Unicode word
boundaries, lowercased) in every index vecbook creates, and ranked by ES's BM25
(k1=1.2, b=0.75). An index made elsewhere whose ``content`` is not searchable
(``"index": false``, or another type) cannot answer a keyword search: the error
says so and how to get a searchable copy (``copy_workspace`` into a new workspace
creates vecbook's mapping).
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import VecbookError
from ...filters import FilterNode
from .documents import MAX_WINDOW, SOURCE
from .filters import to_query

__all__ = ["match_bodies", "keyword_error", "cut_ties"]


def match_bodies(texts: list[str], size: int, filter: FilterNode | None) -> list[dict]:
    """One search body per text: BM25 on ``content``, the filter in filter context (it does not score)."""
    size = min(size, MAX_WINDOW)
    bodies = []
    for text in texts:
        query: dict[str, Any] = {"match": {"content": {"query": text}}}
        if filter is not None:
            query = {"bool": {"must": [query], "filter": [to_query(filter)]}}
        bodies.append({"query": query, "size": size, "_source": SOURCE, "track_total_hits": False})
    return bodies


def keyword_error(ws: str, error: Any) -> Exception | None:
    """A clear error for an index whose ``content`` cannot be searched, else None."""
    text = json.dumps(error, default=str) if not isinstance(error, str) else error
    if "content" in text and ("not indexed" in text or "does not support" in text or "can only use" in text):
        return VecbookError(
            f"workspace {ws!r} cannot be searched by keyword: its index maps 'content' as a field that is not "
            "searchable text (it was not created by vecbook, or by a version that did so); copy_workspace it into "
            "a new workspace to get vecbook's mapping, where 'content' is text"
        )
    return None


def cut_ties(hits: list[dict], limit: int, size: int) -> list[dict] | None:
    """The best ``limit`` of ``hits`` (a response to ``size``), equal scores ordered by id as on every
    other backend; None if the last kept score may tie with hits beyond ``size`` (ask for more)."""
    if len(hits) >= size > limit and hits[-1]["_score"] >= hits[limit - 1]["_score"] and size < MAX_WINDOW:
        return None
    return sorted(hits, key=lambda h: (-h["_score"], h["_id"]))[:limit]
