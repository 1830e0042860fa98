"""A NodeTable's filter columns follow its writes (updated in place, not rebuilt)."""

from __future__ import annotations

import numpy as np


def test_filter_columns_follow_writes_incrementally():
    """Filters after upserts, in-place updates and deletes agree with a table rebuilt from scratch."""
    from vecbook.filters import parse_filter
    from vecbook.stores.engine.batch import NodeBatch
    from vecbook.stores.engine.table import NodeTable

    rng = np.random.default_rng(5)
    table = NodeTable()
    filters = [
        {"tag": "a"}, {"tag": {"ne": "b"}}, {"n": {"gte": 3}}, {"tag": {"gte": "b"}}, {"tags": ["x", "z"]},
        {"flag": True}, {"tag": {"exists": False}}, {"$or": [{"n": {"lt": 2}}, {"tags": "y"}]},
    ]

    def meta(i):
        choice = rng.integers(0, 6)
        return [{"tag": str(rng.choice(list("abcd"))), "n": int(rng.integers(0, 6))}, {"tags": list(rng.choice(list("xyz"), 2))},
                {"flag": bool(rng.integers(0, 2)), "n": float(rng.integers(0, 6))}, {}, {"tag": None}, {"tag": "zz", "tags": []}][choice]

    for step in range(40):
        ids = [f"n{j}" for j in rng.integers(0, 300, int(rng.integers(1, 40)))]
        ids = list(dict.fromkeys(ids))
        if step % 3 == 2:
            table.delete(ids[:10])
        else:
            table.upsert(NodeBatch(ids, [""] * len(ids), [meta(j) for j in range(len(ids))], rng.standard_normal((len(ids), 4)).astype(np.float32)))
        fresh = NodeTable()
        live = table.live_rows()
        fresh.upsert(table.batch(live))
        for spec in filters:
            node = parse_filter(spec)
            got = sorted(table.ids[r] for r in table.filter_rows(node))
            assert got == sorted(fresh.ids[r] for r in fresh.filter_rows(node)), (step, spec)
