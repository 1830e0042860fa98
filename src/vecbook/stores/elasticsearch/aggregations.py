"""Distinct values of a metadata field by a ``terms`` aggregation over the typed filter terms.

Every value a filter can see is a term of ``filter_terms`` (see ``filters.py``):
``b[path]0|1``, ``n[path]`` + a number key, ``s[path]`` + the string. One terms
aggregation over the terms of one path, ordered by document count, then by term,
gives vecbook's order exactly: a document counts once per term, ``1`` and ``1.0``
share a key, booleans sort before numbers before strings (``b`` < ``n`` < ``s``),
number keys sort like the numbers and strings by code point. Booleans and strings
read back from their terms; numbers (an int or a float?) and strings cut to fit a
term are read from one stored node each, in one ``msearch``.
"""

from __future__ import annotations

import json
from typing import Any

from ...errors import VecbookError
from ...filters import FilterNode, Path, field_values
from ..introspection import ValueCount
from .filters import _HASH_BYTES, FIELD, MAX_TERM_BYTES, _prefix, _value_term, to_query

__all__ = ["MAX_AGG_VALUES", "distinct_values"]

MAX_AGG_VALUES = 10_000  # offset + limit up to this: one aggregation; beyond, the base class scans


def _literal(text: str) -> str:
    """``text`` as a Lucene regular expression matching exactly it."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "\\" + c for c in text)


def _include(path: Path) -> str:
    return "(b|n|s)" + _literal(json.dumps(list(path), ensure_ascii=False, separators=(",", ":"))) + ".*"


def _query(native: FilterNode | None, *more: dict) -> dict:
    clauses = ([to_query(native)] if native is not None else []) + list(more)
    return {"bool": {"filter": clauses}} if clauses else {"match_all": {}}


async def distinct_values(es: Any, index: str, native: FilterNode | None, path: Path, limit: int, offset: int) -> list[ValueCount]:
    body = {
        "query": _query(native),
        "size": 0,
        "track_total_hits": False,
        "aggs": {"v": {"terms": {"field": FIELD, "include": _include(path), "size": offset + limit, "order": [{"_count": "desc"}, {"_key": "asc"}]}}},
    }
    resp = await es.search(index=index, **body)
    buckets = resp["aggregations"]["v"]["buckets"][offset : offset + limit]
    values: list[Any] = [_read(path, b["key"]) for b in buckets]
    stored = [i for i, v in enumerate(values) if v is _STORED]
    if stored:
        searches = []
        for i in stored:
            searches += [{"index": index}, {"query": _query(native, {"term": {FIELD: buckets[i]["key"]}}), "size": 1, "_source": ["metadata"]}]
        responses = (await es.msearch(searches=searches))["responses"]
        for i, resp in zip(stored, responses):
            values[i] = _stored_value(path, buckets[i]["key"], resp)
    return [ValueCount(value, int(b["doc_count"])) for value, b in zip(values, buckets)]


_STORED = object()  # the value must be read from a stored node


def _read(path: Path, term: str) -> Any:
    kind = term[0]
    rest = term[len(_prefix(kind, path)) :]
    if kind == "b":
        return rest == "1"
    if kind == "s" and len(term.encode("utf-8", "surrogatepass")) < MAX_TERM_BYTES - _HASH_BYTES:
        return rest  # not cut
    return _STORED


def _stored_value(path: Path, term: str, resp: dict) -> Any:
    for hit in resp.get("hits", {}).get("hits", []):
        for value in field_values((hit.get("_source") or {}).get("metadata") or {}, path):
            if not isinstance(value, bool) and _value_term(path, value) == term:
                return value
    raise VecbookError(f"Elasticsearch counted the term {term[:80]!r} but returned no node holding it")
