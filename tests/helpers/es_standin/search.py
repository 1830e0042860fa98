"""The search API: body checks, approximate kNN computed exactly, sorting, search_after, _source filtering.

kNN follows the documented contract: the ``k`` best of the documents that match
``filter`` and have a vector, scored by the field's similarity (l2_norm
1/(1+d²), cosine (1+cos)/2, dot_product (1+dot)/2, max_inner_product dot+1 or
1/(1-dot)), computed in float32; the candidates are exact, so ``num_candidates``
is only validated. ``match`` queries score by BM25 (text.py) and a bool sums its
scoring clauses; other non-kNN hits have constant scores (1.0, or 0.0 for a bool
of filters only).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace as _replace
from typing import Any

import numpy as np

from .aggs import check_aggs, run_aggs
from .errors import EsError, bad_request, check_keys, parsing, unsupported, x_content
from .indices import Index, Snapshot
from .mapping import check_similarity
from .query import parse_query

MAX_K = 10_000
BODY_KEYS = {"query", "knn", "aggs", "aggregations", "size", "from", "sort", "search_after", "pit", "_source", "track_total_hits", "timeout", "version", "seq_no_primary_term"}
KNOWN_UNMODELLED = {
    "highlight", "post_filter", "rescore", "collapse", "suggest", "profile", "script_fields",
    "docvalue_fields", "fields", "stored_fields", "runtime_mappings", "terminate_after", "indices_boost", "rank",
    "retriever", "slice", "stats", "ext", "track_scores", "min_score", "explain", "sub_searches",
}
KNN_KEYS = {"field", "query_vector", "k", "num_candidates", "filter", "boost", "_name", "similarity", "rescore_vector", "inner_hits", "query_vector_builder", "visit_percentage"}


@dataclass
class Request:
    """A checked search body."""

    query: Any
    knn: dict[str, Any] | None
    size: int
    from_: int
    sort: list[tuple[str, bool]] | None  # (field, descending)
    search_after: list[Any] | None
    includes: list[str] | None
    excludes: list[str]
    exclude_vectors: bool | None
    track_total_hits: Any
    pit: dict[str, Any] | None
    version: bool
    seq_no: bool
    aggs: dict[str, Any] | None = None


def check_body(body: Any, params: dict[str, str]) -> Request:
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise parsing("request body must be an object")
    for key in body:
        if key in KNOWN_UNMODELLED:
            raise unsupported(f"search option [{key}]")
        if key not in BODY_KEYS:
            raise parsing(f"Unknown key for a {_token(body[key])} in [{key}].")
    size = _int(body.get("size", params.get("size", 10)), "size")
    from_ = _int(body.get("from", params.get("from", 0)), "from")
    if size < 0:
        raise bad_request(f"[size] parameter cannot be negative, found [{size}]")
    sort = _sort(body.get("sort")) if "sort" in body else None
    search_after = body.get("search_after")
    if search_after is not None:
        if not isinstance(search_after, list):
            raise parsing("[search_after] must be an array")
        if sort is None:
            raise bad_request("Sort must contain at least one field.", type="action_request_validation_exception")
        if len(search_after) != len(sort):
            raise bad_request(f"search_after has {len(search_after)} value(s) but sort has {len(sort)}.")
        if from_ not in (0, -1):
            raise bad_request("[from] parameter must be set to 0 when [search_after] is used.", type="action_request_validation_exception")
    includes, excludes, exclude_vectors = _source_filter(body.get("_source", True), params)
    pit = body.get("pit")
    if pit is not None:
        check_keys(pit, {"id", "keep_alive"}, "pit")
        if not isinstance(pit.get("id"), str):
            raise x_content("[pit] failed to parse field [id]")
    knn = body.get("knn")
    if isinstance(knn, list):
        if len(knn) != 1:
            raise unsupported("several knn searches in one request")
        knn = knn[0]
    if knn is not None:
        check_keys(knn, KNN_KEYS, "knn")
        for key in ("inner_hits", "query_vector_builder", "similarity", "visit_percentage"):
            if key in knn:
                raise unsupported(f"knn option [{key}]")
        if "query" in body:
            raise unsupported("knn combined with a query (hybrid search)")
    if "aggs" in body and "aggregations" in body:
        raise parsing("Found two aggregation type definitions")
    aggs = body.get("aggs", body.get("aggregations"))
    if aggs is not None:
        if knn is not None:
            raise unsupported("aggregations over a knn search")
        aggs = check_aggs(aggs)
    return Request(
        query=body.get("query"),
        knn=knn,
        size=size,
        from_=max(from_, 0),
        sort=sort,
        search_after=search_after,
        includes=includes,
        excludes=excludes,
        exclude_vectors=exclude_vectors,
        track_total_hits=body.get("track_total_hits", params.get("track_total_hits", 10_000)),
        pit=pit,
        version=bool(body.get("version")),
        seq_no=bool(body.get("seq_no_primary_term")),
        aggs=aggs,
    )


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    return "VALUE_NUMBER"


def _int(value: Any, name: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise parsing(f"[{name}] failed to parse field value [{value}] as an integer") from None


def _sort(spec: Any) -> list[tuple[str, bool]]:
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for item in items:
        if isinstance(item, str):
            name, order = item, None
        elif isinstance(item, dict) and len(item) == 1:
            ((name, options),) = item.items()
            if isinstance(options, str):
                order = options
            elif isinstance(options, dict):
                check_keys(options, {"order"}, name, parsing)
                order = options.get("order")
            else:
                raise parsing(f"malformed sort format for [{name}]")
        else:
            raise parsing("malformed sort format, expected a field name or an object with one key")
        if name not in ("_shard_doc", "_doc", "_score"):
            raise unsupported(f"sorting on [{name}]")
        if order not in (None, "asc", "desc"):
            raise bad_request(f"Unknown SortOrder [{order}]")
        descending = order == "desc" if order else name == "_score"
        out.append((name, descending))
    return out


def _source_filter(spec: Any, params: dict[str, str]) -> tuple[list[str] | None, list[str], bool | None]:
    includes: list[str] | None = None
    excludes: list[str] = []
    exclude_vectors = None
    if "_source" in params and spec is True:
        value = params["_source"]
        spec = value.lower() == "true" if value.lower() in ("true", "false") else value.split(",")
    if spec is False:
        return [], [], None
    if isinstance(spec, str):
        includes = [spec]
    elif isinstance(spec, list):
        includes = [str(s) for s in spec]
    elif isinstance(spec, dict):
        check_keys(spec, {"includes", "include", "excludes", "exclude", "exclude_vectors"}, "_source", parsing)
        inc = spec.get("includes", spec.get("include"))
        exc = spec.get("excludes", spec.get("exclude", []))
        includes = None if inc is None else ([inc] if isinstance(inc, str) else list(inc))
        excludes = [exc] if isinstance(exc, str) else list(exc)
        exclude_vectors = spec.get("exclude_vectors")
    elif spec is not True:
        raise parsing(f"[_source] expected a boolean, string, array or object, got {spec!r}")
    if "_source_includes" in params:
        includes = params["_source_includes"].split(",")
    if "_source_excludes" in params:
        excludes = params["_source_excludes"].split(",")
    return includes, excludes, exclude_vectors


def filter_source(source: dict[str, Any], includes: list[str] | None, excludes: list[str], hidden: set[str]) -> dict[str, Any]:
    """``_source`` filtering on dotted paths with wildcards; ``hidden`` fields (vectors) are dropped."""

    def keep(obj: dict[str, Any], prefix: str, included: bool) -> dict[str, Any]:
        out = {}
        for key, value in obj.items():
            path = prefix + key
            if path in hidden or any(fnmatch.fnmatchcase(path, p) for p in excludes):
                continue
            inside = included or includes is None or any(fnmatch.fnmatchcase(path, p) for p in includes)
            if isinstance(value, dict):
                partial = includes is not None and any(p.startswith(path + ".") or p.startswith("*") for p in includes)
                if inside or partial:
                    child = keep(value, path + ".", inside)
                    if child or inside:
                        out[key] = child
            elif inside:
                out[key] = value
        return out

    return keep(source, "", False)


# ---- execution ------------------------------------------------------------------------------------


def run_search(index: Index, snap: Snapshot, req: Request, pit_id: str | None) -> dict[str, Any]:
    if req.from_ + req.size > index.max_result_window and req.search_after is None:
        raise bad_request(
            f"Result window is too large, from + size must be less than or equal to: [{index.max_result_window}] but was "
            f"[{req.from_ + req.size}]. See the scroll api for a more efficient way to request large data sets.",
        )
    if req.sort and any(name == "_shard_doc" for name, _ in req.sort) and pit_id is None:
        raise bad_request("[_shard_doc] sort field cannot be used without [point in time]", type="action_request_validation_exception")
    aggregations = None
    if req.knn is not None:
        positions, scores = _knn(index, snap, req)
    else:
        query = parse_query(req.query, index.mapping) if req.query is not None else None
        mask = query(snap) if query is not None else np.ones(len(snap), dtype=bool)
        positions = np.flatnonzero(mask)
        aggregations = run_aggs(index, snap, mask, req.aggs) if req.aggs else None
        if hasattr(query, "scores"):  # relevance (match queries, text.py)
            scores = query.scores(snap)[positions]
        else:
            constant = 0.0 if _filters_only(req.query) else 1.0
            scores = np.full(len(positions), constant, dtype=np.float32)
    total = len(positions)
    if req.sort and len(req.sort) == 1 and req.sort[0] in (("_shard_doc", False), ("_doc", False)) and req.knn is None:
        if req.search_after is not None:  # positions are ascending already: a binary search will do
            start = int(np.searchsorted(positions, req.search_after[0], side="right"))
            positions, scores = positions[start:], scores[start:]
        positions, scores = positions[req.from_ : req.from_ + req.size], scores[req.from_ : req.from_ + req.size]
        req = _replace(req, from_=0, search_after=None)
    keyed = list(zip(positions.tolist(), scores.tolist()))
    if req.sort:
        keyed.sort(key=lambda ps: (*_sort_values(ps, req.sort), ps[0]))
        if req.search_after is not None:  # strictly after, on the sort values alone (as ES)
            after = tuple(-v if desc else v for v, (_, desc) in zip(req.search_after, req.sort))
            keyed = [ps for ps in keyed if _sort_values(ps, req.sort) > after]
    else:
        keyed.sort(key=lambda ps: (-ps[1], ps[0]))
    page = keyed[req.from_ : req.from_ + req.size]
    hidden = {p for p, f in index.mapping.fields.items() if f.type == "dense_vector"}
    if req.exclude_vectors is False or not index.exclude_source_vectors:
        hidden = set()
    hits = []
    for pos, score in page:
        doc = snap.docs[pos]
        hit: dict[str, Any] = {"_index": index.name, "_id": doc.id, "_score": None if req.sort else score}
        if req.version:
            hit["_version"] = doc.version
        if req.seq_no:
            hit.update(_seq_no=doc.seq_no, _primary_term=1)
        if req.includes != [] or req.excludes:
            hit["_source"] = filter_source(doc.source, req.includes, req.excludes, hidden)
        if req.sort:
            hit["sort"] = [_sort_value(pos, score, name) for name, _ in req.sort]
        hits.append(hit)
    out: dict[str, Any] = {"took": 1, "timed_out": False}
    if pit_id is not None:
        out["pit_id"] = pit_id
    out["_shards"] = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
    hits_obj: dict[str, Any] = {}
    if req.track_total_hits is not False:
        limit = total if req.track_total_hits is True else int(req.track_total_hits)
        hits_obj["total"] = {"value": min(total, limit), "relation": "eq" if total <= limit else "gte"}
    hits_obj["max_score"] = None if req.sort or not page else max(s for _, s in page)
    hits_obj["hits"] = hits
    out["hits"] = hits_obj
    if aggregations is not None:
        out["aggregations"] = aggregations
    return out


def _filters_only(query: Any) -> bool:
    if not isinstance(query, dict) or "bool" not in query:
        return False
    body = query["bool"]
    return not body.get("must") and not body.get("should")


def _sort_value(pos: int, score: float, name: str) -> Any:
    return score if name == "_score" else pos  # one shard: _shard_doc and _doc are the doc position


def _sort_values(ps: tuple[int, float], sort: list[tuple[str, bool]]) -> tuple:
    pos, score = ps
    values = []
    for name, descending in sort:
        value = _sort_value(pos, score, name)
        values.append(-value if descending else value)
    return tuple(values)


def _knn(index: Index, snap: Snapshot, req: Request) -> tuple[np.ndarray, np.ndarray]:
    knn = req.knn
    assert knn is not None
    name = knn.get("field")
    if not isinstance(name, str):
        raise x_content("[knn] failed to parse: required field [field] is missing")
    if "query_vector" not in knn:
        raise bad_request("either [query_vector] or [query_vector_builder] must be provided")
    k = _int(knn.get("k", req.size), "k")
    num_candidates = _int(knn.get("num_candidates", min(max(int(k * 1.5), k), MAX_K)), "num_candidates")
    if k < 1:
        raise bad_request("[k] must be greater than 0")
    if num_candidates < k:
        raise bad_request("[num_candidates] cannot be less than [k]")
    if num_candidates > MAX_K:
        raise bad_request(f"[num_candidates] cannot exceed [{MAX_K}]")
    if "rescore_vector" in knn:
        check_keys(knn["rescore_vector"], {"oversample"}, "rescore_vector")
    spec = index.mapping.fields.get(name)
    if spec is None:
        raise EsError(400, "query_shard_exception", f"failed to create query: field [{name}] does not exist in the mapping")
    if spec.type != "dense_vector":
        raise EsError(400, "query_shard_exception", "failed to create query: [knn] queries are only supported on [dense_vector] fields")
    if not spec.indexed:
        raise bad_request(f"to perform knn search on field [{name}], its mapping must have [index] set to [true]")
    raw = knn["query_vector"]
    if not isinstance(raw, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw):
        raise x_content("[knn] failed to parse field [query_vector]")
    query = np.asarray(raw, dtype=np.float32)
    dims = spec.params.get("dims")
    if dims is None:  # no document has a vector yet
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if len(query) != dims:
        raise bad_request(f"The query vector has a different number of dimensions [{len(query)}] than the document vectors [{dims}].")
    similarity = spec.params.get("similarity", "cosine")
    check_similarity(similarity, query)
    mask = parse_query(knn["filter"], index.mapping)(snap) if "filter" in knn else np.ones(len(snap), dtype=bool)
    matrix, present = snap.vectors(name, dims, unit=similarity == "cosine")
    candidates = np.flatnonzero(mask & present)
    vectors = matrix if len(candidates) == len(snap) else matrix[candidates]
    scores = _similarity(similarity, vectors, query)
    order = np.lexsort((candidates, -scores))[:k]  # best first; ties by doc order
    return candidates[order], scores[order]


def _similarity(similarity: str, vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    if similarity == "l2_norm":
        diff = vectors - query
        return (1.0 / (1.0 + np.einsum("ij,ij->i", diff, diff))).astype(np.float32)
    if similarity == "cosine":  # document vectors are unit length already
        cos = vectors.dot(query) / np.float32(np.linalg.norm(query))
        return ((1.0 + cos) / 2.0).astype(np.float32)
    dots = vectors.dot(query)  # (matmul is ~3x slower for float32 matrix-vector here)
    if similarity == "dot_product":
        return ((1.0 + dots) / 2.0).astype(np.float32)
    with np.errstate(divide="ignore"):  # both branches are computed; only dots < 0 divides
        return np.where(dots < 0, 1.0 / (1.0 - dots), dots + 1.0).astype(np.float32)  # max_inner_product
