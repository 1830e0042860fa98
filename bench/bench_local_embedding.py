"""Benchmark LocalEmbeddingModel: sentences per second on real package descriptions.

    PYTHONPATH=src python bench/bench_local_embedding.py [--tsv PATH] [--n 1000] [--batch-size 64]

Workloads: the first N ``summary`` values of the PyPI top-packages table (short,
~13 tokens), and "long" texts made by joining later summaries until each is
~60 tokens. Prints figures only; no assertions.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np

from vecbook.embedding.minilm import LocalEmbeddingModel

DEFAULT_TSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pypi-top-packages.tsv"


def read_summaries(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row["summary"] for row in csv.DictReader(f, delimiter="\t") if row.get("summary")]


def long_texts(summaries: list[str], count_tokens, n: int, target: int = 60) -> list[str]:
    """Join consecutive summaries until each text has about ``target`` tokens."""
    texts, parts = [], []
    for summary in summaries:
        parts.append(summary.rstrip(". ") + ".")
        if count_tokens(" ".join(parts)) >= target:
            texts.append(" ".join(parts))
            parts = []
            if len(texts) == n:
                break
    return texts


def rate(model: LocalEmbeddingModel, texts: list[str], repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` sentences/s through the public API, with the cache off."""
    times = []
    for _ in range(repeats):
        model.cache.clear()
        start = time.perf_counter()
        vectors = model.get_embeddings(texts)
        times.append(time.perf_counter() - start)
    assert vectors.shape == (len(texts), 384)
    return len(texts) / min(times), len(texts) / statistics.median(times)


def blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    return ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info()) or "none found"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", type=Path, default=DEFAULT_TSV)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    summaries = read_summaries(args.tsv)
    model = LocalEmbeddingModel(batch_size=args.batch_size, cache_size=0)
    start = time.perf_counter()
    model.get_embeddings("warm-up")
    load = time.perf_counter() - start
    count = lambda text: len(model._tokenizer.encode(text).ids)  # noqa: E731

    short = summaries[: args.n]
    long = long_texts(summaries[args.n :], count, args.n)
    print(f"cores: {os.cpu_count()}   BLAS threads: {blas_threads()}   batch_size: {args.batch_size}")
    print(f"model load + first call: {load:.2f} s")
    for name, texts in (("short", short), ("long", long)):
        tokens = np.mean([count(t) for t in texts])
        best, median = rate(model, texts, args.repeats)
        print(f"{name:>5}: {len(texts)} texts, {tokens:5.1f} tokens avg: {best:7.1f} sentences/s best, {median:7.1f} median")


if __name__ == "__main__":
    main()
