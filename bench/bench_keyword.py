"""Keyword (BM25) and hybrid search at 100k real package descriptions: the libraries, then vecbook over them.

    python bench/bench_keyword.py [--n 100000] [--queries 50] [--libs] [--store memory|local|chroma|qdrant]

Corpus: the ~14.7k PyPI summaries of /work/shared/data (or the bundled 3k sample),
each document one summary plus another chosen at random, repeated to ``--n``.
Queries: two words drawn from random documents. Prints, with the load average:

- ``--libs``: per candidate library (tantivy, bm25s, rank_bm25 if installed), the
  index build time from tokenized texts and the median query time for the top 10
  (bm25s and rank_bm25 score every document; tantivy answers the top 10 itself);
- vecbook's ``search(mode="keyword")`` and ``mode="hybrid"`` on a memory or local
  store, the first keyword search after a write (the index rebuilt), all against
  tantivy alone on the same texts, measured in the same run (ratios).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data/pypi-top-packages.tsv")


def corpus(n: int, seed: int = 0) -> list[str]:
    if DATA.exists():
        with DATA.open(encoding="utf-8", newline="") as f:
            summaries = [r["summary"] or r["name"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    else:
        from vecbook.datasets import load_pypi_sample

        summaries = [node.content for node in load_pypi_sample()]
    rng = random.Random(seed)
    return [f"{summaries[i % len(summaries)]} {summaries[rng.randrange(len(summaries))]}" for i in range(n)]


def make_queries(texts: list[str], count: int, seed: int = 1) -> list[str]:
    from vecbook.stores.keyword.tokens import tokenize

    rng = random.Random(seed)
    out = []
    while len(out) < count:
        words = tokenize(texts[rng.randrange(len(texts))])
        if words:
            out.append(" ".join(rng.choice(words) for _ in range(2)))
    return out


def median_ms(fn, items) -> float:
    fn(items[0])
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_libs(texts: list[str], queries: list[str]) -> None:
    from vecbook.stores.keyword.bm25 import Bm25Index
    from vecbook.stores.keyword.tokens import tokenize

    start = time.perf_counter()
    tokens = [tokenize(t) for t in texts]
    print(f"tokenize {len(texts)} texts (vecbook's tokenizer): {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    index = Bm25Index(enumerate(texts))
    print(f"tantivy    build {time.perf_counter() - start:6.2f} s (tokenizing included)   query top10 {median_ms(lambda q: index.top(q, 10), queries):7.3f} ms")
    try:
        import bm25s
    except ImportError:
        print("bm25s: not installed")
    else:
        start = time.perf_counter()
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(w, len(vocab)) for w in doc] for doc in tokens]
        model = bm25s.BM25(k1=1.2, b=0.75, method="lucene", idf_method="lucene")
        model.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
        build = time.perf_counter() - start

        def query_bm25s(q: str) -> None:
            scores = model.get_scores([w for w in tokenize(q) if w in vocab])
            np.argpartition(-scores, 10)[:10]

        print(f"bm25s      build {build:6.2f} s (tokenizing excluded)   query top10 {median_ms(query_bm25s, queries):7.3f} ms")
    try:
        from rank_bm25 import BM25Okapi
    except ImportError:
        print("rank_bm25: not installed")
    else:
        start = time.perf_counter()
        okapi = BM25Okapi(tokens, k1=1.2, b=0.75)
        build = time.perf_counter() - start
        print(f"rank_bm25  build {build:6.2f} s (tokenizing excluded)   query top10 {median_ms(lambda q: okapi.get_scores(tokenize(q)), queries[:10]):7.3f} ms")


def bench_store(kind: str, texts: list[str], queries: list[str]) -> None:
    import vecbook
    from vecbook.stores.keyword.bm25 import Bm25Index

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(texts), 64), dtype=np.float32)
    nodes = [vecbook.VectorNode(unique_id=f"d{i}", content=t, metadata={"bucket": i % 100}, vector=v) for i, (t, v) in enumerate(zip(texts, vectors))]
    folder = tempfile.mkdtemp(prefix="bench-keyword-")
    model = vecbook.HashEmbeddingModel(dimensions=64)
    makers = {
        "memory": lambda: vecbook.MemoryVectorStore(embedding_model=model),
        "local": lambda: vecbook.LocalVectorStore(store_dir=folder, embedding_model=model),
        "chroma": lambda: vecbook.ChromaVectorStore(store_dir=folder, embedding_model=model),
        "qdrant": lambda: vecbook.QdrantVectorStore(path=folder, embedding_model=model),
    }
    store = makers[kind]()
    store.create_workspace("w")
    store.insert(nodes, "w")
    start = time.perf_counter()
    store.search(queries[0], "w", top_k=10, mode="keyword")
    first = time.perf_counter() - start
    alone = Bm25Index(enumerate(texts))
    base = median_ms(lambda q: alone.top(q, 10), queries)
    rows = {
        "keyword": median_ms(lambda q: store.search(q, "w", top_k=10, mode="keyword"), queries),
        "keyword, filter 1 %": median_ms(lambda q: store.search(q, "w", top_k=10, mode="keyword", filter_dict={"bucket": 7}), queries),
        "hybrid": median_ms(lambda q: store.search(q, "w", top_k=10, mode="hybrid"), queries),
        "vector (for scale)": median_ms(lambda q: store.search(q, "w", top_k=10), queries),
    }
    print(f"\n{kind} store, {len(texts)} nodes; load {load()}")
    print(f"first keyword search after the insert (index built): {first:.2f} s")
    print(f"{'tantivy alone, top 10':28s} {base:8.3f} ms   1.00x")
    for name, ms in rows.items():
        print(f"{name:28s} {ms:8.3f} ms  {ms / base:5.2f}x")
    rebuild = []
    for i in range(3):
        store.insert(nodes[i], "w")
        start = time.perf_counter()
        store.search(queries[i], "w", top_k=10, mode="keyword")
        rebuild.append(time.perf_counter() - start)
    print(f"first keyword search after a one-node write: median {statistics.median(rebuild) * 1000:.0f} ms")
    store.close()
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--libs", action="store_true", help="compare the candidate BM25 libraries too")
    parser.add_argument("--store", choices=["memory", "local", "chroma", "qdrant"], default="memory")
    args = parser.parse_args()
    texts = corpus(args.n)
    queries = make_queries(texts, args.queries)
    print(f"{len(texts)} documents, {len(queries)} two-word queries; python {sys.version.split()[0]}; load {load()}")
    if args.libs:
        bench_libs(texts, queries)
    bench_store(args.store, texts, queries)


if __name__ == "__main__":
    main()
