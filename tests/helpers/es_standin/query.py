"""The query DSL subset the stand-in evaluates, with Elasticsearch's parsing errors.

Modelled: ``bool`` (must, filter, should, must_not, minimum_should_match),
``term``, ``terms``, ``range``, ``exists``, ``ids``, ``match_all``, ``match_none``,
in filter context (a query is a set of documents; see search.py for scores), and
``match`` on text fields (text.py), which also scores: a query with a ``scores``
attribute ranks by it; a bool sums the scores of its must and should clauses
(a clause without scores counts 1.0 where it matches) when one of them scores.
Semantics as documented by ES: a multi-valued field matches if any value
matches; keyword terms and ranges compare exact strings (ranges by UTF-8
bytes); numeric fields compare numbers; an unmapped field matches nothing; a
bool with only ``must_not`` matches every other document; ``should`` alone
needs one match unless ``minimum_should_match`` says otherwise.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from . import text
from .errors import EsError, check_keys, parsing, unsupported
from .indices import Snapshot
from .mapping import INTEGERS, Field, Mapping

Query = Callable[[Snapshot], np.ndarray]
MAX_TERMS = 65536
KNOWN_UNMODELLED = {
    "match_phrase", "multi_match", "query_string", "simple_query_string", "prefix", "wildcard", "regexp",
    "fuzzy", "nested", "knn", "script", "script_score", "function_score", "constant_score", "dis_max", "boosting",
    "terms_set", "geo_distance", "more_like_this", "rank_feature", "semantic", "sparse_vector", "combined_fields",
}


def parse_query(spec: Any, mapping: Mapping) -> Query:
    if not isinstance(spec, dict) or not spec:
        raise parsing("query malformed, must start with start_object")
    if len(spec) != 1:
        first, second = list(spec)[:2]
        raise parsing(f"[{first}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
    ((kind, body),) = spec.items()
    parser = PARSERS.get(kind)
    if parser is None:
        if kind in KNOWN_UNMODELLED:
            raise unsupported(f"the [{kind}] query")
        raise parsing(f"unknown query [{kind}]")
    return parser(body, mapping)


def parse_clauses(value: Any, mapping: Mapping, where: str) -> list[Query]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in items):
        raise parsing(f"[bool] query does not support [{where}] with a non-object clause")
    return [parse_query(item, mapping) for item in items]


def _bool(body: Any, mapping: Mapping) -> Query:
    check_keys(body, {"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name", "adjust_pure_negative"}, "bool", parsing)
    scoring = parse_clauses(body.get("must", []), mapping, "must")
    must = scoring + parse_clauses(body.get("filter", []), mapping, "filter")
    should = parse_clauses(body.get("should", []), mapping, "should")
    must_not = parse_clauses(body.get("must_not", []), mapping, "must_not")
    msm_raw = body.get("minimum_should_match")
    if msm_raw is None:
        msm = 1 if should and not must else 0
    elif isinstance(msm_raw, int) and not isinstance(msm_raw, bool) or isinstance(msm_raw, str) and msm_raw.lstrip("-").isdigit():
        msm = int(msm_raw)
        msm = len(should) + msm if msm < 0 else msm
    else:
        raise unsupported(f"minimum_should_match [{msm_raw}]")

    def run(snap: Snapshot) -> np.ndarray:
        mask = np.ones(len(snap), dtype=bool)
        for query in must:
            mask &= query(snap)
        for query in must_not:
            mask &= ~query(snap)
        if msm > 0:
            hits = np.zeros(len(snap), dtype=np.int64)
            for query in should:
                hits += query(snap)
            mask &= hits >= msm
        return mask

    if any(hasattr(q, "scores") for q in scoring + should):

        def scores(snap: Snapshot) -> np.ndarray:
            total = np.zeros(len(snap), dtype=np.float32)
            for query in scoring + should:
                total += query.scores(snap) if hasattr(query, "scores") else query(snap).astype(np.float32)
            return np.where(run(snap), total, np.float32(0))

        run.scores = scores
    return run


def _single_field(body: Any, kind: str, extra: set[str]) -> tuple[str, Any, dict[str, Any]]:
    if not isinstance(body, dict):
        raise parsing(f"[{kind}] query malformed, no start_object after query name")
    fields = [k for k in body if k not in extra]
    if len(fields) != 1:
        if not fields:
            raise parsing(f"[{kind}] query doesn't have a field")
        raise parsing(f"[{kind}] query doesn't support multiple fields, found [{fields[0]}] and [{fields[1]}]")
    return fields[0], body[fields[0]], {k: v for k, v in body.items() if k in extra}


def _leaf(mapping: Mapping, path: str, query: str) -> Field | None:
    spec = mapping.fields.get(path)
    if spec is None:
        return None
    if spec.type == "text":
        raise unsupported(f"[{query}] queries on text fields (analysis)")
    if spec.type in ("binary", "dense_vector"):
        raise EsError(400, "query_shard_exception", f"failed to create query: Field [{path}] of type [{spec.type}] does not support {query} queries")
    if not spec.indexed:
        raise EsError(400, "query_shard_exception", f"failed to create query: Cannot search on field [{path}] since it is not indexed.")
    return spec


def _term_value(spec: Field, value: Any) -> Any:
    if value is None or isinstance(value, (dict, list)):
        raise parsing(f"[term] query does not support {'null' if value is None else 'array or object'} values")
    if spec.type == "keyword":
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value) if isinstance(value, (int, float)) else value
    if spec.type == "boolean":
        if value in (True, "true"):
            return True
        if value in (False, "false"):
            return False
        raise EsError(400, "query_shard_exception", f"failed to create query: Can't parse boolean value [{value}], expected [true] or [false]")
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise EsError(400, "query_shard_exception", f'failed to create query: For input string: "{value}"') from None
    if spec.type in INTEGERS and number != int(number):
        return None  # a decimal never equals a whole-number field
    return float(np.float32(number)) if spec.type == "float" else number


def _postings(snap: Snapshot, path: str, values: list[Any]) -> np.ndarray:
    keys, postings, _ = snap.terms(path)
    mask = np.zeros(len(snap), dtype=bool)
    for value in values:
        i = bisect.bisect_left(keys, value)
        if i < len(keys) and keys[i] == value and type(keys[i]) is type(value):
            mask[postings[i]] = True
    return mask


def _term(body: Any, mapping: Mapping) -> Query:
    path, raw, _ = _single_field(body, "term", {"boost", "_name"})
    if isinstance(raw, dict):
        check_keys(raw, {"value", "boost", "case_insensitive", "_name"}, "term", parsing)
        if raw.get("case_insensitive"):
            raise unsupported("case_insensitive term queries")
        raw = raw.get("value")
    spec = _leaf(mapping, path, "term")
    if spec is None:
        return _none
    value = _term_value(spec, raw)
    return _none if value is None else (lambda snap: _postings(snap, path, [value]))


def _terms(body: Any, mapping: Mapping) -> Query:
    path, raw, _ = _single_field(body, "terms", {"boost", "_name"})
    if not isinstance(raw, list):
        if isinstance(raw, dict):
            raise unsupported("terms lookup")
        raise parsing(f"[terms] query does not support [{path}]")
    if len(raw) > MAX_TERMS:
        raise EsError(400, "illegal_argument_exception", f"The number of terms [{len(raw)}] used in the Terms Query request has exceeded the allowed maximum of [{MAX_TERMS}].")
    spec = _leaf(mapping, path, "terms")
    if spec is None:
        return _none
    values = [v for v in (_term_value(spec, item) for item in raw) if v is not None]
    return lambda snap: _postings(snap, path, values)


def _range(body: Any, mapping: Mapping) -> Query:
    path, raw, _ = _single_field(body, "range", {"boost", "_name"})
    check_keys(raw, {"gt", "gte", "lt", "lte", "from", "to", "include_lower", "include_upper", "format", "boost", "relation", "time_zone", "_name"}, "range", parsing)
    for key in ("from", "to", "include_lower", "include_upper", "format", "relation", "time_zone"):
        if key in raw:
            raise unsupported(f"range parameter [{key}]")
    lower = upper = None
    for op, bound in raw.items():  # like ES, a later gt/gte replaces an earlier one
        if op in ("gt", "gte"):
            lower = (bound, op == "gte")
        elif op in ("lt", "lte"):
            upper = (bound, op == "lte")
    spec = _leaf(mapping, path, "range")
    if spec is None:
        return _none
    if spec.type == "boolean":
        raise unsupported("range queries on boolean fields")
    convert = (lambda b: _term_value(spec, b)) if spec.type == "keyword" else (lambda b: _range_number(spec, b))
    lo = None if lower is None or lower[0] is None else (convert(lower[0]), lower[1])
    hi = None if upper is None or upper[0] is None else (convert(upper[0]), upper[1])

    def run(snap: Snapshot) -> np.ndarray:
        keys, postings, _ = snap.terms(path)
        start = 0 if lo is None else (bisect.bisect_left if lo[1] else bisect.bisect_right)(keys, lo[0])
        stop = len(keys) if hi is None else (bisect.bisect_right if hi[1] else bisect.bisect_left)(keys, hi[0])
        mask = np.zeros(len(snap), dtype=bool)
        for i in range(start, stop):
            mask[postings[i]] = True
        return mask

    return run


def _range_number(spec: Field, bound: Any) -> float:
    try:
        if isinstance(bound, bool):
            raise ValueError
        number = float(bound)
    except (TypeError, ValueError):
        raise EsError(400, "query_shard_exception", f'failed to create query: For input string: "{bound}"') from None
    return float(np.float32(number)) if spec.type == "float" else number


def _exists(body: Any, mapping: Mapping) -> Query:
    check_keys(body, {"field", "boost", "_name"}, "exists", parsing)
    path = body.get("field")
    if not isinstance(path, str) or not path:
        raise parsing("[exists] must be provided with a [field]")
    if "*" in path:
        raise unsupported("wildcards in exists queries")
    leaves = [f for p, f in mapping.fields.items() if p == path or p.startswith(path + ".")]

    def run(snap: Snapshot) -> np.ndarray:
        mask = np.zeros(len(snap), dtype=bool)
        for spec in leaves:
            if spec.type == "dense_vector":
                mask |= np.asarray([spec.path in d.vectors for d in snap.docs], dtype=bool)
            else:
                mask |= snap.terms(spec.path)[2]
        return mask

    return run


def _ids(body: Any, mapping: Mapping) -> Query:
    check_keys(body, {"values", "boost", "_name"}, "ids", parsing)
    wanted = set(body.get("values", []))
    return lambda snap: np.asarray([d.id in wanted for d in snap.docs], dtype=bool)


def _match_all(body: Any, mapping: Mapping) -> Query:
    check_keys(body, {"boost", "_name"}, "match_all", parsing)
    return lambda snap: np.ones(len(snap), dtype=bool)


def _match_none(body: Any, mapping: Mapping) -> Query:
    check_keys(body, {"boost", "_name"}, "match_none", parsing)
    return _none


def _none(snap: Snapshot) -> np.ndarray:
    return np.zeros(len(snap), dtype=bool)


PARSERS: dict[str, Callable[[Any, Mapping], Query]] = {
    "bool": _bool,
    "term": _term,
    "terms": _terms,
    "range": _range,
    "exists": _exists,
    "ids": _ids,
    "match_all": _match_all,
    "match_none": _match_none,
    "match": lambda body, mapping: text.match(body, mapping),
}
