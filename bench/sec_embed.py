"""Embedding throughput of OpenAICompatibleEmbeddingModel against the local test server with 50 ms latency.

The ideal for ``t`` texts at batch size ``b`` and concurrency ``c`` is
``ceil(ceil(t / b) / c)`` rounds of the latency: the target is within 1.5× of it.
The server (``vecbook.testing.EmbeddingServer``) runs in a process of its own,
as a real one would, so its CPU time is not charged to the client, and it answers
each request 50 ms after it arrived, its own compute included (as a real server's
response time includes its compute; before 2026-11-24 it added the latency on top).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import subprocess
import time

from common import BENCH_DIR, PYTHON, Record, Results, child_env

LATENCY = 0.05
CONFIGS = [(10, 4), (32, 8), (100, 2)]  # (batch_size, max_concurrency); the first is the model's default


def run(results: Results, texts: int, repeat: int = 3) -> None:
    from vecbook import OpenAICompatibleEmbeddingModel

    server = subprocess.Popen([PYTHON, str(BENCH_DIR / "embed_server.py"), str(LATENCY), "384"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        base_url = server.stdout.readline().strip()
        for batch, concurrency in CONFIGS:
            ideal = math.ceil(math.ceil(texts / batch) / concurrency) * LATENCY
            label = f"{texts} texts, batch {batch} x {concurrency} in flight"

            def model():
                return OpenAICompatibleEmbeddingModel(
                    model_name="bench", base_url=base_url, api_key="", batch_size=batch, max_concurrency=concurrency, cache_size=0
                )

            # Steady state: one model per mode, warmed up (connections open) before the timed runs.
            sync_model = model()
            sync_model.get_embeddings([f"warm {i}" for i in range(batch * concurrency)])
            samples = []
            for r in range(repeat):
                t = time.perf_counter()
                sync_model.get_embeddings([f"sync {r} {i} of a benchmark" for i in range(texts)])
                samples.append(time.perf_counter() - t)
            sync_model.close()
            add(results, "openai-compatible sync", label, texts, samples, ideal, target=True)
            add(results, "openai-compatible async", label, texts, asyncio.run(_async_runs(model(), texts, batch * concurrency, repeat)), ideal, target=True)
            add(results, "bare openai.AsyncOpenAI", label, texts, asyncio.run(_raw_openai(base_url, texts, batch, concurrency, repeat)), ideal, target=False)
    finally:
        server.stdin.close()
        server.wait(timeout=30)


def add(results: Results, system: str, label: str, texts: int, samples: list[float], ideal: float, target: bool) -> None:
    seconds = statistics.median(samples)
    results.add(
        Record(
            "embedding", system, label, texts, texts / seconds, "texts/s", ratio=seconds / ideal, baseline=f"ideal {ideal:.2f} s",
            target="<=1.5x" if target else None, ok=seconds / ideal <= 1.5 if target else None, spread=(texts / max(samples), texts / min(samples)),
        )
    )


async def _async_runs(model, texts: int, warm: int, repeat: int) -> list[float]:
    await model.async_get_embeddings([f"warm {i}" for i in range(warm)])
    samples = []
    for r in range(repeat):
        t = time.perf_counter()
        await model.async_get_embeddings([f"async {r} {i} of a benchmark" for i in range(texts)])
        samples.append(time.perf_counter() - t)
    await model.async_close()
    return samples


async def _raw_openai(base_url: str, texts: int, batch: int, concurrency: int, repeat: int) -> list[float]:
    """The same requests through the bare openai client: the floor of any client built on it."""
    import openai

    client = openai.AsyncOpenAI(api_key="unused", base_url=base_url, max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(part: list[str]) -> None:
        async with gate:
            await client.embeddings.create(input=part, model="bench")

    async def all_of(items: list[str]) -> None:
        await asyncio.gather(*(one(items[i : i + batch]) for i in range(0, len(items), batch)))

    await all_of([f"warm {i}" for i in range(batch * concurrency)])
    samples = []
    for r in range(repeat):
        t = time.perf_counter()
        await all_of([f"raw {r} {i} of a benchmark" for i in range(texts)])
        samples.append(time.perf_counter() - t)
    await client.close()
    return samples
