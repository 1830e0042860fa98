"""What is specific to the chroma backend: the metadata index, filter translation, partial
writes, Chroma bugs worked around, and the server client (names and vector layouts:
test_chroma_layout.py).

The conformance suite covers the shared behaviour (embedded and against a real `chroma run`).
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np
import pytest

from tests.backends import free_port, silent_port, unreachable
from tests.oracle import matches
from vecbook import DimensionMismatchError, MemoryVectorStore, MissingDependencyError, PartialWriteError, ValidationError
from vecbook import VectorNode, WorkspaceNotFoundError
from vecbook.filters import parse_filter

chromadb = pytest.importorskip("chromadb")
from chromadb.api.models.Collection import Collection  # noqa: E402

from vecbook.stores.chroma.store import NO_LISTS, ChromaVectorStore, collection_name  # noqa: E402
from vecbook.stores.chroma.filters import decode_metadata, encode_metadata, to_where  # noqa: E402
from vecbook.stores.chroma.legacy import side_name  # noqa: E402

from tests.unit.chroma_helpers import format_1_workspace, nodes, vec  # noqa: E402


@pytest.fixture
def store(chroma_store):  # the conformance suite's embedded variant (tests/backends/chroma.py)
    return chroma_store


def test_constructor_checks(tmp_path):
    for prefix in ["", "x", "-x", "a.b", "é"]:
        with pytest.raises(ValidationError, match="collection_prefix"):
            ChromaVectorStore(store_dir=str(tmp_path), collection_prefix=prefix)
    with pytest.raises(TypeError, match="nonsense"):
        ChromaVectorStore(store_dir=str(tmp_path), nonsense=1)
    assert "store_dir" in repr(ChromaVectorStore(store_dir=str(tmp_path)))
    server = ChromaVectorStore(host="example.invalid", port=1234)
    assert "host='example.invalid', port=1234" in repr(server)


def test_missing_client_library_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "chromadb", None)
    with pytest.raises(MissingDependencyError, match=r"vecbook\[chroma\]"):
        ChromaVectorStore(store_dir=str(tmp_path))


# ---- metadata index and where translation -------------------------------------------------------


def test_index_layout():
    md = {"a": {"b": 1, "c": None}, "t": ["x", 3, None, ["deep"]], "big": 2**60 + 1, "$k": True, "a.b": "literal", "": 0, "%j": "user", "d": "2024-01"}
    stored = encode_metadata(md)
    assert stored["a.b"] == 1.0 and type(stored["a.b"]) is float and stored["%24k"] is True and stored["%25j"] == "user" and stored["a%2Eb"] == "literal"
    assert stored["big"] == float(2**60) and stored["%r.big"] == 1 and "%r.a.b" not in stored  # the exact rest, beyond 2**53 only
    assert stored["d"] == "2024-01" and stored["%t.d"] == 1704067200000000  # an ISO date's instant (µs)
    assert "a.c" not in stored and "" not in stored and "t" not in stored  # None, unreachable keys, lists: not scalars
    assert stored["%p"] == ["a", "a.b", "t", "big", "%24k", "a%2Eb", "%25j", "d"]  # the paths present
    assert [k for k in stored if k.startswith("%l.")] == ["%l.t"] and stored["%l.t"] is True
    assert stored["%v"] == [json.dumps(["t", "x"]), json.dumps(["t", 3.0])]
    assert decode_metadata(stored) == md and list(decode_metadata(stored)) == list(md)


def test_several_keys_and_a_range_become_single_operator_levels():
    where = to_where(parse_filter({"a": 1, "b": {"gte": 2, "lt": 5}}))
    assert where.clause == {
        "$and": [
            {"$or": [{"a": 1.0}, {"%v": {"$contains": '["a", 1.0]'}}]},
            {"$or": [{"$and": [{"b": {"$gte": 2.0}}, {"b": {"$lt": 5.0}}]}, {"%l.b": True}]},
        ]
    }
    assert not where.exact  # a range may hit list elements: post-filtered
    assert to_where(parse_filter({"b": {"gte": 2}}), lists=False).exact


def test_ints_beyond_2_53_compare_float_and_rest():
    n = 2**53 + 1
    assert to_where(parse_filter({"k": n}), lists=False).clause == {"$and": [{"k": 2.0**53}, {"%r.k": 1}]}
    assert to_where(parse_filter({"k": {"ne": n}}), lists=False).clause == {"$or": [{"k": {"$ne": 2.0**53}}, {"%r.k": {"$ne": 1}}]}
    assert to_where(parse_filter({"k": {"gt": n}}), lists=False).clause == {"$or": [{"k": {"$gt": 2.0**53}}, {"$and": [{"k": 2.0**53}, {"%r.k": {"$gt": 1}}]}]}
    assert to_where(parse_filter({"k": {"in": [n, 3]}})).clause["$or"][:2] == [{"k": 3.0}, {"$and": [{"k": 2.0**53}, {"%r.k": 1}]}]
    assert {"%v": {"$contains": json.dumps(["k", n])}} in to_where(parse_filter({"k": n})).clause["$or"]


def test_date_ranges_compare_instants_and_dotted_keys_are_their_own_field():
    where = to_where(parse_filter({"d": {"gte": "2024-01", "lt": "2024-01-01T09:00+09:00"}}), lists=False)
    assert where.exact and where.clause == {"$and": [{"%t.d": {"$gte": 1704067200000000}}, {"%t.d": {"$lt": 1704067200000000}}]}
    assert to_where(parse_filter({"file\\.name": "a"}), lists=False).clause == {"file%2Ename": "a"}
    assert to_where(parse_filter({"file.name": {"exists": False}})).clause == {"%p": {"$not_contains": "file.name"}}


def test_negations_are_pushed_down_and_inverted():
    where = to_where(parse_filter({"$not": {"$or": [{"a": "x"}, {"b": {"exists": True}}]}}))
    assert where.exact
    assert where.clause == {
        "$and": [
            {"$and": [{"a": {"$ne": "x"}}, {"%v": {"$not_contains": '["a", "x"]'}}]},
            {"%p": {"$not_contains": "b"}},
        ]
    }
    assert to_where(parse_filter({"$not": {"$not": {"a": "x"}}})) == to_where(parse_filter({"a": "x"}))


def test_in_is_split_by_type_and_booleans_are_not_numbers():
    where = to_where(parse_filter({"a": ["x", 1, True, 1.0, "y"]}))
    assert where.clause["$or"][:3] == [{"a": {"$in": ["x", "y"]}}, {"a": True}, {"a": 1.0}]
    assert {"%v": {"$contains": '["a", true]'}} in where.clause["$or"] and {"%v": {"$contains": '["a", 1.0]'}} in where.clause["$or"]


def test_what_chroma_cannot_say_is_a_superset():
    string_range = to_where(parse_filter({"d": {"gte": "m"}}))
    assert string_range.clause == {"%p": {"$contains": "d"}} and not string_range.exact
    negated_range = to_where(parse_filter({"$not": {"r": {"gt": 1}}, "c": "x"}))
    assert negated_range.clause == {"$or": [{"c": "x"}, {"%v": {"$contains": '["c", "x"]'}}]} and not negated_range.exact
    assert to_where(parse_filter({"$or": [{"c": "x"}, {"$not": {"r": {"gt": 1}}}]})).clause is None


def test_empty_in_matches_nothing_and_empty_nin_everything(store):
    store.create_workspace("w")
    store.insert(nodes(5), "w")
    assert store.search_by_vector(vec(0), "w", top_k=5, filter_dict={"i": []}) == []
    assert len(store.search_by_vector(vec(0), "w", top_k=5, filter_dict={"i": {"nin": []}})) == 5


def test_awkward_keys_and_values_end_to_end(store):
    store.create_workspace("w")
    weird = [
        {"a b": {"c-d": i % 3}, "$x": i, "o": {"$x": i % 2}, "#y": "v", "%j": i, "chroma:document": "k", "é": [i, None], "a": {"b": "path"}, "a.b": "literal", "s": "\u00e9\x01"}
        for i in range(8)
    ]
    store.insert([VectorNode(unique_id=f"n{i}", content="", metadata=md, vector=vec(i)) for i, md in enumerate(weird)], "w")
    assert [n.metadata for n in store.get([f"n{i}" for i in range(8)], "w")] == weird
    for spec in [{"a b.c-d": 1}, {"o.$x": 1}, {"#y": "v"}, {"%j": 3}, {"chroma:document": "k"}, {"é": 3}, {"a.b": "path"}, {"a.b": "literal"}]:
        expected = {f"n{i}" for i, md in enumerate(weird) if matches(md, spec)}
        assert {h.unique_id for h in store.search_by_vector(vec(0), "w", top_k=8, filter_dict=spec)} == expected, spec


def test_post_filtered_search_fetches_more_until_top_k_match(store):
    store.create_workspace("w")
    near = [VectorNode(unique_id=f"near{i}", content="", metadata={"date": "2024-01-01"}, vector=vec(0) + 0.01 * vec(i + 1)) for i in range(150)]
    far = [VectorNode(unique_id=f"far{i}", content="", metadata={"date": "2025-06-01"}, vector=-vec(0) + 0.1 * vec(i + 500)) for i in range(4)]
    store.insert(near + far, "w")
    memory = MemoryVectorStore()
    memory.create_workspace("w")
    memory.insert(near + far, "w")
    for spec in [{"date": {"gte": "2025"}}, {"$not": {"date": {"lt": "2025"}}}]:
        got = store.search_by_vector(vec(0), "w", top_k=3, filter_dict=spec)
        assert [n.unique_id for n in got] == [n.unique_id for n in memory.search_by_vector(vec(0), "w", top_k=3, filter_dict=spec)]
    assert {n.unique_id for n in store.iter_workspace_nodes("w", filter_dict={"date": {"gt": "2024-12"}}, page_size=7)} == {f"far{i}" for i in range(4)}


def test_a_short_answer_from_chroma_is_not_taken_as_the_end(store, monkeypatch):
    # Chroma drops hits deleted since its index was flushed, so it may return fewer than asked.
    store.create_workspace("w")
    items = nodes(60, metadata=lambda i: {"even": i % 2 == 0})
    store.insert(items, "w")
    real = Collection.query

    def short(self, **kwargs):
        found = real(self, **kwargs)
        for key in ("ids", "metadatas", "documents"):
            found[key] = [row[:-1] for row in found[key]]
        return found

    monkeypatch.setattr(Collection, "query", short)
    memory = MemoryVectorStore()
    memory.create_workspace("w")
    memory.insert(items, "w")
    for spec in [None, {"even": True}]:
        got = store.search_by_vector(vec(3), "w", top_k=5, filter_dict=spec)
        assert [n.unique_id for n in got] == [n.unique_id for n in memory.search_by_vector(vec(3), "w", top_k=5, filter_dict=spec)]
    assert len(store.search_by_vector(vec(3), "w", top_k=60)) == 59  # what Chroma gave, once all was asked for


# ---- how Chroma stores things -----------------------------------------------------------------


def test_upsert_replaces_metadata_and_its_index(store):
    # Chroma's upsert merges the new metadata into the old; vecbook removes the keys the new version lacks.
    store.create_workspace("w")
    store.insert(VectorNode(unique_id="a", content="x", metadata={"old": 1, "tags": ["t"], "n": {"m": 1}}, vector=vec(0)), "w")
    store.insert(VectorNode(unique_id="a", content="x", metadata={"new": 2}, vector=vec(0)), "w")
    assert store.get("a", "w")[0].metadata == {"new": 2}
    for spec in [{"old": 1}, {"tags": "t"}, {"n.m": 1}, {"tags": {"exists": True}}]:
        assert store.search_by_vector(vec(0), "w", top_k=1, filter_dict=spec) == [], spec
    assert len(store.search_by_vector(vec(0), "w", top_k=1, filter_dict={"tags": {"ne": "t"}, "old": {"exists": False}})) == 1


def test_a_deleted_workspace_leaves_no_ghost_metadata(store):
    # chroma-core/chroma#7594: delete_collection keeps list-valued metadata, which records reusing the row ids inherit.
    store.create_workspace("old")
    store.insert(nodes(10, metadata=lambda i: {"tags": ["ghost"], "i": i}), "old")
    store.delete_workspace("old")
    store.create_workspace("new")
    store.insert(nodes(10, metadata=lambda i: {"i": i}), "new")
    assert store.search_by_vector(vec(0), "new", top_k=10, filter_dict={"tags": "ghost"}) == []
    assert len(store.search_by_vector(vec(0), "new", top_k=10, filter_dict={"tags": {"exists": False}})) == 10
    raw = chromadb.PersistentClient(path=store.store_dir).get_collection(collection_name("vecbook_", "new"), embedding_function=None)
    assert all(md.keys() == {"i", "%p", "%j", "%x"} for md in raw.get(include=["metadatas"])["metadatas"])


def test_chromas_default_embedder_is_never_called(store, monkeypatch):
    from chromadb.utils.embedding_functions import DefaultEmbeddingFunction

    def refuse(self, input):
        raise AssertionError("Chroma's default embedding function was called")

    monkeypatch.setattr(DefaultEmbeddingFunction, "__call__", refuse)
    store.create_workspace("w")
    store.insert(nodes(5), "w")
    store.search_by_vector(vec(0), "w", top_k=2, filter_dict={"i": {"gte": 1}})
    store.copy_workspace("w", "w2")
    assert len(list(store.iter_workspace_nodes("w2"))) == 5


def test_workspace_dropped_and_recreated_by_another_store(tmp_path):
    with ChromaVectorStore(store_dir=str(tmp_path)) as a, ChromaVectorStore(store_dir=str(tmp_path)) as b:
        a.create_workspace("w")
        a.insert(nodes(3), "w")
        b.delete_workspace("w")
        with pytest.raises(WorkspaceNotFoundError):
            a.count("w")
        b.create_workspace("w")
        b.insert(nodes(2), "w")
        assert a.count("w") == 2 and len(a.search_by_vector(vec(0), "w", top_k=5)) == 2


def test_ranges_are_exact_while_no_list_is_stored_and_lists_count_once_written(tmp_path):
    # A new collection carries vecbook:no_lists: ranges then need no clause for list elements.
    with ChromaVectorStore(store_dir=str(tmp_path)) as a, ChromaVectorStore(store_dir=str(tmp_path)) as b:
        a.create_workspace("w")
        a.insert(nodes(6, metadata=lambda i: {"r": i, "tag": f"t{i % 2}"}), "w")
        raw = chromadb.PersistentClient(path=str(tmp_path)).get_collection(collection_name("vecbook_", "w"), embedding_function=None)
        assert raw.metadata.get(NO_LISTS) is True
        spec = {"r": {"gte": 4}}
        assert {n.unique_id for n in a.search_by_vector(vec(0), "w", top_k=10, filter_dict=spec)} == {"n4", "n5"}
        # Another store writes a list: the flag goes, and the first store's ranges see list elements.
        b.insert(VectorNode(unique_id="l", content="", metadata={"r": [1, 9], "tag": ["t0", "x"]}, vector=vec(9)), "w")
        assert NO_LISTS not in chromadb.PersistentClient(path=str(tmp_path)).get_collection(collection_name("vecbook_", "w"), embedding_function=None).metadata
        for spec, expected in [({"r": {"gte": 4}}, {"n4", "n5", "l"}), ({"tag": "x"}, {"l"}), ({"tag": {"ne": "x"}}, {f"n{i}" for i in range(6)})]:
            assert {n.unique_id for n in a.search_by_vector(vec(0), "w", top_k=10, filter_dict=spec)} == expected, spec
            assert {n.unique_id for n in a.iter_workspace_nodes("w", filter_dict=spec)} == expected, spec


def test_a_workspace_made_before_the_flag_keeps_list_clauses(tmp_path):
    format_1_workspace(tmp_path, "w", [VectorNode(unique_id="l", content="", metadata={"r": [1, 9]}, vector=vec(1))])
    with ChromaVectorStore(store_dir=str(tmp_path)) as s:
        assert [n.unique_id for n in s.search_by_vector(vec(0), "w", top_k=5, filter_dict={"r": {"gte": 5}})] == ["l"]


def test_operations_reuse_the_collection_handle(store, monkeypatch):
    # The check before each operation answers from the handle; a fresh look-up only where it matters.
    store.create_workspace("w", dimensions=8)
    store.insert(nodes(5), "w")
    calls = []
    real = store._clients.embedded.client.get_collection
    monkeypatch.setattr(store._clients.embedded.client, "get_collection", lambda **kw: calls.append(kw) or real(**kw))
    store.search_by_vector(vec(0), "w", top_k=2)
    store.get("n1", "w")
    store.count("w")
    assert calls == []
    store.exist_workspace("w")
    assert len(calls) == 1


def test_a_workspace_created_without_dimensions_learns_them(store):
    store.create_workspace("w")
    assert store.search_by_vector(vec(0), "w") == []
    store.insert(nodes(3), "w")
    assert [n.unique_id for n in store.search_by_vector(vec(0), "w", top_k=1)] == ["n0"]
    with pytest.raises(DimensionMismatchError):
        store.search_by_vector(vec(0, dims=4), "w")


# ---- partial writes --------------------------------------------------------------------------------


class FailingUpsert:
    """Fails the ``fail_on``-th upsert (1-based), after writing it if ``land``; ``break_reads`` fails reads after that."""

    def __init__(self, fail_on: int, land: bool = False, break_reads: bool = False):
        self.real, self.real_get = Collection.upsert, Collection.get
        self.fail_on, self.land, self.break_reads, self.calls, self.failed = fail_on, land, break_reads, 0, False

    def upsert(self, collection, **kwargs):
        if collection.name == side_name(collection_name("vecbook_", "w")):  # the shape registry is not counted
            return self.real(collection, **kwargs)
        self.calls += 1
        if self.calls == self.fail_on:
            self.failed = True
            if self.land:
                self.real(collection, **kwargs)
            raise RuntimeError("disk full")
        return self.real(collection, **kwargs)

    def get(self, collection, **kwargs):
        if self.failed and self.break_reads:
            self.broken()
        return self.real_get(collection, **kwargs)

    @staticmethod
    def broken(*args, **kwargs):
        raise RuntimeError("still down")


@pytest.fixture
def failing(monkeypatch, tmp_path):
    def make(**kwargs) -> ChromaVectorStore:
        fault = FailingUpsert(**kwargs)
        monkeypatch.setattr(Collection, "upsert", lambda self, **kw: fault.upsert(self, **kw))
        monkeypatch.setattr(Collection, "get", lambda self, **kw: fault.get(self, **kw))
        s = ChromaVectorStore(store_dir=str(tmp_path), batch_size=4)
        s.create_workspace("w")
        return s

    return make


def stored(s) -> dict:
    return {n.unique_id: n.content for n in s.iter_workspace_nodes("w")}


def test_failure_midway_leaves_the_workspace_as_it_was(failing):
    s = failing(fail_on=3)
    s.insert([VectorNode(unique_id=f"n{i}", content="old", vector=vec(i)) for i in (1, 5)], "w")  # upsert call 1
    with pytest.raises(RuntimeError, match="disk full") as info:
        s.insert(nodes(10), "w")  # chunks of 4: call 2 lands, call 3 fails; n1 and n5 are put back
    assert not isinstance(info.value, PartialWriteError)
    assert stored(s) == {"n1": "old", "n5": "old"}


def test_a_chunk_that_landed_before_the_error_is_undone(failing):
    s = failing(fail_on=2, land=True)
    with pytest.raises(RuntimeError, match="disk full"):
        s.insert(nodes(10), "w")
    assert s.count("w") == 0


def test_an_undo_that_fails_too_names_the_nodes_in_doubt(failing, monkeypatch):
    s = failing(fail_on=2)
    monkeypatch.setattr(Collection, "delete", lambda self, **kw: FailingUpsert(0).broken())
    with pytest.raises(PartialWriteError, match="disk full.*still down") as info:
        s.insert(nodes(10), "w")  # undoing must delete n0..n7: deletes fail too
    assert info.value.written_ids == [f"n{i}" for i in range(8)]


# ---- the server ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_server_down_is_reported_quickly_naming_host_and_port(mode):
    port = free_port()
    with ChromaVectorStore(host="127.0.0.1", port=port) as s:
        error = unreachable(s, mode)
    assert f"127.0.0.1:{port}" in str(error) and isinstance(error, ConnectionError)


def test_server_that_never_answers_times_out():
    with silent_port() as port, ChromaVectorStore(host="127.0.0.1", port=port, connect_timeout=1) as s:
        assert f"127.0.0.1:{port}" in str(unreachable(s, within=4))


def test_server_mode_from_sync_code_and_many_event_loops(chroma_server, chroma_test_prefix):
    host, port = chroma_server
    with ChromaVectorStore(host=host, port=port, collection_prefix=chroma_test_prefix) as s:
        s.create_workspace("w")
        s.insert(nodes(20, metadata=lambda i: {"tags": [f"t{i % 3}"]}), "w")

        async def use(i: int) -> int:
            hits = await s.async_search_by_vector(vec(i), "w", top_k=20, filter_dict={"tags": f"t{i % 3}"})
            await s.async_insert(VectorNode(unique_id=f"loop{i}", content="", vector=vec(100 + i)), "w")
            return len(hits)

        # Each asyncio.run is a new event loop, and gets a client of its own.
        assert [asyncio.run(use(i)) for i in range(12)] == [7, 7, 6] * 4
        assert s.count("w") == 32 and len(s.search_by_vector(vec(0), "w", top_k=3)) == 3


def test_records_written_by_other_tools_are_read(store):
    store.create_workspace("w")
    raw = chromadb.PersistentClient(path=store.store_dir).get_collection(collection_name("vecbook_", "w"), embedding_function=None)
    raw.add(ids=["foreign"], embeddings=[vec(7).tolist()], metadatas=[{"kind": "raw"}], documents=["hi"])
    store.insert(nodes(2), "w")
    (got,) = store.get("foreign", "w")
    assert got.content == "hi" and got.metadata == {"kind": "raw"} and np.allclose(got.vector, vec(7), atol=1e-6)
    assert store.search_by_vector(vec(7), "w", top_k=1)[0].unique_id == "foreign"
    assert {n.unique_id for n in store.iter_workspace_nodes("w")} == {"foreign", "n0", "n1"}


def test_a_pooled_client_of_a_closed_loop_is_never_reused(chroma_server, chroma_test_prefix):
    # Chroma pools one httpx client per hash(event loop); a new loop can get a closed loop's hash.
    from chromadb.api.async_fastapi import AsyncFastAPI

    host, port = chroma_server
    with ChromaVectorStore(host=host, port=port, collection_prefix=chroma_test_prefix) as s:
        s.create_workspace("w")

        async def first() -> int:
            await s.async_count("w")
            return hash(asyncio.get_running_loop())

        stale = AsyncFastAPI._clients[asyncio.run(first())]  # bound to a loop that is now closed

        async def second() -> int:
            AsyncFastAPI._clients[hash(asyncio.get_running_loop())] = stale  # as if this loop had that hash
            return await s.async_count("w")

        assert asyncio.run(second()) == 0


def test_a_hit_deleted_while_chroma_answers_is_dropped(store, monkeypatch):
    # Chroma (embedded) may return a hit deleted meanwhile, with metadata and document None.
    store.create_workspace("w")
    items = nodes(12, metadata=lambda i: {"group": "g", "i": i})
    store.insert(items, "w")
    real = Collection.query
    vanished = []

    def racing(self, **kwargs):
        found = real(self, **kwargs)
        first = found["ids"][0][0]
        if not vanished:
            self.delete(ids=[first])
            vanished.append(first)
        found["metadatas"][0][0] = found["documents"][0][0] = None
        return found

    monkeypatch.setattr(Collection, "query", racing)
    hits = store.search_by_vector(vec(0), "w", top_k=3, filter_dict={"group": "g"})
    assert len(hits) == 3 and vanished[0] not in {h.unique_id for h in hits} and all(h.metadata["group"] == "g" for h in hits)
    hits = store.search_by_vector(vec(0), "w", top_k=3)  # the first hit is still there: read again
    assert len(hits) == 3 and all(h.metadata["group"] == "g" and h.content for h in hits)
