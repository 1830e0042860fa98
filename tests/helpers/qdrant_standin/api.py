"""The endpoints: each REST call parsed with qdrant_client's REST models and run on the local-mode engine.

Routes, bodies and defaults are those of qdrant_client's generated REST client
(``qdrant_client/http/api/*.py``) and Qdrant's OpenAPI: e.g. a query returns no payload
unless asked (``with_payload`` "Default is false"), a scroll or a retrieve returns it
("Default is true"), ``count`` is exact unless told otherwise.

Updates (points, payload indexes) honour ``wait`` as the API documents it ("If true,
wait for changes to actually happen"): ``wait=true`` answers ``"completed"`` once the
update and every earlier one are applied; ``wait=false`` answers ``"acknowledged"`` at
once and, with ``lag`` > 0, applies the update only ``lag`` seconds later (or when a
later ``wait=true`` update comes), so a client that reads what it did not wait for sees
it missing, as it may on a busy server. Updates apply in the order they came.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pydantic
from qdrant_client.http import models
from qdrant_client.local.qdrant_local import QdrantLocal

from .errors import (
    QdrantError,
    bad_request,
    format_error,
    from_engine,
    not_found,
    unsupported,
)
from .indexes import PayloadIndexes
from .strict import refuse_unindexed


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    body: bytes


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable[..., Any]
    body: Any = None  # the REST model the body must parse as


_ROUTES: list[Route] = []


def route(method: str, path: str, body: Any = None):
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")

    def register(fn):
        _ROUTES.append(Route(method, pattern, fn, None if body is None else pydantic.TypeAdapter(body)))
        return fn

    return register


@dataclass
class Api:
    """Dispatches a call to its endpoint; ``engine`` holds the collections, ``indexes`` their payload indexes."""

    engine: QdrantLocal = field(default_factory=lambda: QdrantLocal(location=":memory:"))
    indexes: PayloadIndexes = field(default_factory=PayloadIndexes)
    lag: float = 0.0
    strict: bool = False  # strict mode: filters on keys without a fitting payload index are refused (strict.py)
    pending: list[tuple[float, Callable[[], Any]]] = field(default_factory=list)  # (due, apply), in order
    operations: int = 0

    def update(self, params: dict[str, str], apply: Callable[[], Any]) -> models.UpdateResult:
        """Apply an update as ``wait`` says (see the module docstring); its UpdateResult."""
        self.operations += 1
        if params.get("wait", "false") == "true":
            self.apply_pending(float("inf"))
            apply()
            return models.UpdateResult(operation_id=self.operations, status=models.UpdateStatus.COMPLETED)
        if self.lag > 0:
            self.pending.append((time.monotonic() + self.lag, apply))
        else:
            apply()
        return models.UpdateResult(operation_id=self.operations, status=models.UpdateStatus.ACKNOWLEDGED)

    def apply_pending(self, now: float) -> None:
        while self.pending and self.pending[0][0] <= now:
            _, apply = self.pending.pop(0)
            try:
                apply()
            except (ValueError, KeyError):
                pass  # an unawaited update that fails is only logged by the server

    def dispatch(self, call: Call) -> tuple[int, Any]:
        started = time.perf_counter()
        self.apply_pending(time.monotonic())
        for entry in _ROUTES:
            match = entry.pattern.match(call.path)
            if match is None or entry.method != call.method:
                continue
            args = {k: unquote(v) for k, v in match.groupdict().items()}
            body = _parse(entry.body, call.body) if entry.body is not None else None
            try:
                result = entry.handler(self, body=body, params=call.params, **args)
            except ValueError as exc:
                raise from_engine(exc, args.get("name")) from exc
            except NotImplementedError as exc:
                raise unsupported(str(exc)) from exc
            return 200, {"result": _jsonable(result), "status": "ok", "time": time.perf_counter() - started}
        raise QdrantError(404, f"Not found: no endpoint {call.method} {call.path}")

    def filtered(self, name: str, flt: Any) -> Any:
        """``flt``, once strict mode (if on) has checked that its keys are indexed."""
        if self.strict and flt is not None:
            refuse_unindexed(flt, self.indexes.of(name))
        return flt

    def collection(self, name: str):
        if name not in self.engine.collections:
            raise not_found(name)
        return self.engine.collections[name]


def _parse(adapter: pydantic.TypeAdapter, body: bytes) -> Any:
    """The body as the model (from Python objects: from JSON, pydantic would turn UUID ids into UUIDs)."""
    try:
        document = json.loads(body or b"null")
    except ValueError as exc:
        raise format_error(str(exc)) from None
    try:
        parsed = adapter.validate_python(document)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise format_error(f"{first['msg']} at `{where}`" if where else first["msg"]) from None
    _check_ids(parsed)
    return parsed


def _check_ids(body: Any) -> None:
    """Point ids are unsigned integers or UUIDs (the models accept any string; the server does not)."""
    ids: list[Any] = []
    if isinstance(body, models.PointsBatch):
        ids = list(body.batch.ids)
    elif isinstance(body, models.PointsList):
        ids = [p.id for p in body.points]
    elif isinstance(body, (models.PointIdsList, models.PointRequest)):
        ids = list(body.points if isinstance(body, models.PointIdsList) else body.ids)
    elif isinstance(body, models.ScrollRequest) and body.offset is not None:
        ids = [body.offset]
    for point_id in ids:
        if isinstance(point_id, int):
            if point_id < 0:
                raise format_error(f"invalid value: integer `{point_id}`, expected u64")
            continue
        try:
            uuid.UUID(point_id)
        except ValueError:
            raise format_error(f"value {point_id} is not a valid point ID, valid values are either an unsigned integer or a UUID") from None


def _jsonable(result: Any) -> Any:
    if isinstance(result, pydantic.BaseModel):
        return result.model_dump(mode="json", exclude_none=True)
    if isinstance(result, list):
        return [_jsonable(r) for r in result]
    return result


# ---- collections ------------------------------------------------------------------------


@route("GET", "/collections")
def get_collections(api: Api, **_: Any) -> Any:
    return api.engine.get_collections()


@route("GET", "/collections/{name}/exists")
def collection_exists(api: Api, name: str, **_: Any) -> Any:
    return models.CollectionExistence(exists=name in api.engine.collections)


@route("PUT", "/collections/{name}", models.CreateCollection)
def create_collection(api: Api, name: str, body: models.CreateCollection, **_: Any) -> Any:
    if name in api.engine.collections:
        raise from_engine(ValueError(f"Collection {name} already exists"), name)
    if body.sharding_method is not None:
        raise unsupported("sharding options")
    api.engine.create_collection(name, vectors_config=body.vectors, sparse_vectors_config=body.sparse_vectors, metadata=body.metadata)
    api.indexes.drop(name)
    return True


@route("DELETE", "/collections/{name}")
def delete_collection(api: Api, name: str, **_: Any) -> Any:
    api.apply_pending(float("inf"))  # the collection's queued updates go with it (or fail, unobserved)
    api.indexes.drop(name)
    return api.engine.delete_collection(name)


@route("GET", "/collections/{name}")
def get_collection(api: Api, name: str, **_: Any) -> Any:
    api.collection(name)
    info = api.engine.get_collection(name)
    info.payload_schema = api.indexes.schema(name, api.collection(name))
    if api.strict:
        info.config.strict_mode_config = models.StrictModeConfigOutput(enabled=True, unindexed_filtering_retrieve=False, unindexed_filtering_update=False)
    return info


@route("PUT", "/collections/{name}/index", models.CreateFieldIndex)
def create_field_index(api: Api, name: str, body: models.CreateFieldIndex, params: dict[str, str], **_: Any) -> Any:
    api.collection(name)
    if body.field_schema is None:
        raise bad_request(f"Can't auto-detect field type for `{body.field_name}`: give field_schema")
    return api.update(params, lambda: api.indexes.create(name, body.field_name, body.field_schema))


# ---- points -----------------------------------------------------------------------------


@route("PUT", "/collections/{name}/points", models.PointInsertOperations)
def upsert_points(api: Api, name: str, body: Any, params: dict[str, str], **_: Any) -> Any:
    api.collection(name)
    if body.shard_key is not None:
        raise unsupported("shard keys")
    points = body.batch if isinstance(body, models.PointsBatch) else body.points
    return api.update(params, lambda: api.engine.upsert(name, points=points, update_filter=body.update_filter, update_mode=body.update_mode))


@route("POST", "/collections/{name}/points/delete", models.PointsSelector)
def delete_points(api: Api, name: str, body: Any, params: dict[str, str], **_: Any) -> Any:
    api.collection(name)
    if isinstance(body, models.FilterSelector):
        api.filtered(name, body.filter)
    return api.update(params, lambda: api.engine.delete(name, points_selector=body))


@route("POST", "/collections/{name}/points", models.PointRequest)
def get_points(api: Api, name: str, body: models.PointRequest, **_: Any) -> Any:
    with_payload = True if body.with_payload is None else body.with_payload
    return api.engine.retrieve(name, ids=body.ids, with_payload=with_payload, with_vectors=body.with_vector or False)


@route("POST", "/collections/{name}/points/count", models.CountRequest)
def count_points(api: Api, name: str, body: models.CountRequest, **_: Any) -> Any:
    api.collection(name)
    return api.engine.count(name, count_filter=api.filtered(name, body.filter), exact=True if body.exact is None else body.exact)


@route("POST", "/collections/{name}/points/scroll", models.ScrollRequest)
def scroll_points(api: Api, name: str, body: models.ScrollRequest, **_: Any) -> Any:
    with_payload = True if body.with_payload is None else body.with_payload
    api.collection(name)
    records, offset = api.engine.scroll(
        name, scroll_filter=api.filtered(name, body.filter), limit=10 if body.limit is None else body.limit, order_by=body.order_by,
        offset=body.offset, with_payload=with_payload, with_vectors=body.with_vector or False,
    )
    return models.ScrollResult(points=records, next_page_offset=offset)


def _query(api: Api, name: str, request: models.QueryRequest) -> models.QueryResponse:
    if request.shard_key is not None:
        raise unsupported("shard keys")
    api.collection(name)
    return api.engine.query_points(
        name, query=request.query, using=request.using, prefetch=request.prefetch, query_filter=api.filtered(name, request.filter),
        search_params=request.params, limit=10 if request.limit is None else request.limit, offset=request.offset,
        with_payload=request.with_payload or False, with_vectors=request.with_vector or False,
        score_threshold=request.score_threshold, lookup_from=request.lookup_from,
    )


@route("POST", "/collections/{name}/points/query", models.QueryRequest)
def query_points(api: Api, name: str, body: models.QueryRequest, **_: Any) -> Any:
    return _query(api, name, body)


@route("POST", "/collections/{name}/points/query/batch", models.QueryRequestBatch)
def query_batch_points(api: Api, name: str, body: models.QueryRequestBatch, **_: Any) -> Any:
    api.collection(name)
    return [_query(api, name, request) for request in body.searches]


@route("POST", "/collections/{name}/facet", models.FacetRequest)
def facet(api: Api, name: str, body: models.FacetRequest, **_: Any) -> Any:
    collection = api.collection(name)
    kind = api.indexes.facet_kind(name, body.key)
    api.filtered(name, body.filter)
    limit = 10 if body.limit is None else body.limit
    if limit < 1:
        raise ValueError(f"limit value {limit} is invalid. Must be 1 or larger.")
    return api.indexes.facet(kind, collection, body.key, body.filter, limit)
