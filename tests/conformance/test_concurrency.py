"""Concurrent use of one store: async tasks and threads interleaving inserts, deletes and searches."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from vecbook import VectorNode

DIMS = 16


def node(name: str, seed: int) -> VectorNode:
    vector = np.random.default_rng(seed).standard_normal(DIMS).astype(np.float32)
    return VectorNode(unique_id=name, content=name, metadata={"group": name.split("-")[0]}, vector=vector)


def check_results(results: list[VectorNode], top_k: int, known: set[str]) -> None:
    assert len(results) == top_k
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert len({r.unique_id for r in results}) == top_k
    assert {r.unique_id for r in results} <= known


async def test_async_tasks_interleave_consistently(make):
    api = make("async")
    await api.create_workspace("w")
    await api.insert([node(f"seed-{i}", i) for i in range(50)], "w")
    writers, per_writer = 4, 15
    every = {f"seed-{i}" for i in range(50)} | {f"w{k}-{i}" for k in range(writers) for i in range(per_writer)}

    async def writer(k: int) -> None:
        for i in range(per_writer):
            await api.insert(node(f"w{k}-{i}", 1000 * k + i), "w")

    async def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(15):
            results = await api.search_by_vector(rng.standard_normal(DIMS), "w", top_k=5)
            check_results(results, 5, every)
            filtered = await api.search_by_vector(rng.standard_normal(DIMS), "w", top_k=3, filter_dict={"group": "seed"})
            assert all(r.metadata["group"] == "seed" for r in filtered) and len(filtered) == 3

    async def deleter() -> None:
        for i in range(0, 50, 5):
            await api.delete(f"seed-{i}", "w")
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(k) for k in range(writers)), *(reader(s) for s in range(3)), deleter())
    assert await api.count("w") == 50 - 10 + writers * per_writer
    ids = {n.unique_id for n in await api.nodes("w")}
    assert ids == every - {f"seed-{i}" for i in range(0, 50, 5)}


async def test_sync_calls_from_threads(make):
    api = make("sync")
    store = api.store
    store.create_workspace("w")
    store.insert([node(f"seed-{i}", i) for i in range(20)], "w")

    def work(k: int) -> int:
        for i in range(10):
            store.insert(node(f"t{k}-{i}", 500 * k + i), "w")
            assert len(store.search_by_vector(np.ones(DIMS), "w", top_k=4)) == 4
        return k

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(work, range(4))) == [0, 1, 2, 3]
    assert store.count("w") == 20 + 40
