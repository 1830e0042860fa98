"""Benchmark LocalEmbeddingModel: sentences per second on real package descriptions.

    PYTHONPATH=src python bench/bench_local_embedding.py [--tsv PATH] [--n 1000] [--batch-size 64]

Workloads: the first N ``summary`` values of the PyPI top-packages table (short,
~13 tokens), and "long" texts made by joining later summaries and cutting them
at 60 tokens. Prints figures only; no assertions.
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


def long_texts(summaries: list[str], tokenizer, n: int, tokens: int = 60) -> list[str]:
    """Join consecutive summaries and cut the result at ``tokens`` tokens (with [CLS] and [SEP])."""
    texts, parts = [], []
    for summary in summaries:
        parts.append(summary.rstrip(". ") + ".")
        encoding = tokenizer.encode(" ".join(parts))
        if len(encoding.ids) > tokens:
            texts.append(" ".join(parts)[: encoding.offsets[tokens - 2][1]])
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
    tokenizer = model._tokenizer
    short = summaries[: args.n]
    long = long_texts(summaries[args.n :], tokenizer, args.n)
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"cores: {os.cpu_count()}   BLAS threads: {blas_threads()}   batch_size: {args.batch_size}   load average: {load_avg}")
    print(f"model load + first call: {load:.2f} s")
    for name, texts in (("short", short), ("long", long)):
        tokens = np.mean([len(e.ids) for e in tokenizer.encode_batch(texts)])
        best, median = rate(model, texts, args.repeats)
        print(f"{name:>5}: {len(texts)} texts, {tokens:5.1f} tokens avg: {best:7.1f} sentences/s best, {median:7.1f} median")


if __name__ == "__main__":
    main()
