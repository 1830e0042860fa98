"""The LlamaIndex tests' corpus: six nodes whose metadata exercise every filter operator, and call helpers."""

from __future__ import annotations

from llama_index.core import VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from vecbook import HashEmbeddingModel
from vecbook.integrations.llamaindex import VecbookEmbedding

DIMS = 256  # few hash collisions among the test texts


def embed_model() -> VecbookEmbedding:
    return VecbookEmbedding(HashEmbeddingModel(dimensions=DIMS))


def text_node(node_id: str, text: str, metadata: dict, doc: str) -> TextNode:
    return TextNode(
        id_=node_id,
        text=text,
        metadata=metadata,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
    )


# Scalar fields (topic, year, rating, note) and a list field (tags); some nodes lack some keys.
METADATA = {
    "n1": {"topic": "pets", "year": 2020, "rating": 4.5, "tags": ["cat"], "note": "old"},
    "n2": {"topic": "pets", "year": 2022, "rating": 3, "tags": ["dog", "cat"], "note": ""},
    "n3": {"topic": "finance", "year": 2021, "rating": 2.5, "tags": []},
    "n4": {"topic": "pets", "year": 2024, "tags": ["dog"], "score": "own"},
    "n5": {"year": 2024, "rating": 5, "note": None},
    "n6": {"topic": "finance", "year": 2019, "file.name": "a.txt"},
}
TEXTS = {
    "n1": "the cat sat on the mat",
    "n2": "a dog chased the cat",
    "n3": "stock markets fell sharply",
    "n4": "the dog sleeps all day",
    "n5": "interest rates and bonds",
    "n6": "quarterly earnings report",
}
DOC_OF = {"n1": "d1", "n2": "d1", "n3": "d2", "n4": "d3", "n5": "d3", "n6": "d2"}
ALL = set(METADATA)


def nodes() -> list[TextNode]:
    return [text_node(i, TEXTS[i], dict(METADATA[i]), DOC_OF[i]) for i in METADATA]




async def retrieve(index: VectorStoreIndex, mode: str, query: str, **kwargs):
    retriever = index.as_retriever(**kwargs)
    return await retriever.aretrieve(query) if mode == "async" else retriever.retrieve(query)


async def call(obj, mode: str, name: str, *args, **kwargs):
    """``obj.name(...)`` in sync mode, ``await obj.<async twin>(...)`` in async mode."""
    if mode == "async":
        twin = {"add": "async_add"}.get(name, f"a{name}")
        return await getattr(obj, twin)(*args, **kwargs)
    return getattr(obj, name)(*args, **kwargs)


def F(key, value, op="=="):
    return MetadataFilter(key=key, value=value, operator=FilterOperator(op))


def filters(*items, condition="and"):
    return MetadataFilters(filters=list(items), condition=FilterCondition(condition))


