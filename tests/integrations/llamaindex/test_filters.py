"""vecbook.integrations.llamaindex: LlamaIndex's filters, operators and conditions, on every backend.

Each case's expected nodes follow LlamaIndex's own semantics (checked against its evaluator
first); the cases then run through ``VectorStoreIndex.as_retriever(filters=...)`` on every
embedded backend and on Elasticsearch through its in-process stand-in (``conftest.py`` here),
sync and async, offline (``HashEmbeddingModel`` through ``VecbookEmbedding``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex
from llama_index.core.vector_stores.types import (
    FilterCondition,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from tests.integrations.llamaindex.corpus import (
    ALL,
    METADATA,
    F,
    call,
    embed_model,
    filters,
    retrieve,
)
from vecbook import FilterError
from vecbook.integrations.llamaindex import to_vecbook_filter

# (name, MetadataFilters, the node ids LlamaIndex's own semantics select: see the test below)
CASES = [
    ("eq", filters(F("topic", "pets")), {"n1", "n2", "n4"}),
    ("eq-int", filters(F("year", 2024)), {"n4", "n5"}),
    ("eq-float-int", filters(F("rating", 3.0)), {"n2"}),
    ("ne-missing-matches", filters(F("topic", "pets", "!=")), {"n3", "n5", "n6"}),
    ("ne-null-matches", filters(F("note", "old", "!=")), ALL - {"n1"}),
    ("nin-null-and-empty-string", filters(F("note", ["old", ""], "nin")), {"n3", "n4", "n5", "n6"}),
    ("gt", filters(F("year", 2021, ">")), {"n2", "n4", "n5"}),
    ("gte", filters(F("year", 2021, ">=")), {"n2", "n3", "n4", "n5"}),
    ("lt", filters(F("rating", 3, "<")), {"n3"}),
    ("lte-float", filters(F("rating", 4.5, "<=")), {"n1", "n2", "n3"}),
    ("gt-string", filters(F("topic", "m", ">")), {"n1", "n2", "n4"}),
    ("in", filters(F("year", [2019, 2020, 2030], "in")), {"n1", "n6"}),
    ("in-strings", filters(F("topic", ["finance", "other"], "in")), {"n3", "n6"}),
    ("nin-missing-matches", filters(F("topic", ["finance"], "nin")), {"n1", "n2", "n4", "n5"}),
    ("nin-ints", filters(F("year", [2024, 2020], "nin")), {"n2", "n3", "n6"}),
    ("contains", filters(F("tags", "cat", "contains")), {"n1", "n2"}),
    ("contains-dog", filters(F("tags", "dog", "contains")), {"n2", "n4"}),
    ("any", filters(F("tags", ["dog", "bird"], "any")), {"n2", "n4"}),
    ("all", filters(F("tags", ["dog", "cat"], "all")), {"n2"}),
    ("is-empty", filters(F("tags", None, "is_empty")), {"n3", "n5", "n6"}),
    ("is-empty-string-null-missing", filters(F("note", None, "is_empty")), {"n2", "n3", "n4", "n5", "n6"}),
    ("dotted-key-is-literal", filters(F("file.name", "a.txt")), {"n6"}),
    ("dotted-key-ne", filters(F("file.name", "a.txt", "!=")), ALL - {"n6"}),
    ("missing-key-eq", filters(F("absent", "x")), set()),
    ("missing-key-ne", filters(F("absent", "x", "!=")), ALL),
    ("missing-key-gt", filters(F("absent", 1, ">")), set()),
    ("and", filters(F("topic", "pets"), F("year", 2022, ">=")), {"n2", "n4"}),
    ("or", filters(F("topic", "finance"), F("year", 2024), condition="or"), {"n3", "n4", "n5", "n6"}),
    ("not", filters(F("topic", "pets"), F("year", 2019), condition="not"), {"n3", "n5"}),
    ("not-ne", filters(F("topic", "pets", "!="), condition="not"), {"n1", "n2", "n4"}),
    ("empty", filters(), ALL),
    (
        "nested-and-or",
        filters(F("year", 2020, ">="), filters(F("topic", "finance"), F("tags", "dog", "contains"), condition="or")),
        {"n2", "n3", "n4"},
    ),
    (
        "nested-not-in-or",
        filters(F("rating", 5, ">="), filters(F("topic", "pets"), F("topic", "finance"), condition="not"), condition="or"),
        {"n5"},
    ),
    (
        "nested-or-in-not",
        filters(filters(F("tags", None, "is_empty"), F("year", 2024), condition="or"), condition="not"),
        {"n1", "n2"},
    ),
    ("nested-empty-and-is-neutral", filters(F("topic", "pets"), filters()), {"n1", "n2", "n4"}),
    ("nested-empty-or-matches-nothing", filters(F("topic", "pets"), filters(condition="or")), set()),
]


def reference(case_filters: MetadataFilters) -> set[str]:
    """LlamaIndex's own filter semantics on METADATA: its SimpleVectorStore evaluator for each
    filter, groups combined by their condition (the evaluator takes no nested groups itself)."""
    if not case_filters.filters:
        return set(ALL)
    return _group(case_filters)


def _group(group: MetadataFilters) -> set[str]:
    sets = []
    for item in group.filters:
        if isinstance(item, MetadataFilters):
            sets.append(_group(item))
        else:
            keep = build_metadata_filter_fn(lambda node_id: METADATA[node_id], MetadataFilters(filters=[item]))
            sets.append({node_id for node_id in METADATA if keep(node_id)})
    condition = FilterCondition(group.condition or FilterCondition.AND)
    if condition == FilterCondition.AND:
        return set.intersection(set(ALL), *sets)
    union = set().union(*sets)
    return union if condition == FilterCondition.OR else set(ALL) - union


@pytest.mark.parametrize("name,case,expected", CASES, ids=[c[0] for c in CASES])
def test_expected_sets_follow_llamaindex_reference_semantics(name, case, expected):
    """The expected sets are LlamaIndex's own semantics (a missing key matches only NE and NIN)."""
    assert reference(case) == expected
    if all(isinstance(item, MetadataFilter) for item in case.filters):  # flat: the evaluator as LlamaIndex runs it
        keep = build_metadata_filter_fn(lambda node_id: METADATA[node_id], case)
        assert {node_id for node_id in METADATA if keep(node_id)} == expected


