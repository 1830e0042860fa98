"""The Qdrant and Elasticsearch translations select what the reference evaluator selects.

Random metadata with ints at 2**53 and the int64 limits, floats beyond, strings with NULs,
ISO dates with offsets and fractions, keys with dots; random filters over them. Qdrant
filters run through qdrant-client's local-mode evaluator (its float and int comparisons are
Python's, which equal the server's float64 ones on the values the translation compares:
float64 values and bounds, small int rests); Elasticsearch queries through the stand-in's
query engine.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle import matches
from tests.unit.test_filters import BIG_INTS, DATES, FLOATS, TEXTS, rich_filters, rich_metadata
from vecbook.filters import filter_mask, parse_filter

SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CORNERS = [
    {"n": 2**53 + 1},
    {"n": 2**53},
    {"n": float(2**53)},
    {"n": [2**53 + 2, 2**53 - 1]},
    {"n": 2**63 - 1},
    {"n": 2.0**63},
    {"n": -(2**63)},
    {"n": -(2**63) + 1},
    {"n": 0.5},
    {"n": True},
    {"n": "2**53"},
    {"n": "2024-01-01T05:00:00+09:00"},
    {"n": "2024-01-01T00:00:00.5Z"},
    {"n": "1500-01-01T00:00:00.000001"},
    {"n": "a\x00"},
    {"file.name": "a.txt"},
    {"file": {"name": "a.txt"}},
    {},
]
CORNER_FILTERS = [
    {"n": 2**53 + 1},
    {"n": {"ne": 2**53}},
    {"n": float(2**53)},
    {"n": {"in": [2**53 + 2, 2**63 - 1]}},
    {"n": {"gt": 2**53}},
    {"n": {"gte": 2**53 + 1, "lt": 2**53 + 2}},
    {"n": {"lte": 2**63 - 1}},
    {"n": {"gt": 2**63 - 1}},
    {"n": {"lt": -(2**63) + 1}},
    {"n": {"gte": -(2.0**63), "lte": -(2**63)}},
    {"n": {"gte": 0, "lt": 1}},
    {"n": {"gte": "2024-01-01"}},
    {"n": {"lt": "2024-01-01T00:00:00.5Z"}},
    {"n": {"lt": "1500-01-01T00:00:00.000002", "gt": "1500-01"}},
    {"n": {"gte": "a"}},
    {"n": "a\x00"},
    {"file\\.name": "a.txt"},
    {"file.name": "a.txt"},
    {"file\\.name": {"exists": False}},
]


# ---- Qdrant -------------------------------------------------------------------------------------


def qdrant_selects(tree, metadatas):
    pytest.importorskip("qdrant_client")
    from qdrant_client.local.payload_filters import check_filter

    from vecbook.stores.qdrant.filters import FIELDS_KEY, PRESENT_KEY, filter_payload, plan_filter

    plan = plan_filter(tree)
    expected = filter_mask(tree, metadatas)
    if plan.empty:
        return np.zeros(len(metadatas), dtype=bool)
    payloads = []
    for md in metadatas:
        present, fields = filter_payload(md)
        payloads.append({"metadata": md, PRESENT_KEY: present, FIELDS_KEY: fields})
    native = np.array([plan.filter is None or check_filter(plan.filter, p, i, {}) for i, p in enumerate(payloads)], dtype=bool)
    if plan.exact:
        return native
    assert not (expected & ~native).any(), "a post-filtered plan must select a superset"
    return native & expected


def server_parses(key: str) -> bool:
    """Whether a Qdrant server (lib/segment json_path parser, 1.x) reads ``key``: keys are
    ``"quoted"`` (no ``"`` or ``\\`` inside) or raw (letters, digits, ``_``, ``-``; recent
    servers want a letter, ``_`` or ``-`` first), joined by ``.``, each maybe followed by ``[]``
    or ``[n]``."""
    import re

    raw = r"[^\W\d][\w-]*|-[\w-]*"
    part = rf'(?:{raw}|"[^"\\]*")(?:\[\d*\])*'
    return re.fullmatch(rf"{part}(?:\.{part})*", key) is not None


def condition_keys(condition):
    from qdrant_client import models

    if isinstance(condition, models.Filter):
        for clause in (condition.must, condition.should, condition.must_not):
            for c in clause or []:
                yield from condition_keys(c)
    elif isinstance(condition, models.NestedCondition):
        yield condition.nested.key
        yield from condition_keys(condition.nested.filter)
    else:
        yield condition.key


WEIRD_KEYS = ["file\\.name", "a\\\\b", 'q"k', "2024", "é", "sp ace", "-x", "_y", "a[0]", "x\\.y.z"]


@pytest.mark.parametrize("key", WEIRD_KEYS)
@pytest.mark.parametrize("condition", ["x", 1, 2**53 + 1, {"gte": 2**60 + 1}, {"gte": "2024-01"}, {"in": ["a", True, 0.5]}, {"exists": True}], ids=repr)
def test_qdrant_filters_name_only_keys_a_server_parses(key, condition):
    pytest.importorskip("qdrant_client")
    from vecbook.stores.qdrant.filters import index_schemas, plan_filter

    assert server_parses('"file.name"') and server_parses("a.b[].c") and not server_parses('"a\\b"') and not server_parses("2024")
    tree = parse_filter({key: condition, "other": {"ne": 1}})
    plan = plan_filter(tree)
    assert plan.exact
    keys = list(condition_keys(plan.filter)) + list(index_schemas(plan.filter))
    assert keys and all(server_parses(k) for k in keys), keys


# ---- Elasticsearch ---------------------------------------------------------------------------


def es_selects(tree, metadatas):
    pytest.importorskip("elasticsearch")
    from tests.helpers.es_standin.indices import Index
    from tests.helpers.es_standin.mapping import Mapping
    from tests.helpers.es_standin.query import parse_query
    from vecbook.stores.elasticsearch.filters import FIELD, filter_terms, to_query

    mapping = {"dynamic": "strict", "properties": {"metadata": {"type": "object", "enabled": False}, FIELD: {"type": "keyword"}}}
    index = Index("t", Mapping.parse(mapping), {})
    for i, md in enumerate(metadatas):
        index.write(str(i), {"metadata": md, FIELD: filter_terms(md)}, "index")
    index.refresh()
    return parse_query(to_query(tree), index.mapping)(index.searcher)


# ---- both translations -----------------------------------------------------------------------

SELECTS = {"qdrant": qdrant_selects, "es": es_selects}


@pytest.mark.parametrize("spec", CORNER_FILTERS, ids=repr)
@pytest.mark.parametrize("backend", SELECTS)
def test_corners(backend, spec):
    tree = parse_filter(spec)
    assert SELECTS[backend](tree, CORNERS).tolist() == [matches(md, spec) for md in CORNERS]


@pytest.mark.parametrize("backend", SELECTS)
@SETTINGS
@given(st.lists(rich_metadata(), min_size=1, max_size=12), rich_filters)
def test_translation_selects_what_filter_mask_selects(backend, metadatas, spec):
    tree = parse_filter(spec)
    assert SELECTS[backend](tree, metadatas).tolist() == filter_mask(tree, metadatas).tolist()


def test_the_pools_cover_the_rules():
    """The random metadata above reaches every rule (a guard against a pool edited away)."""
    assert any(abs(n) > 2**53 for n in BIG_INTS) and 2**63 - 1 in BIG_INTS and -(2**63) in BIG_INTS
    assert any(isinstance(x, float) and x >= 2**53 for x in FLOATS)
    assert any("\x00" in t for t in TEXTS) and any("+" in d or d.endswith("Z") for d in DATES)
