"""A small workspace whose metadata exercises every filter edge: types, lists, nesting, missing fields."""

from __future__ import annotations

import numpy as np

from vecbook import VectorNode

CATEGORIES = ["AI", "ai", "tech", "AI lab", ""]


def metadata(i: int) -> dict:
    md: dict = {
        "category": CATEGORIES[i % 5],
        "rank": i,
        "ratio": round(i / 7, 3),
        "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "flag": i % 3 == 0,
    }
    if i % 4 == 0:
        md["tags"] = ["x", "y"] if i % 8 == 0 else ["y", "z", 3]
    if i % 6 == 1:
        md["tags"] = "x"  # a scalar where others have lists
    if i % 5 == 2:
        md["nested"] = {"level": i % 3, "name": f"n{i % 4}", "deep": {"v": i % 2 == 0}}
    if i % 7 == 3:
        md["optional"] = None
    if i % 9 == 4:
        md["mixed"] = "10"  # a string that looks like a number
    elif i % 9 == 5:
        md["mixed"] = 10
    if i % 11 == 0:
        md["empty_list"] = []
        md["nulls"] = [None, None] if i % 22 == 0 else [None, "v"]
    if i % 10 == 9:
        del md["rank"]
    return md


def nodes(count: int = 40, dims: int = 16) -> list[VectorNode]:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((count, dims)).astype(np.float32)
    return [VectorNode(unique_id=f"d{i:03d}", content=f"document {i}", metadata=metadata(i), vector=vectors[i]) for i in range(count)]


FILTERS = [
    {"category": "AI"},
    {"category": "ai"},
    {"category": ""},
    {"category": "AI", "flag": True},
    {"category": ["AI", "tech"]},
    {"category": {"in": ["ai", "nothing"]}},
    {"category": {"ne": "AI"}},
    {"category": {"nin": ["AI", "ai"]}},
    {"category": {"eq": "tech"}},
    {"rank": 5},
    {"rank": 5.0},
    {"rank": {"gte": 10, "lte": 20}},
    {"rank": {"gt": 10, "lt": 20}},
    {"rank": {"$gte": 35}},
    {"ratio": {"lt": 1.5}},
    {"ratio": {"gte": 1.0, "lte": 1.0}},
    {"rank": {"ne": 3}},
    {"rank": {"exists": False}},
    {"rank": {"exists": True}, "flag": False},
    {"flag": True},
    {"flag": False},
    {"flag": 1},
    {"date": {"gte": "2024-03-01", "lt": "2024-07-01"}},
    {"date": {"lte": "2024-02-15"}},
    {"date": "2024-05-05"},
    {"tags": "x"},
    {"tags": "y"},
    {"tags": 3},
    {"tags": ["z", "nope"]},
    {"tags": {"ne": "x"}},
    {"tags": {"nin": ["y"]}},
    {"tags": {"exists": True}},
    {"tags": {"exists": False}},
    {"tags": {"gte": 3}},
    {"nested.level": 1},
    {"nested.name": {"in": ["n0", "n2"]}},
    {"nested.deep.v": True},
    {"nested.level": {"gte": 1}, "category": {"ne": "AI"}},
    {"nested": {"exists": False}},
    {"empty_list": {"exists": True}},
    {"nulls": {"exists": True}},
    {"empty_list": {"ne": "x"}},
    {"nested": {"exists": True}},
    {"optional": {"exists": False}},
    {"optional": {"exists": True}},
    {"mixed": 10},
    {"mixed": "10"},
    {"mixed": {"gte": 5}},
    {"mixed": {"gte": "0"}},
    {"missing_field": "x"},
    {"missing_field": {"ne": "x"}},
    {"$or": [{"category": "AI"}, {"rank": {"lt": 3}}]},
    {"$and": [{"category": "AI"}, {"rank": {"lt": 20}}]},
    {"$not": {"category": "AI"}},
    {"$not": {"$or": [{"flag": True}, {"tags": "y"}]}},
    {"$or": [{"$and": [{"flag": True}, {"rank": {"gt": 20}}]}, {"nested.level": 2}], "category": {"ne": ""}},
    {"$and": [{"rank": {"gte": 5}}, {"rank": {"lte": 25}}], "$not": {"tags": {"exists": True}}},
]

BAD_FILTERS = [
    {"category": None},
    {"rank": {"between": [1, 2]}},
    {"rank": {"gte": 1, "lte": "2"}},
    {"rank": {"gte": True}},
    {"rank": {"gte": None}},
    {"rank": {"gte": [1]}},
    {"$xor": [{"a": 1}]},
    {"$or": []},
    {"$or": {"a": 1}},
    {"$not": [{"a": 1}]},
    {"a": {"in": "abc"}},
    {"a": {"exists": "yes"}},
    {"a": {}},
    {"a": {"b": 1}},
    {"": 1},
    {"a..b": 1},
    {"a": {"x": 1}},
    {"a": float("nan")},
    {"a": object()},
    {"a": [None]},
    ["not", "a", "dict"],
]
