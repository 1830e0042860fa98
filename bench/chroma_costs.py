"""Where an unfiltered ChromaVectorStore query spends its time, against the raw chromadb client.

    PYTHONPATH=src python bench/chroma_costs.py [--n 10000] [--dims 384] [--queries 300] [--batch 100]

Four ways to get the top 10 of the same queries (medians). Single queries are timed in
blocks of 20 per way, the ways' order rotating, so each runs with warm caches; the
overhead benchmark (bench_chroma.py) alternates raw and vecbook call by call instead,
so every call there starts cold, and vecbook's Python work costs more.

1. the raw client on a plain collection, Chroma's default fields (metadata, documents, distances);
2. the same, asking for the vectors too (what vecbook's hits carry);
3. the raw ``query`` on vecbook's collection, with the fields vecbook asks for: the
   difference to 2 is what the stored filter index (metadata JSON, present paths, instants) costs;
4. vecbook's ``search_by_vector`` / ``batch_search``: the difference to 3 is vecbook's
   own decoding and rescoring.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chromadb  # noqa: E402

import bench_chroma  # noqa: E402
import common  # noqa: E402
import data  # noqa: E402
from vecbook import ChromaVectorStore  # noqa: E402
from vecbook.stores.chroma.layout import layout_of  # noqa: E402

DEFAULT = ["metadatas", "documents", "distances"]
BLOCK = 20  # single queries per way in a row: each way is timed warm, its order rotating


def rotated(items: list, by: int) -> list:
    return items[by % len(items) :] + items[: by % len(items)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300, help="single queries per round (3 rounds)")
    parser.add_argument("--batch", type=int, default=100, help="queries in one batched call (10 rounds)")
    args = parser.parse_args()

    vectors, metadatas = data.vectors(args.n, args.dims), data.metadata(args.n)
    queries = data.queries(max(args.queries, args.batch), args.dims)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, ChromaVectorStore(store_dir=b) as store:
        side = bench_chroma.Raw(chromadb.PersistentClient(path=a), vectors, metadatas, {"none": None})
        side.reset()
        side.insert()
        raw = side.collection
        vecbook = common.VecbookSide(store, vectors, metadatas, {"none": None})
        vecbook.reset()
        vecbook.insert()
        ours = store._clients.embedded.collections["bench"]  # the collection behind the workspace
        include = layout_of(ours).include  # the fields vecbook asks Chroma for

        def ways(matrix):
            return {
                "1 raw, Chroma's default fields": lambda: raw.query(query_embeddings=matrix, n_results=10, include=DEFAULT),
                "2 raw, with vectors": lambda: raw.query(query_embeddings=matrix, n_results=10, include=[*DEFAULT, "embeddings"]),
                "3 raw query on vecbook's collection": lambda: ours.query(query_embeddings=matrix, n_results=10, include=include),
                "4 vecbook": lambda: store.batch_search(matrix, "bench", top_k=10),
            }

        single: dict[str, list[float]] = {}
        for r in range(3):
            for block in range(0, args.queries, BLOCK):
                names = rotated(list(ways(queries[0][None, :])), r + block // BLOCK)
                for name in names:
                    for q in queries[block : min(args.queries, block + BLOCK)]:
                        call = ways(q[None, :])[name]
                        t = time.perf_counter()
                        call()
                        single.setdefault(name, []).append(time.perf_counter() - t)
        batch: dict[str, list[float]] = {}
        for r in range(10):
            for name, call in rotated(list(ways(queries[: args.batch]).items()), r):
                t = time.perf_counter()
                call()
                batch.setdefault(name, []).append(time.perf_counter() - t)
    base_single, base_batch = statistics.median(single[next(iter(single))]), statistics.median(batch[next(iter(batch))])
    print(f"{args.n} x {args.dims}, top 10; medians, and the ratio to way 1")
    print(f"  {'':40}{'one query':>18}{f'batch of {args.batch}':>20}")
    for name in single:
        s, b = statistics.median(single[name]), statistics.median(batch[name])
        print(f"  {name:40}{s * 1e3:>10.3f} ms {s / base_single:>5.2f}x{b * 1e3:>12.1f} ms {b / base_batch:>5.2f}x")


if __name__ == "__main__":
    main()
