"""The REST endpoints the stand-in answers, each with the URL parameters it accepts.

Unknown parameters, unknown body fields and unknown endpoints are refused the
way Elasticsearch refuses them (HTTP 400 with an ES error body).
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import unquote
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .errors import EsError, bad_request, check_keys, index_not_found, unsupported, x_content
from .faults import Faults
from .indices import Cluster, Index
from .query import parse_query
from .search import check_body, filter_source, run_search

COMMON_PARAMS = {"pretty", "human", "error_trace"}
VERSION = "9.2.0"


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    body: bytes
    groups: dict[str, str] = field(default_factory=dict)

    def json(self, required: bool = False) -> Any:
        if not self.body.strip():
            if required:
                raise bad_request("request body is required", type="parse_exception")
            return None
        try:
            return codec.loads(self.body)
        except ValueError as exc:
            raise EsError(400, "x_content_parse_exception", f"[1:1] Unexpected character: {exc}") from None

    def ndjson(self) -> list[Any]:
        text = self.body.decode("utf-8")
        if text and not text.endswith("\n"):
            raise bad_request("The bulk request must be terminated by a newline [\\n]")
        lines = []
        for number, line in enumerate(text.split("\n")[:-1], start=1):
            if not line.strip():
                continue
            try:
                lines.append(codec.loads(line))
            except ValueError:
                raise EsError(400, "x_content_parse_exception", f"[{number}:1] Unexpected character in line {number}") from None
        return lines

    def flag(self, name: str, default: bool = False) -> bool:
        if name not in self.params:
            return default
        value = self.params[name]
        if value in ("", "true"):
            return True
        if value == "false":
            return False
        raise bad_request(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


class Api:
    def __init__(self, cluster: Cluster, faults: Faults, version: str = VERSION):
        self.cluster = cluster
        self.faults = faults
        self.version = version
        self.routes: list[tuple[set[str], re.Pattern, Callable, set[str]]] = []
        add = self._route
        add({"GET", "HEAD"}, r"/", self.info, set())
        add({"GET", "POST"}, r"/_search", self.search, {"allow_partial_search_results", "track_total_hits", "rest_total_hits_as_int", "typed_keys", "_source", "_source_includes", "_source_excludes", "size", "from", "timeout"})
        add({"GET", "POST"}, r"/_msearch", self.msearch, {"max_concurrent_searches", "max_concurrent_shard_requests", "typed_keys", "rest_total_hits_as_int"})
        add({"POST", "PUT"}, r"/_bulk", self.bulk, {"refresh", "timeout", "wait_for_active_shards", "require_alias"})
        add({"GET", "POST"}, r"/_mget", self.mget, {"_source", "_source_includes", "_source_excludes", "realtime", "refresh", "preference"})
        add({"DELETE"}, r"/_pit", self.close_pit, set())
        add({"GET", "POST"}, r"/_resolve/index/(?P<name>[^/]+)", self.resolve, {"expand_wildcards", "ignore_unavailable", "allow_no_indices"})
        add({"POST", "GET"}, r"/_refresh", self.refresh, {"ignore_unavailable", "allow_no_indices", "expand_wildcards"})
        add({"HEAD"}, r"/(?P<index>[^_/][^/]*)", self.exists, {"allow_no_indices", "expand_wildcards", "ignore_unavailable", "local", "flat_settings", "include_defaults"})
        add({"PUT"}, r"/(?P<index>[^_/][^/]*)", self.create, {"timeout", "master_timeout", "wait_for_active_shards"})
        add({"DELETE"}, r"/(?P<index>[^_/][^/]*)", self.delete_index, {"timeout", "master_timeout", "ignore_unavailable", "allow_no_indices", "expand_wildcards"})
        add({"GET"}, r"/(?P<index>[^_/][^/]*)/_mapping", self.get_mapping, {"ignore_unavailable", "allow_no_indices", "expand_wildcards", "local", "master_timeout"})
        add({"POST", "PUT"}, r"/(?P<index>[^_/][^/]*)/_bulk", self.bulk, {"refresh", "timeout", "wait_for_active_shards", "require_alias"})
        add({"GET", "POST"}, r"/(?P<index>[^_/][^/]*)/_search", self.search, {"allow_partial_search_results", "track_total_hits", "rest_total_hits_as_int", "typed_keys", "_source", "_source_includes", "_source_excludes", "size", "from", "timeout", "ignore_unavailable", "allow_no_indices", "expand_wildcards"})
        add({"GET", "POST"}, r"/(?P<index>[^_/][^/]*)/_msearch", self.msearch, {"max_concurrent_searches", "max_concurrent_shard_requests", "typed_keys", "rest_total_hits_as_int"})
        add({"GET", "POST"}, r"/(?P<index>[^_/][^/]*)/_count", self.count, {"ignore_unavailable", "allow_no_indices", "expand_wildcards"})
        add({"GET", "POST"}, r"/(?P<index>[^_/][^/]*)/_mget", self.mget, {"_source", "_source_includes", "_source_excludes", "realtime", "refresh", "preference"})
        doc_params = {"refresh", "op_type", "timeout", "wait_for_active_shards", "require_alias"}
        add({"PUT", "POST"}, r"/(?P<index>[^_/][^/]*)/_doc/(?P<id>[^/]+)", self.index_doc, doc_params)
        add({"POST"}, r"/(?P<index>[^_/][^/]*)/_doc", self.index_doc, doc_params)
        add({"PUT", "POST"}, r"/(?P<index>[^_/][^/]*)/_create/(?P<id>[^/]+)", self.index_doc, doc_params - {"op_type"})
        add({"DELETE"}, r"/(?P<index>[^_/][^/]*)/_doc/(?P<id>[^/]+)", self.index_doc, {"refresh", "timeout", "wait_for_active_shards"})
        add({"GET", "HEAD"}, r"/(?P<index>[^_/][^/]*)/_doc/(?P<id>[^/]+)", self.get_doc, {"_source", "_source_includes", "_source_excludes", "realtime", "refresh", "preference"})
        add({"POST", "GET"}, r"/(?P<index>[^_/][^/]*)/_refresh", self.refresh, {"ignore_unavailable", "allow_no_indices", "expand_wildcards"})
        add({"POST"}, r"/(?P<index>[^_/][^/]*)/_pit", self.open_pit, {"keep_alive", "ignore_unavailable", "expand_wildcards", "preference", "allow_partial_search_results"})

    def _route(self, methods: set[str], pattern: str, handler: Callable, params: set[str]) -> None:
        self.routes.append((methods, re.compile(pattern + r"/?"), handler, params | COMMON_PARAMS))

    def dispatch(self, call: Call) -> tuple[int, Any]:
        allowed_methods: set[str] = set()
        for methods, pattern, handler, params in self.routes:
            match = pattern.fullmatch(call.path)
            if not match:
                continue
            if call.method not in methods:
                allowed_methods |= methods
                continue
            for name in call.params:
                if name not in params:
                    raise bad_request(f"request [{call.path}] contains unrecognized parameter: [{name}] (or one the stand-in does not implement)")
            call.groups = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            return handler(call)
        if allowed_methods:
            raise EsError(405, "method_not_allowed", f"Incorrect HTTP method for uri [{call.path}] and method [{call.method}], allowed: {sorted(allowed_methods)}")
        raise unsupported(f"the endpoint [{call.method} {call.path}]")

    # ---- cluster and indices ------------------------------------------------------------------

    def info(self, call: Call) -> tuple[int, Any]:
        return 200, {
            "name": "vecbook-standin",
            "cluster_name": "vecbook-standin",
            "cluster_uuid": "c0ffee00c0ffee00c0ffee",
            "version": {"number": self.version, "build_flavor": "default", "build_type": "tar", "lucene_version": "10.2.2", "minimum_wire_compatibility_version": "8.19.0", "minimum_index_compatibility_version": "8.0.0"},
            "tagline": "You Know, for Search",
        }

    def exists(self, call: Call) -> tuple[int, Any]:
        found = self.cluster.resolve(call.groups["index"], ignore_unavailable=True)
        return (200 if found else 404), None

    def create(self, call: Call) -> tuple[int, Any]:
        body = call.json() or {}
        check_keys(body, {"settings", "mappings", "aliases"}, "create index")
        if body.get("aliases"):
            raise unsupported("aliases")
        index = self.cluster.create(call.groups["index"], body)
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": index.name}

    def delete_index(self, call: Call) -> tuple[int, Any]:
        expression = call.groups["index"]
        if "*" in expression or expression == "_all":
            raise bad_request("Wildcard expressions or all indices are not allowed")
        for index in self.cluster.resolve(expression, ignore_unavailable=call.flag("ignore_unavailable")):
            self.cluster.delete(index.name)
        return 200, {"acknowledged": True}

    def get_mapping(self, call: Call) -> tuple[int, Any]:
        indices = self.cluster.resolve(call.groups["index"], ignore_unavailable=call.flag("ignore_unavailable"))
        return 200, {i.name: {"mappings": i.mapping.raw} for i in indices}

    def resolve(self, call: Call) -> tuple[int, Any]:
        expand = call.params.get("expand_wildcards", "open")
        if expand not in ("open", "all", "open,hidden", "all,hidden"):
            raise unsupported(f"expand_wildcards={expand}")
        indices = self.cluster.resolve(call.groups["name"], ignore_unavailable=call.flag("ignore_unavailable"))
        return 200, {"indices": [{"name": i.name, "attributes": ["open"]} for i in indices], "aliases": [], "data_streams": []}

    def refresh(self, call: Call) -> tuple[int, Any]:
        indices = self.cluster.resolve(call.groups.get("index") or "*", ignore_unavailable=call.flag("ignore_unavailable"))
        for index in indices:
            index.refresh()
        return 200, {"_shards": {"total": 2 * len(indices), "successful": len(indices), "failed": 0}}

    # ---- documents ------------------------------------------------------------------------------

    def bulk(self, call: Call) -> tuple[int, Any]:
        lines = call.ndjson()
        default_index = call.groups.get("index")
        items, touched = [], set()
        i = 0
        while i < len(lines):
            action = lines[i]
            if not isinstance(action, dict) or len(action) != 1:
                raise bad_request(f"Malformed action/metadata line [{i + 1}], expected a simple value for field [{next(iter(action), '')}] but found [START_OBJECT]")
            ((op, meta),) = action.items()
            if op not in ("index", "create", "delete", "update"):
                raise bad_request(f"Malformed action/metadata line [{i + 1}], expected one of [create, delete, index, update] but found [{op}]")
            check_keys(meta, {"_index", "_id", "routing", "if_seq_no", "if_primary_term", "version", "version_type", "require_alias", "pipeline", "dynamic_templates", "retry_on_conflict", "_source", "list_executed_pipelines"}, f"bulk action line {i + 1}", bad_request)
            for key in ("routing", "if_seq_no", "if_primary_term", "version", "version_type", "pipeline", "dynamic_templates", "retry_on_conflict"):
                if key in meta:
                    raise unsupported(f"bulk metadata [{key}]")
            if op == "update":
                raise unsupported("bulk update actions")
            source = None
            if op != "delete":
                if i + 1 >= len(lines):
                    raise bad_request(f"Validation Failed: 1: the bulk request is missing the source of action line {i + 1};", type="action_request_validation_exception")
                source = lines[i + 1]
                i += 1
            i += 1
            name = meta.get("_index", default_index)
            if name is None:
                raise bad_request("Validation Failed: 1: index is missing;", type="action_request_validation_exception")
            items.append(self._bulk_item(op, name, meta, source, touched, call.flag("require_alias") or meta.get("require_alias") is True))
        refresh = call.params.get("refresh", "false")
        if refresh not in ("", "true", "false", "wait_for"):
            raise bad_request(f"Unknown value for refresh: [{refresh}].")
        if refresh != "false":
            for name in touched:
                if name in self.cluster.indices:
                    self.cluster.indices[name].refresh()
        errors = any("error" in next(iter(item.values())) for item in items)
        return 200, {"errors": errors, "took": 1, "items": items}

    def _bulk_item(self, op: str, name: str, meta: dict, source: Any, touched: set[str], require_alias: bool) -> dict:
        doc_id = meta.get("_id")
        head = {"_index": name, "_id": doc_id}
        try:
            if doc_id is not None and (not isinstance(doc_id, str) or not doc_id or len(doc_id.encode()) > 512):
                raise bad_request(f"Validation Failed: 1: id [{doc_id}] is too long, must be no longer than 512 bytes but was: {len(str(doc_id).encode())};" if isinstance(doc_id, str) and doc_id else "Validation Failed: 1: an id must be provided if version type or value are set;", type="action_request_validation_exception")
            if require_alias:
                raise EsError(404, "index_not_found_exception", f"no such index [{name}] and [require_alias] request flag is [true] and [{name}] is not an alias", index=name)
            fault = self.faults.item_fault(op, name, doc_id)
            if fault is not None:
                raise fault
            if op == "delete":
                if doc_id is None:
                    raise bad_request("Validation Failed: 1: id is missing;", type="action_request_validation_exception")
                index = self.cluster.get(name)
                result, version, seq_no = index.remove(doc_id)
                touched.add(name)
                status = 200 if result == "deleted" else 404
                return {op: {**head, "_version": version, "result": result, "_shards": _shards(), "_seq_no": seq_no, "_primary_term": 1, "status": status}}
            index = self.cluster.indices.get(name)
            if index is None:  # action.auto_create_index defaults to true
                index = self.cluster.create(name, {})
            if doc_id is None:
                doc_id = head["_id"] = uuid.uuid4().hex[:20]
            result, doc = index.write(doc_id, source, op)
            touched.add(name)
            status = 201 if result == "created" else 200
            return {op: {**head, "_version": doc.version, "result": result, "_shards": _shards(), "_seq_no": doc.seq_no, "_primary_term": 1, "status": status}}
        except EsError as exc:
            return {op: {**head, "status": exc.status, "error": {**exc.cause(), "index": name}}}

    def index_doc(self, call: Call) -> tuple[int, Any]:
        """The single-document APIs, as one-item bulks (same checks, same results)."""
        op = "delete" if call.method == "DELETE" else "create" if "/_create/" in call.path else call.params.get("op_type", "index")
        if op not in ("index", "create", "delete"):
            raise bad_request(f"opType must be 'create' or 'index', found: [{op}]")
        meta = {"_index": call.groups["index"]} | ({"_id": call.groups["id"]} if "id" in call.groups else {})
        touched: set[str] = set()
        item = self._bulk_item(op, meta["_index"], meta, None if op == "delete" else call.json(required=True), touched, call.flag("require_alias"))
        result = item[op]
        if "error" in result:
            raise EsError(result["status"], result["error"]["type"], result["error"]["reason"])
        if call.params.get("refresh", "false") != "false":
            for name in touched:
                self.cluster.indices[name].refresh()
        return result.pop("status"), result

    def get_doc(self, call: Call) -> tuple[int, Any]:
        index = self.cluster.get(call.groups["index"])
        doc = self._lookup(index, call.groups["id"], call)
        includes, excludes = _param_source(call.params)
        found = self._doc_body(index, call.groups["id"], doc, includes, excludes)
        return (200 if doc else 404), (None if call.method == "HEAD" else found)

    def mget(self, call: Call) -> tuple[int, Any]:
        body = call.json(required=True)
        check_keys(body, {"ids", "docs"}, "mget")
        default_index = call.groups.get("index")
        includes, excludes = _param_source(call.params)
        if "ids" in body:
            if default_index is None:
                raise bad_request("Validation Failed: 1: index is missing for doc 0;", type="action_request_validation_exception")
            requests = [{"_index": default_index, "_id": i} for i in body["ids"]]
        else:
            requests = body["docs"]
        docs = []
        for req in requests:
            check_keys(req, {"_index", "_id", "_source", "routing", "stored_fields"}, "mget doc")
            name, doc_id = req.get("_index", default_index), req.get("_id")
            if "_source" in req or "routing" in req or "stored_fields" in req:
                raise unsupported("per-document mget options")
            index = self.cluster.indices.get(name)
            if index is None:
                docs.append({"_index": name, "_id": doc_id, "error": index_not_found(name).cause()})
                continue
            docs.append(self._doc_body(index, doc_id, self._lookup(index, doc_id, call), includes, excludes))
        return 200, {"docs": docs}

    def _lookup(self, index: Index, doc_id: str, call: Call):
        if call.flag("refresh"):
            index.refresh()
        if call.flag("realtime", True):
            return index.live.get(doc_id)
        return next((d for d in index.searcher.docs if d.id == doc_id), None)

    def _doc_body(self, index: Index, doc_id: str, doc, includes, excludes) -> dict:
        if doc is None:
            return {"_index": index.name, "_id": doc_id, "found": False}
        hidden = {p for p, f in index.mapping.fields.items() if f.type == "dense_vector"} if index.exclude_source_vectors else set()
        out = {"_index": index.name, "_id": doc_id, "_version": doc.version, "_seq_no": doc.seq_no, "_primary_term": 1, "found": True}
        if includes != []:
            out["_source"] = filter_source(doc.source, includes, excludes, hidden)
        return out

    # ---- search -----------------------------------------------------------------------------------

    def search(self, call: Call) -> tuple[int, Any]:
        return 200, self._search(call.groups.get("index"), call.json(), call.params)

    def _search(self, expression: str | None, body: Any, params: dict[str, str]) -> dict:
        req = check_body(body, params)
        if req.pit is not None:
            if expression is not None:
                raise bad_request("[indices] cannot be used with point in time. Do not specify any index with point in time.", type="action_request_validation_exception")
            pit = self.cluster.pit(req.pit["id"], req.pit.get("keep_alive"))
            return run_search(self.cluster.get(pit.index), pit.snapshot, req, pit.id)
        indices = self.cluster.resolve(expression or "*", ignore_unavailable=params.get("ignore_unavailable") in ("", "true"))
        if len(indices) != 1:
            if not indices:
                return {"took": 0, "timed_out": False, "_shards": _shards(0), "hits": {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}}
            raise unsupported("searching several indices at once")
        index = indices[0]
        return run_search(index, index.searcher, req, None)

    def msearch(self, call: Call) -> tuple[int, Any]:
        lines = call.ndjson()
        if len(lines) % 2:
            raise bad_request("The msearch request must be terminated by a newline [\\n]")
        responses = []
        for header, body in zip(lines[0::2], lines[1::2]):
            check_keys(header, {"index", "allow_no_indices", "expand_wildcards", "ignore_unavailable", "preference", "request_cache", "routing", "search_type", "ccs_minimize_roundtrips", "allow_partial_search_results", "ignore_throttled"}, "msearch header", bad_request)
            index = header.get("index", call.groups.get("index"))
            if isinstance(index, list):
                index = ",".join(index)
            try:
                responses.append({**self._search(index, body, {}), "status": 200})
            except EsError as exc:
                responses.append({**exc.body()})
        return 200, {"took": 1, "responses": responses}

    def count(self, call: Call) -> tuple[int, Any]:
        body = call.json() or {}
        check_keys(body, {"query"}, "count", x_content)
        total = 0
        for index in self.cluster.resolve(call.groups["index"], ignore_unavailable=call.flag("ignore_unavailable")):
            snap = index.searcher
            total += int(parse_query(body["query"], index.mapping)(snap).sum()) if "query" in body else len(snap)
        return 200, {"count": total, "_shards": _shards()}

    def open_pit(self, call: Call) -> tuple[int, Any]:
        if "keep_alive" not in call.params:
            raise bad_request("Validation Failed: 1: [keep_alive] is not specified;", type="action_request_validation_exception")
        indices = self.cluster.resolve(call.groups["index"])
        if len(indices) != 1:
            raise unsupported("a point in time over several indices")
        return 200, {"id": self.cluster.open_pit(indices[0], call.params["keep_alive"]), "_shards": _shards()}

    def close_pit(self, call: Call) -> tuple[int, Any]:
        body = check_keys(call.json(required=True), {"id"}, "close point in time")
        freed = self.cluster.close_pit(str(body.get("id")))
        return (200 if freed else 404), {"succeeded": True, "num_freed": int(freed)}


def _shards(total: int = 1) -> dict:
    return {"total": total, "successful": total, "failed": 0} if total == 0 else {"total": 2, "successful": 1, "failed": 0}


def _param_source(params: dict[str, str]) -> tuple[list[str] | None, list[str]]:
    includes: list[str] | None = None
    source = params.get("_source")
    if source is not None:
        includes = [] if source == "false" else None if source == "true" else source.split(",")
    if "_source_includes" in params:
        includes = params["_source_includes"].split(",")
    excludes = params["_source_excludes"].split(",") if "_source_excludes" in params else []
    return includes, excludes
