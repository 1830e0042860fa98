"""The vecbook-side keyword index: tokenizer, BM25 index, fusion, and the local store's keyword index."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.helpers.children import CHILD_ENV
from vecbook import LocalVectorStore, MemoryVectorStore, MissingDependencyError, VectorNode
from vecbook.node import VectorNode as Node
from vecbook.stores.fusion import hybrid_depth, rrf
from vecbook.stores.keyword.bm25 import Bm25Index
from vecbook.stores.keyword.tokens import tokenize

pytest.importorskip("tantivy")


def node(i: str, content: str = "") -> VectorNode:
    return VectorNode(unique_id=i, content=content, vector=np.ones(4, dtype=np.float32))


def test_tokenize_lowercases_and_splits_on_unicode_word_boundaries():
    assert tokenize("Hello, WORLD! Ça va? foo_bar 3.14 don't") == ["hello", "world", "ça", "va", "foo_bar", "3", "14", "don", "t"]
    assert tokenize("") == [] and tokenize("...") == []
    assert tokenize("y" * 300) == ["y" * 255, "y" * 45]


def test_bm25_index_ranks_by_lucene_bm25_and_orders_ties_by_name():
    index = Bm25Index(enumerate(["apple", "apple apple", "pear", "apple", "apple"]))
    top = index.top("apple", 3, name=lambda key: -key)  # ties: the larger key first here
    assert [key for key, _ in top] == [1, 4, 3]
    assert top[1][1] == top[2][1] < top[0][1]
    n, df, avgdl = 5, 4, 6 / 5
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    assert top[1][1] == pytest.approx(idf * 1 / (1 + 1.2 * (0.25 + 0.75 * 1 / avgdl)), rel=1e-3)
    assert index.top("banana", 5) == [] and index.top("", 5) == []


def test_rrf_sums_reciprocal_ranks_over_the_lists():
    a, b, c = Node(unique_id="a"), Node(unique_id="b"), Node(unique_id="c")
    fused = rrf([[a, b], [b, c]], top_k=3, k=60)
    assert [n.unique_id for n, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert hybrid_depth(1) == 50 and hybrid_depth(100) == 200


def test_local_keyword_results_follow_writes_of_another_store_on_the_same_folder(tmp_path):
    reader, writer = LocalVectorStore(store_dir=tmp_path), LocalVectorStore(store_dir=tmp_path)
    writer.create_workspace("w")
    writer.insert([node("a", "red apple"), node("b", "green pear")], "w")
    assert [h.unique_id for h in reader.search("apple", "w", top_k=5, mode="keyword")] == ["a"]
    writer.insert(node("c", "apple apple pie"), "w")
    writer.delete("a", "w")
    assert [h.unique_id for h in reader.search("apple", "w", top_k=5, mode="keyword")] == ["c"]
    reader.close(), writer.close()
    reopened = LocalVectorStore(store_dir=tmp_path)  # nothing of the index is on disk: rebuilt from the log and snapshot
    assert [h.unique_id for h in reopened.search("pear apple", "w", top_k=5, mode="keyword")] == ["c", "b"]
    reopened.close()


CHILD = """
import sys, numpy as np, vecbook
store = vecbook.LocalVectorStore(store_dir=sys.argv[1])
store.insert(vecbook.VectorNode(unique_id="child", content="apple from another process", vector=np.ones(4)), "w")
store.delete("c", "w")
store.close()
"""


def test_local_keyword_results_follow_writes_of_another_process(tmp_path):
    store = LocalVectorStore(store_dir=tmp_path)
    store.create_workspace("w")
    store.insert([node("c", "apple apple pie"), node("d", "pear")], "w")
    assert [h.unique_id for h in store.search("apple", "w", top_k=5, mode="keyword")] == ["c"]  # the index is built
    subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], check=True, env=CHILD_ENV, timeout=120)
    assert [h.unique_id for h in store.search("apple", "w", top_k=5, mode="keyword")] == ["child"]
    store.close()


def test_without_tantivy_keyword_search_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tantivy", None)
    store = MemoryVectorStore()
    store.create_workspace("w")
    store.insert(node("a", "apple"), "w")
    with pytest.raises(MissingDependencyError, match=r"vecbook\[keyword\]"):
        store.search("apple", "w", mode="keyword")
    assert [h.unique_id for h in store.search_by_vector(np.ones(4), "w")] == ["a"]  # vector search needs no tantivy


@pytest.mark.parametrize("kind", ["memory", "qdrant"])  # a table index; a scan index (Chroma's is the same code)
def test_an_index_kept_up_to_date_write_by_write_matches_what_a_fresh_one_finds(kind):
    rng = np.random.default_rng(5)
    words = ["alpha", "beta", "gamma", "delta", "omega"]
    if kind == "qdrant":
        pytest.importorskip("qdrant_client")
        from vecbook import QdrantVectorStore

        store = QdrantVectorStore(location=":memory:")
    else:
        store = MemoryVectorStore()
    store.create_workspace("w")
    live: dict[str, str] = {}
    for step in range(60):
        if live and rng.random() < 0.3:
            victim = sorted(live)[rng.integers(len(live))]
            store.delete(victim, "w")
            del live[victim]
        else:
            i, text = f"n{rng.integers(40)}", " ".join(rng.choice(words, size=3))
            store.insert(node(i, text), "w")
            live[i] = text
        query = str(rng.choice(words))
        found = {h.unique_id for h in store.search(query, "w", top_k=100, mode="keyword")}
        assert found == {i for i, text in live.items() if query in text.split()}, f"step {step}"
    store.close()
