"""What is specific to the elasticsearch backend, tested through the official client and the stand-in.

The conformance suite covers the shared semantics; here: index naming, an
unreachable server, the filter encoding, partial writes, refresh, the request
shapes, credentials, and the stand-in's own strictness.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import importlib
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("elasticsearch")
pytest.importorskip("aiohttp")

from elasticsearch import BadRequestError, Elasticsearch  # noqa: E402

from tests.backends import free_port, silent_port, unreachable  # noqa: E402
from tests.helpers.es_standin import EsStandin  # noqa: E402
from tests.helpers.es_standin.indices import Index, check_index_name  # noqa: E402
from tests.helpers.es_standin.mapping import Mapping  # noqa: E402
from tests.helpers.es_standin.query import parse_query  # noqa: E402
from vecbook import (  # noqa: E402
    VecbookError,
    BackendUnavailableError,
    EsVectorStore,
    MissingDependencyError,
    PartialWriteError,
    ValidationError,
    VectorNode,
    WorkspaceNotFoundError,
)
from vecbook.filters import filter_mask, parse_filter  # noqa: E402
from vecbook.stores.engine.batch import validate_workspace_id  # noqa: E402
from vecbook.stores.elasticsearch.filters import FIELD, _number_key, filter_terms, to_query  # noqa: E402
from vecbook.stores.elasticsearch import index_name, workspace_of  # noqa: E402
from vecbook.stores.elasticsearch.documents import index_info  # noqa: E402


@pytest.fixture
def server():
    with EsStandin() as standin:
        yield standin
        assert not standin.internal_errors


@pytest.fixture
def store(server):
    with EsVectorStore(hosts=server.url, batch_size=4) as s:
        yield s


def nodes(count: int, dims: int = 4, start: int = 0) -> list[VectorNode]:
    rng = np.random.default_rng(start)
    return [VectorNode(unique_id=f"n{i}", content=f"c{i}", metadata={"i": i}, vector=rng.standard_normal(dims)) for i in range(start, start + count)]


def raw_client(server) -> Elasticsearch:
    return Elasticsearch(server.url)


# ---- workspace id <-> index name ---------------------------------------------------------------

WORKSPACE_IDS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", fullmatch=True).filter(
    lambda ws: ws.split(".")[0].lower() not in {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)


@given(WORKSPACE_IDS)
@settings(max_examples=300, deadline=None)
def test_index_names_round_trip_and_obey_es_rules(ws):
    validate_workspace_id(ws)
    name = index_name("vecbook-", ws)
    check_index_name(name)  # lower case, no forbidden characters, <= 255 bytes, ...
    assert workspace_of("vecbook-", name) == ws


def test_case_variants_get_distinct_indices_and_foreign_names_are_ignored():
    names = {index_name("vecbook-", ws) for ws in ("ab", "Ab", "aB", "AB", "a.b", "a_b")}
    assert len(names) == 6
    assert index_name("vecbook-", "My.Ws") == "vecbook-my.ws~9"
    for foreign in ("other", "vecbook-a~zz", "vecbook-a~0", "vecbook-..", "vecbook-a~400", "vecbook-"):
        assert workspace_of("vecbook-", foreign) is None, foreign
    with pytest.raises(ValidationError):
        EsVectorStore(hosts="http://127.0.0.1:9200", index_prefix="Bad_Prefix")


def test_list_returns_original_ids_and_ignores_other_indices(server, store):
    for ws in ("My.WS_1", "lower", "_x"):
        store.create_workspace(ws)
    raw = raw_client(server)
    raw.indices.create(index="vecbook-foreign~zz")
    raw.indices.create(index="someone-elses")
    assert store.list_workspaces() == ["My.WS_1", "_x", "lower"]
    assert "vecbook-my.ws_1~19" in server.cluster.indices  # capitals at 0, 3, 4: 0b11001


# ---- an unreachable server ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_server_down_is_reported_quickly_with_host_and_port(mode):
    port = free_port()
    with EsVectorStore(hosts=f"http://elastic:s3cret@127.0.0.1:{port}") as store:
        error = unreachable(store, mode)
        assert f"127.0.0.1:{port}" in str(error) and isinstance(error, ConnectionError)
        assert "s3cret" not in str(error) and "s3cret" not in repr(store)


def test_a_server_that_never_answers_times_out_as_unavailable():
    with silent_port() as port, EsVectorStore(hosts=f"http://127.0.0.1:{port}", request_timeout=0.5) as store:
        assert "did not answer" in str(unreachable(store, within=5))


def test_missing_client_library_raises_missing_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "elasticsearch", None)
    for name in [m for m in sys.modules if m.startswith("vecbook.stores.elasticsearch")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingDependencyError, match=r"vecbook\[elasticsearch\]"):
        importlib.import_module("vecbook.stores.elasticsearch")


# ---- credentials ----------------------------------------------------------------------------------


def test_credentials_are_sent_and_never_shown():
    with EsStandin(basic_auth=("elastic", "s3cret")) as server:
        good = EsVectorStore(hosts=server.url, basic_auth=("elastic", "s3cret"))
        good.create_workspace("w")
        assert good.list_workspaces() == ["w"]
        assert "s3cret" not in repr(good)
        bad = EsVectorStore(hosts=server.url, basic_auth=("elastic", "wrong"))
        with pytest.raises(Exception) as info:
            bad.list_workspaces()
        assert "s3cret" not in str(info.value) and "wrong" not in str(info.value)
        in_url = EsVectorStore(hosts=f"http://elastic:s3cret@127.0.0.1:{server.port}")
        assert in_url.list_workspaces() == ["w"] and "s3cret" not in repr(in_url)
        for s in (good, bad, in_url):
            s.close()


# ---- the filter encoding -----------------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(2**53 - 600, 2**53 + 600),
    st.integers(2**63 - 1100, 2**63 - 1),
    st.integers(-(2**63), -(2**63) + 1100),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(NUMBERS, NUMBERS)
def test_number_keys_sort_like_numbers(a, b):
    assert len(_number_key(a)) == 19
    if a < b:  # exactly, as Python compares ints and floats
        assert _number_key(a) < _number_key(b)
    elif a == b:
        assert _number_key(a) == _number_key(b)  # 1 == 1.0, -0.0 == 0.0


def test_filter_terms_encode_types_presence_and_paths():
    terms = filter_terms({"a": 1, "b": True, "c": "1", "d": [None, "x"], "e": [], "f": {}, "g": None, "h": {"i": 2}, "j.k": "dot"})
    assert 'p["a"]' in terms and 'p["d"]' in terms and 'p["h"]' in terms and 'p["h","i"]' in terms
    assert not any(t.startswith(('p["e"]', 'p["f"]', 'p["g"]')) for t in terms)
    assert 'b["b"]1' in terms and 's["c"]1' in terms and 's["d"]x' in terms and 's["j.k"]dot' in terms
    assert f'n["a"]{_number_key(1.0)}' in terms
    assert to_query(parse_filter({"a": 1})) == to_query(parse_filter({"a": 1.0}))
    assert to_query(parse_filter({"b": True})) != to_query(parse_filter({"b": 1}))
    assert to_query(parse_filter({"a": {"gt": 1, "gte": 1}})) == {"range": {FIELD: {"gt": f'n["a"]{_number_key(1)}', "lt": 'n["a"^'}}}


SCALARS = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 1.0, -1.5]), st.booleans(), st.sampled_from(["", "a", "b", "B", "ab", "1", "é"]), st.none())
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.sampled_from(["x", "y"]), SCALARS, max_size=2))
METADATA = st.dictionaries(st.sampled_from(["a", "b", "c"]), VALUES, max_size=3)
PATHS = st.sampled_from(["a", "b", "c", "a.x", "b.y"])
OPERANDS = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 1.0]), st.booleans(), st.sampled_from(["", "a", "ab", "B", "1"]))
BOUNDS = st.one_of(
    st.fixed_dictionaries({}, optional={"gt": st.integers(-3, 3), "gte": st.floats(-3, 3), "lt": st.integers(-3, 3), "lte": st.just(1.0)}),
    st.fixed_dictionaries({}, optional={"gt": st.sampled_from(["", "a", "b"]), "gte": st.just("a"), "lt": st.sampled_from(["b", "ab"]), "lte": st.just("B")}),
).filter(bool)


def _conditions():
    return st.one_of(
        OPERANDS,
        st.lists(OPERANDS, min_size=1, max_size=3),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["eq", "ne"]), OPERANDS),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["in", "nin"]), st.lists(OPERANDS, max_size=3)),
        st.builds(lambda v: {"exists": v}, st.booleans()),
        BOUNDS,
    )


FILTERS = st.recursive(
    st.dictionaries(PATHS, _conditions(), min_size=1, max_size=2),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, inner),
    ),
    max_leaves=5,
)

_MAPPING = {"dynamic": "strict", "properties": {"metadata": {"type": "object", "enabled": False}, FIELD: {"type": "keyword"}}}


@given(st.lists(METADATA, min_size=1, max_size=12), FILTERS)
@settings(max_examples=400, deadline=None)
def test_translated_filters_select_what_filter_mask_selects(metadatas, filter_dict):
    """The ES query, evaluated by the stand-in's query engine, matches vecbook's reference evaluator."""
    tree = parse_filter(filter_dict)
    index = Index("t", Mapping.parse(_MAPPING), {})
    for i, md in enumerate(metadatas):
        index.write(str(i), {"metadata": md, FIELD: filter_terms(md)}, "index")
    index.refresh()
    got = parse_query(to_query(tree), index.mapping)(index.searcher)
    assert got.tolist() == filter_mask(tree, metadatas).tolist()


def test_immense_strings_are_indexed_and_match_exactly(store):
    long_a, long_b = "a" * 40_000, "a" * 39_999 + "b"
    store.create_workspace("w")
    store.insert([VectorNode(unique_id=u, content="", metadata={"s": s}, vector=[1.0, 0.0]) for u, s in (("A", long_a), ("B", long_b), ("C", "ab"))], "w")
    ids = lambda f: sorted(n.unique_id for n in store.search_by_vector([1.0, 0.0], "w", top_k=5, filter_dict=f))  # noqa: E731
    assert ids({"s": long_a}) == ["A"] and ids({"s": long_b}) == ["B"]
    assert ids({"s": {"gte": "a", "lt": "ab"}}) == ["A", "B"]
    assert store.get("A", "w")[0].metadata["s"] == long_a


# ---- what goes over the wire ------------------------------------------------------------------------


def test_mapping_is_static_and_metadata_of_any_shape_round_trips(server, store):
    store.create_workspace("w")
    shapes = [{"x": 1}, {"x": "1"}, {"x": {"y": 2}}, {"x": [1, "a", None, {"z": 1}]}, {"x": True}, {"x.y": 5, "score": "kept"}]
    store.insert([VectorNode(unique_id=f"n{i}", content="", metadata=md, vector=[1.0, float(i)]) for i, md in enumerate(shapes)], "w")
    assert [n.metadata for n in store.get([f"n{i}" for i in range(len(shapes))], "w")] == shapes
    props = raw_client(server).indices.get_mapping(index="vecbook-w")["vecbook-w"]["mappings"]["properties"]
    assert set(props) == {"content", "metadata", "vector", "embedding", FIELD}
    assert props["embedding"] == {"type": "dense_vector", "index": True, "similarity": "max_inner_product", "index_options": {"type": "hnsw"}, "dims": 2}
    assert sorted(n.unique_id for n in store.search_by_vector([1.0, 0.0], "w", top_k=9, filter_dict={"x": 1})) == ["n0", "n3"]
    assert sorted(n.unique_id for n in store.search_by_vector([1.0, 0.0], "w", top_k=9, filter_dict={"x.y": 2})) == ["n2"]


def test_search_requests_use_knn_with_filter_and_msearch_for_batches(server, store):
    store.create_workspace("w")
    store.insert(nodes(8), "w")
    server.requests.clear()
    store.search_by_vector(np.ones(4), "w", top_k=3, filter_dict={"i": {"gte": 2}})
    (search,) = [r for r in server.requests if r.path.endswith("/_search")]
    knn = search.body["knn"]
    assert knn["k"] == 3 and knn["num_candidates"] >= 3 and search.body["size"] == 3
    assert knn["filter"] == to_query(parse_filter({"i": {"gte": 2}}))
    assert "_source" in search.body and "embedding" not in search.body["_source"]["includes"]
    server.requests.clear()
    store.batch_search(np.ones((3, 4), dtype=np.float32), "w", top_k=2)
    assert [r.path for r in server.requests] == ["/_msearch"]


def test_iteration_uses_a_point_in_time_and_closes_it(server, store):
    store.create_workspace("w")
    store.insert(nodes(10), "w")
    server.requests.clear()
    assert len(list(store.iter_workspace_nodes("w", page_size=3))) == 10
    paths = [r.path for r in server.requests if "_pit" in r.path or "_search" in r.path]
    assert paths[0] == "/vecbook-w/_pit" and paths[-1] == "/_pit" and paths.count("/_search") == 4
    later = [r.body for r in server.requests if r.path == "/_search"][1:]
    assert all(b["sort"] == ["_shard_doc"] and "search_after" in b and "pit" in b for b in later)
    assert not server.cluster.pits
    iterator = store.iter_workspace_nodes("w", page_size=2)
    next(iterator)
    iterator.close()  # stopping early closes the point in time too, once the page generator is finalised
    del iterator
    gc.collect()
    deadline = time.monotonic() + 5
    while server.cluster.pits and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.cluster.pits


def test_iteration_has_no_10k_cap(server):
    with EsVectorStore(hosts=server.url, batch_size=5000) as store:
        store.create_workspace("w")
        vectors = np.random.default_rng(0).standard_normal((10_050, 2)).astype(np.float32)
        store.insert([VectorNode(unique_id=f"p{i}", content="", vector=v) for i, v in enumerate(vectors)], "w")
        assert store.count("w") == 10_050
        ids = {n.unique_id for n in store.iter_workspace_nodes("w")}
        assert len(ids) == 10_050


# ---- refresh ------------------------------------------------------------------------------------------


def test_refresh_controls_visibility(server):
    with EsVectorStore(hosts=server.url, refresh=False) as store:
        store.create_workspace("w")
        store.insert(nodes(3), "w")
        assert store.count("w") == 0  # the stand-in, like ES, shows only refreshed writes to searches
        assert len(store.get(["n0", "n1"], "w")) == 2  # get is realtime
        store.refresh("w")
        assert store.count("w") == 3
        store.delete("n0", "w", refresh=True)
        assert store.count("w") == 2
        server.requests.clear()
        store.insert(nodes(2, start=10), "w", refresh="wait_for")
        assert [r.params.get("refresh") for r in server.requests if r.path == "/_bulk"] == ["wait_for"]
        assert store.count("w") == 4
        asyncio.run(store.async_refresh("w"))
        with pytest.raises(ValidationError):
            store.insert(nodes(1), "w", refresh="sometimes")
        with pytest.raises(WorkspaceNotFoundError):
            store.refresh("missing")


# ---- partial writes ------------------------------------------------------------------------------------


def stored(store, ids) -> dict:
    return {n.unique_id: n.content for n in store.get(ids, "w")}


def test_bulk_failure_midway_leaves_the_workspace_as_it_was(server, store):
    store.create_workspace("w")
    store.insert([VectorNode(unique_id=f"n{i}", content="old", vector=np.ones(4)) for i in (1, 7)], "w")
    server.faults.fail_items(after=6, count=1, status=500, type="illegal_state_exception")
    with pytest.raises(VecbookError, match="illegal_state_exception") as info:
        store.insert(nodes(10), "w")  # chunks of 4: 4 written, then 2 of 4 and a failure: all put back
    assert not isinstance(info.value, PartialWriteError)
    assert stored(store, [f"n{i}" for i in range(10)]) == {"n1": "old", "n7": "old"}
    assert store.count("w") == 2  # the undone state is refreshed, so visible


def test_a_refused_item_fails_the_whole_call(server, store):
    store.create_workspace("w")
    server.faults.fail_items(ids={"n1"}, count=1, status=400, type="document_parsing_exception")
    with pytest.raises(VecbookError, match="document_parsing_exception"):
        store.insert(nodes(8), "w")
    assert stored(store, [f"n{i}" for i in range(8)]) == {}


def test_rejections_are_retried(server, store):
    store.create_workspace("w")
    server.faults.fail_items(count=1)  # one 429, as a busy cluster answers: the bulk helper retries it
    store.insert(nodes(4), "w")
    assert store.count("w") == 4


def test_connection_lost_midway_with_no_way_back_names_the_nodes_in_doubt(server, store):
    store.create_workspace("w")
    # The 2nd chunk and every retry of it, and of the undo (the client and aiohttp both retry a dropped PUT).
    server.faults.fail_requests(path="/_bulk$", drop=True, after=1, count=100)
    with pytest.raises(PartialWriteError) as info:
        store.insert(nodes(10), "w")
    assert info.value.written_ids == [f"n{i}" for i in range(8)]
    server.faults.clear()
    server.faults.fail_requests(path="/_bulk$", drop=True, count=100)
    with pytest.raises(PartialWriteError) as info:  # did the request land before the drop? nobody knows
        store.insert(nodes(2, start=20), "w")
    assert isinstance(info.value.__cause__, BackendUnavailableError) and info.value.written_ids == ["n20", "n21"]


def test_a_failed_delete_deletes_nothing(server, store):
    store.create_workspace("w")
    store.insert(nodes(6), "w")
    server.faults.fail_items(ids={"n4"}, count=1, status=500)
    with pytest.raises(VecbookError):
        store.delete([f"n{i}" for i in range(6)], "w")
    assert sorted(stored(store, [f"n{i}" for i in range(6)])) == [f"n{i}" for i in range(6)]


def test_workspace_deleted_behind_our_back(server, store):
    store.create_workspace("w")
    store.insert(nodes(3), "w")
    assert store.count("w") == 3  # the store now knows the index
    raw_client(server).indices.delete(index="vecbook-w")
    for call in (lambda: store.count("w"), lambda: store.search_by_vector(np.ones(4), "w"), lambda: store.get("n0", "w"), lambda: list(store.iter_workspace_nodes("w"))):
        with pytest.raises(WorkspaceNotFoundError):
            call()


# ---- distances, loops --------------------------------------------------------------------------------


def test_zero_vectors_work_with_cosine(server, store):
    store.create_workspace("w")
    store.insert([VectorNode(unique_id="zero", content="", vector=[0.0, 0.0]), VectorNode(unique_id="x", content="", vector=[1.0, 0.0])], "w")
    hits = store.search_by_vector([1.0, 0.0], "w", top_k=2)
    assert [(h.unique_id, h.score) for h in hits] == [("x", 1.0), ("zero", 0.0)]
    raw = raw_client(server)  # why not ES's own "cosine": it refuses zero vectors
    raw.indices.create(index="plain", mappings={"properties": {"v": {"type": "dense_vector", "dims": 2, "similarity": "cosine"}}})
    with pytest.raises(BadRequestError, match="zero magnitude"):
        raw.index(index="plain", id="1", document={"v": [0.0, 0.0]})


def test_distance_must_match_the_one_the_index_was_made_with(server, store):
    store.create_workspace("w")
    store.insert(nodes(2), "w")
    with EsVectorStore(hosts=server.url, distance="euclidean") as other:
        with pytest.raises(ValidationError, match="distance='cosine'"):
            other.search_by_vector(np.ones(4), "w")
        with pytest.raises(ValidationError):
            other.insert(nodes(1, start=5), "w")


def test_one_client_per_event_loop(server, store):
    store.create_workspace("w")
    store.insert(nodes(2), "w")  # the background loop's client

    async def on_my_loop():
        return await store.async_count("w")

    results = []
    threads = [threading.Thread(target=lambda: results.append(asyncio.run(on_my_loop()))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2, 2] and store.count("w") == 2


# ---- the stand-in refuses what Elasticsearch refuses ----------------------------------------------------


def test_standin_rejects_malformed_requests_like_es(server):
    raw = raw_client(server)
    assert raw.info()["version"]["number"].startswith("9.")  # the client's product check passed
    raw.indices.create(index="t", mappings={"dynamic": "strict", "properties": {"v": {"type": "dense_vector", "dims": 2, "similarity": "l2_norm"}, "k": {"type": "keyword"}}})
    raw.index(index="t", id="1", document={"v": [1.0, 0.0], "k": "a"})
    cases = {
        "illegal_argument_exception": lambda: raw.perform_request("GET", "/t/_search", params={"bogus": "1"}, headers={"accept": "application/json"}),
        "parsing_exception": lambda: raw.search(index="t", body={"qurey": {"match_all": {}}}),
        "x_content_parse_exception": lambda: raw.search(index="t", knn={"field": "v", "query_vector": [1, 0], "k": 1, "num_candidate": 5}),
        "mapper_parsing_exception": lambda: raw.indices.create(index="u", mappings={"properties": {"k": {"type": "keyword", "analyzer": "x"}}}),
        "invalid_index_name_exception": lambda: raw.indices.create(index="Upper"),
        "action_request_validation_exception": lambda: raw.search(index="t", sort=["_shard_doc"]),
    }
    for error, call in cases.items():
        with pytest.raises(BadRequestError) as info:
            call()
        assert info.value.error == error, (error, info.value)
    with pytest.raises(BadRequestError, match="num_candidates"):
        raw.search(index="t", knn={"field": "v", "query_vector": [1, 0], "k": 5, "num_candidates": 2})
    bulk = raw.bulk(operations=[{"index": {"_index": "t", "_id": "2"}}, {"v": [1.0, 0.0], "extra": 1}])
    assert bulk["errors"] and bulk["items"][0]["index"]["error"]["type"] == "strict_dynamic_mapping_exception"


def test_standin_models_refresh_and_points_in_time(server):
    raw = raw_client(server)
    raw.indices.create(index="t", mappings={"properties": {"k": {"type": "keyword"}}})
    raw.index(index="t", id="1", document={"k": "a"})
    assert raw.count(index="t")["count"] == 0 and raw.get(index="t", id="1")["found"]
    raw.indices.refresh(index="t")
    pit = raw.open_point_in_time(index="t", keep_alive="1m")["id"]
    raw.index(index="t", id="2", document={"k": "b"}, refresh=True)
    frozen = raw.search(pit={"id": pit, "keep_alive": "1m"}, sort=["_shard_doc"], query={"range": {"k": {"gte": "a"}}})
    assert [h["_id"] for h in frozen["hits"]["hits"]] == ["1"] and raw.count(index="t")["count"] == 2
    raw.close_point_in_time(id=pit)


def test_an_index_of_the_older_term_layout_is_filtered_by_post_filtering(server, store):
    store.create_workspace("w")
    store.insert([VectorNode(unique_id=f"n{i}", content="", metadata={"i": i}, vector=np.ones(4) + i) for i in range(10)], "w")
    store._info["w"] = dataclasses.replace(store._info["w"], format=1)  # as an index made by vecbook < 0.2 reads
    hits = store.search_by_vector(np.ones(4), "w", top_k=10, filter_dict={"i": {"gte": 6}})
    assert sorted(n.unique_id for n in hits) == ["n6", "n7", "n8", "n9"]
    assert index_info({"x": {"mappings": {"_meta": {"vecbook": {"distance": "cosine"}}}}}).format == 1
