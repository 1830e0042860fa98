"""Search aggregations: the ``terms`` aggregation on a keyword field, as Elasticsearch documents it.

Modelled: ``field`` (a keyword field), ``size`` (default 10), ``include`` as a regular
expression string (Lucene ``RegExp`` syntax, matched against the whole term; the
stand-in reads escapes ``\\c``, ``.``, ``*``, ``+``, ``?``, ``|`` and groups ``( )``,
and refuses the other operators), ``order`` by ``_count`` and/or ``_key`` (default:
``_count`` descending, then ``_key`` ascending). A bucket counts the matching
documents holding the term (a term repeated in one document counts once). One shard:
counts are exact, ``doc_count_error_upper_bound`` is 0. Anything else (other
aggregation types, sub-aggregations, ``exclude``, ``min_doc_count``...) is refused with
``standin_unsupported_exception``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .errors import bad_request, check_keys, parsing, unsupported
from .indices import Index, Snapshot

__all__ = ["check_aggs", "run_aggs"]

MAX_BUCKETS = 65536  # search.max_buckets
TERMS_KEYS = {"field", "size", "include", "order", "shard_size"}


def check_aggs(spec: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(spec, dict):
        raise parsing("Expected [START_OBJECT] under [aggregations]")
    out = {}
    for name, body in spec.items():
        if not isinstance(body, dict) or len(body) != 1:
            raise parsing(f"Expected exactly one aggregation type in [{name}]")
        ((kind, params),) = body.items()
        if kind == "aggs" or kind == "aggregations":
            raise unsupported("sub-aggregations")
        if kind != "terms":
            raise unsupported(f"the [{kind}] aggregation")
        check_keys(params, TERMS_KEYS, "terms", parsing)
        if "field" not in params:
            raise bad_request("Required one of fields [field, script], but none were specified.")
        size = params.get("size", 10)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise bad_request(f"[size] must be greater than 0. Found [{size}] in [{name}]")
        if size > MAX_BUCKETS:
            raise bad_request(f"Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}]", type="too_many_buckets_exception")
        include = params.get("include")
        if include is not None and not isinstance(include, str):
            raise unsupported("terms [include] other than a regular expression string")
        out[name] = {"field": params["field"], "size": size, "include": _regex(include) if include is not None else None, "order": _order(params.get("order"))}
    return out


def _order(spec: Any) -> list[tuple[str, bool]]:
    if spec is None:
        return [("_count", True), ("_key", False)]
    items = spec if isinstance(spec, list) else [spec]
    order = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            raise parsing("[order] must be an object with one key, or a list of them")
        ((key, direction),) = item.items()
        if key not in ("_count", "_key"):
            raise unsupported(f"terms order by [{key}]")
        if direction not in ("asc", "desc"):
            raise parsing(f"Unknown terms order direction [{direction}]")
        order.append((key, direction == "desc"))
    if not any(key == "_key" for key, _ in order):
        order.append(("_key", False))  # ES breaks count ties by key, ascending
    return order


def _regex(text: str) -> re.Pattern:
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise bad_request(f"expected character after escape at end of regexp [{text}]")
            out.append(re.escape(escaped))
        elif char in ".*+?|()":
            out.append(char)
        elif char.isalnum() or char == "_":
            out.append(char)
        else:
            raise unsupported(f"the regexp operator or unescaped character {char!r} in terms [include]")
    return re.compile("".join(out), re.DOTALL)


def run_aggs(index: Index, snap: Snapshot, mask: np.ndarray, aggs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: _terms(index, snap, mask, spec) for name, spec in aggs.items()}


def _terms(index: Index, snap: Snapshot, mask: np.ndarray, spec: dict[str, Any]) -> dict[str, Any]:
    field = index.mapping.fields.get(spec["field"])
    if field is None:
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": []}
    if field.type != "keyword":
        raise unsupported(f"terms aggregations on [{field.type}] fields")
    keys, postings, _ = snap.terms(spec["field"])
    buckets = []
    for key, docs in zip(keys, postings):
        if spec["include"] is not None and not spec["include"].fullmatch(key):
            continue
        count = int(mask[docs].sum())
        if count:
            buckets.append((key, count))
    for key_name, descending in reversed(spec["order"]):  # stable sorts, last key first
        buckets.sort(key=(lambda b: b[1]) if key_name == "_count" else (lambda b: b[0]), reverse=descending)
    shown = buckets[: spec["size"]]
    return {
        "doc_count_error_upper_bound": 0,
        "sum_other_doc_count": sum(count for _, count in buckets[spec["size"] :]),
        "buckets": [{"key": key, "doc_count": count} for key, count in shown],
    }
