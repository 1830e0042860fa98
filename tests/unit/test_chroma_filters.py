"""Chroma's ``where`` clauses from vecbook filters, run by a real (embedded) Chroma.

A few hundred metadata records (ints at 2**53 and the int64 limits, floats beyond,
strings with NULs, ISO dates with offsets and fractions, keys with dots, lists, nested
dicts) are encoded as the store encodes them; random filters over them must select,
through Chroma, what the reference evaluator selects (a superset where the translation
says it is not exact).
"""

from __future__ import annotations

import random
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from tests.unit.test_filter_translations import CORNER_FILTERS, CORNERS
from tests.unit.test_filters import BIG_INTS, DATES, FLOATS, TEXTS, rich_filters
from vecbook.filters import filter_mask, parse_filter

chromadb = pytest.importorskip("chromadb")

from vecbook.stores.chroma.filters import chroma_key, decode_metadatas, encode_metadata, to_where  # noqa: E402

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _pool(seed: int, count: int, lists: bool) -> list[dict]:
    rng = random.Random(seed)
    scalars = [*TEXTS, *DATES, *BIG_INTS, *FLOATS, -3, -1, 0, 1, 2, 3, 0.5, True, False]

    def value(depth: int = 0):
        kind = rng.random()
        if kind < 0.1:
            return None
        if lists and kind < 0.3:
            return [rng.choice([*scalars, None]) for _ in range(rng.randint(0, 3))]
        if depth == 0 and kind < 0.45:
            return {k: value(1) for k in rng.sample(["x", "y", "g"], rng.randint(0, 2))}
        return rng.choice(scalars)

    return [{k: value() for k in ("a", "b", "f.g", "n", "f") if rng.random() < 0.6} for _ in range(count)]


def _collection(metadatas: list[dict]):
    client = chromadb.PersistentClient(path=tempfile.mkdtemp())
    collection = client.create_collection("filters", embedding_function=None)
    ids = [str(i) for i in range(len(metadatas))]
    collection.add(ids=ids, embeddings=np.ones((len(ids), 2)), metadatas=[encode_metadata(md) for md in metadatas])
    return collection


@pytest.fixture(scope="module")
def with_lists():
    metadatas = CORNERS + _pool(1, 300, lists=True)
    return metadatas, _collection(metadatas)


@pytest.fixture(scope="module")
def without_lists():
    metadatas = [md for md in CORNERS if not any(isinstance(v, list) for v in md.values())] + _pool(2, 300, lists=False)
    return metadatas, _collection(metadatas)


def chroma_selects(metadatas, collection, spec, lists: bool) -> np.ndarray:
    tree = parse_filter(spec)
    where = to_where(tree, lists=lists)
    found = collection.get(where=where.clause, include=[])["ids"] if where.clause is not None else [str(i) for i in range(len(metadatas))]
    native = np.zeros(len(metadatas), dtype=bool)
    native[[int(i) for i in found]] = True
    expected = filter_mask(tree, metadatas)
    assert not (expected & ~native).any(), f"{spec}: the where misses nodes that match"
    if where.exact:
        assert (native == expected).all(), f"{spec}: an exact where selects more"
    return native & expected


def test_the_pools_round_trip(with_lists):
    metadatas, collection = with_lists
    found = collection.get(ids=[str(i) for i in range(len(metadatas))], include=["metadatas"])
    assert decode_metadatas(found["metadatas"]) == metadatas


@pytest.mark.parametrize("spec", CORNER_FILTERS, ids=repr)
def test_corners(with_lists, without_lists, spec):
    for (metadatas, collection), lists in [(with_lists, True), (without_lists, False)]:
        chroma_selects(metadatas, collection, spec, lists)


@SETTINGS
@given(rich_filters)
def test_random_filters_with_lists(with_lists, spec):
    chroma_selects(*with_lists, spec, lists=True)


@SETTINGS
@given(rich_filters)
def test_random_filters_without_lists_are_exact_but_for_string_ranges(without_lists, spec):
    chroma_selects(*without_lists, spec, lists=False)
    tree = parse_filter(spec)
    if "'gt'" not in repr(spec) and "'lt'" not in repr(spec) and "'gte'" not in repr(spec) and "'lte'" not in repr(spec):
        assert to_where(tree, lists=False).exact, spec


def test_keys_escape_dots_inside_segments():
    assert chroma_key(("file.name",)) == "file%2Ename" and chroma_key(("file", "name")) == "file.name"
    assert chroma_key(("%j",)) == "%25j" and chroma_key(("$x", "#y")) == "%24x.%23y" and chroma_key(("chroma:document",)) == "chroma%3Adocument"
    stored = encode_metadata({"file.name": "a", "file": {"name": "b"}, "n": 2**53 + 1, "d": "2024-01-01", "": 1})
    assert stored["file%2Ename"] == "a" and stored["file.name"] == "b"
    assert stored["n"] == 2.0**53 and stored["%r.n"] == 1 and stored["%t.d"] == 1704067200000000
    assert stored["%p"] == ["file%2Ename", "file", "file.name", "n", "d"]