async def check_cases(index: VectorStoreIndex, mode: str, names: set[str] | None = None, skip: set[str] = frozenset()) -> dict:
    wrong = {}
    for name, case, expected in CASES:
        if (names is not None and name not in names) or name in skip:
            continue
        hits = await retrieve(index, mode, "cat dog markets", similarity_top_k=10, filters=case)
        got = {hit.node.node_id for hit in hits}
        if got != expected:
            wrong[name] = (sorted(got), sorted(expected))
        for hit in hits:
            assert hit.node.metadata == METADATA[hit.node.node_id]
    return wrong


async def test_every_filter_through_the_retriever(index, vs, mode):
    """Every operator and condition, including keys that contain a dot, through
    VectorStoreIndex.as_retriever(filters=...), on each backend."""
    assert not await check_cases(index, mode)


async def test_filters_with_top_k_rank_among_the_matching(index, mode):
    hits = await retrieve(index, mode, "the dog", similarity_top_k=2, filters=filters(F("topic", "pets")))
    assert len(hits) == 2 and {h.node.node_id for h in hits} <= {"n1", "n2", "n4"}
    assert hits[0].node.node_id in {"n2", "n4"} and hits[0].score >= hits[1].score


async def test_doc_ids_restrict_the_query(index, mode):
    hits = await retrieve(index, mode, "cat", similarity_top_k=10, doc_ids=["d1", "d3"], filters=filters(F("year", 2022, ">=")))
    assert {h.node.node_id for h in hits} == {"n2", "n4", "n5"}


async def test_node_ids_restrict_the_query(vs, index, mode):
    query = embed_model().get_query_embedding("the cat sat")
    q = VectorStoreQuery(query_embedding=query, similarity_top_k=2, node_ids=["n1", "n3", "n4", "missing"])
    result = await call(vs, mode, "query", q)
    assert result.ids == ["n1", "n4"] or result.ids == ["n1", "n3"]
    full = await call(vs, mode, "query", VectorStoreQuery(query_embedding=query, similarity_top_k=6))
    by_id = dict(zip(full.ids, full.similarities))
    assert result.ids[0] == "n1" and result.similarities == pytest.approx([by_id[i] for i in result.ids], abs=1e-5)
    q = VectorStoreQuery(query_embedding=query, similarity_top_k=5, node_ids=["n1", "n3", "n4"], filters=filters(F("topic", "pets")))
    assert (await call(vs, mode, "query", q)).ids == ["n1", "n4"]




def test_filter_translation():
    assert to_vecbook_filter(None) is None
    assert to_vecbook_filter(filters()) is None
    assert to_vecbook_filter(filters(condition="or")) is None  # as LlamaIndex's stores: no filters, no filter
    assert to_vecbook_filter(filters(F("a", 1))) == {"a": {"eq": 1}}
    assert to_vecbook_filter(filters(F("a", 1), F("b", [2], "nin"))) == {"$and": [{"a": {"eq": 1}}, {"b": {"nin": [2]}}]}
    assert to_vecbook_filter(F("a", 1, "!=")) == {"a": {"ne": 1}}
    assert to_vecbook_filter(filters(F("file.name", "x"))) == {"file\\.name": {"eq": "x"}}
    assert to_vecbook_filter(filters(F("t", None, "is_empty"))) == {"$or": [{"t": {"exists": False}}, {"t": {"eq": ""}}]}
    assert to_vecbook_filter(filters(F("a", 1), F("b", 2), condition="not")) == {"$not": {"$or": [{"a": {"eq": 1}}, {"b": {"eq": 2}}]}}
    for bad in [F("a", [1, 2]), F("a", 1, "in"), F("a", None), F("a", "x", "text_match_insensitive")]:
        with pytest.raises(FilterError):
            to_vecbook_filter(filters(bad))


