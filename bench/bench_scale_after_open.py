"""A store built by bench_ann_scale.py, as a user meets it after a cold open: scores, first writes, the map.

    python bench/bench_scale_after_open.py --folder /tmp/annscale [--quantization int8] [--no-map] [--waiting 5000,20000] [--bulk 100000]

In a fresh process: open to the first answer; exact scores of the ANN hits against float32
dot products of their stored vectors (the goal: equal within 1e-5); the first and second
single-node insert after the open (the matrix grows in place, see ``engine/matrix.py``, and
the write waits beside the mapped graph, see ``engine/table_index.py``), then both nodes
deleted again; queries with 5,000 writes waiting beside the graph (``--waiting``: written in
calls of 1,000, a near twin of each query among them: is it the top hit?), then those deleted; and the
explorer map's read of the workspace (``MapState``: the stratified sample above
``max_points``, then PCA) with its time and the peak anonymous RSS while it reads; with
``--bulk N``, N new nodes loaded in calls of 10,000 and kept, so that the close after them
is a bulk load's (it changes the store: run it on a copy). Prints one JSON object with
``/proc/loadavg``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ann_scale import DIMS, loadavg, rss_anon_bytes  # noqa: E402


class AnonPeak(threading.Thread):
    """The peak anonymous RSS of this process, sampled every 0.2 s until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = rss_anon_bytes(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.peak = max(self.peak, rss_anon_bytes())

    def stop(self) -> float:
        self.done.set()
        self.join()
        return max(self.peak, rss_anon_bytes()) / 2**30


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def scores_check(store, queries: np.ndarray) -> float:
    """The largest difference between an ANN hit's score and the float32 cosine of its stored vector."""
    worst = 0.0
    for q in queries:
        hits = store.search_by_vector(q, "bench", top_k=10)
        cols = store.read_columns("bench", node_ids=[h.unique_id for h in hits], columns=["ids", "vectors"])
        v = cols.vectors.astype(np.float64)
        exact = v @ q.astype(np.float64) / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
        worst = max(worst, float(np.abs(exact - np.array([h.metadata["score"] for h in hits])).max()))
    return worst


def query_figures(store, queries: np.ndarray, truth: np.ndarray | None = None, twins: list[str] | None = None) -> dict:
    """Median and p99 ms per query; recall@10 against ``truth``, or how often ``twins[i]`` is query i's top hit."""
    times, hits = [], []
    for q in queries:
        t = time.perf_counter()
        hits.append(store.search_by_vector(q, "bench", top_k=10))
        times.append(time.perf_counter() - t)
    out = {"ms_median": float(np.median(times) * 1e3), "ms_p99": float(np.percentile(times, 99) * 1e3)}
    if truth is not None:
        found = [{int(h.unique_id[2:]) for h in found if h.unique_id[2:].isdigit()} for found in hits]
        out["recall@10"] = float(np.mean([len(f & set(map(int, row))) / 10 for f, row in zip(found, truth)]))
    if twins is not None:
        out["twin_first"] = float(np.mean([bool(found) and found[0].unique_id == twin for found, twin in zip(hits, twins)]))
    return out


def waiting_writes(store, queries: np.ndarray, n: int, per_call: int = 1000) -> dict:
    """``n`` nodes written after the open in calls of ``per_call`` (a near twin of each query among them),
    searched, then deleted. The slowest call shows a fold: the mapped graph copied into RAM."""
    from bench_ann_scale import stream

    from vecbook.node import VectorNode

    rng = np.random.default_rng(11)
    vectors = next(stream(n, seed=123, chunk=n))[1]
    twins = queries + rng.standard_normal(queries.shape).astype(np.float32) * (0.05 / np.sqrt(DIMS))
    vectors[: len(queries)] = twins / np.linalg.norm(twins, axis=1, keepdims=True)
    batch = [VectorNode(unique_id=f"waiting-{i}", content="", metadata={"i": -1}, vector=v) for i, v in enumerate(vectors)]
    calls = [timed(lambda part=part: store.insert(batch[part : part + per_call], "bench"))[1] for part in range(0, n, per_call)]
    out: dict = {"insert_s": sum(calls), "call_ms_median": float(np.median(calls) * 1e3), "call_ms_max": max(calls) * 1e3}
    out["queries"] = query_figures(store, queries, twins=[f"waiting-{i}" for i in range(len(queries))])
    index = store._state("bench").table.index
    out["graph_still_a_map"] = bool(index is not None and index.viewed)
    _, out["delete_s"] = timed(lambda: store.delete([node.unique_id for node in batch], "bench"))
    return out


def bulk_load(store, n: int, per_call: int = 10_000) -> dict:
    """``n`` new nodes in calls of ``per_call`` (the bulk-load path, as bench_ann_scale.py builds): a load
    into a reopened store. Past ``waiting_max`` waiting rows one call folds them into the big graph
    (``engine/table_index.py``); the close after it is timed by the caller."""
    from bench_ann_scale import stream

    from vecbook import NodeColumns

    calls = []
    for start, block in stream(n, seed=321, chunk=per_call):
        batch = NodeColumns(ids=[f"bulk-{start + i}" for i in range(len(block))], metadatas=[{"i": -2}] * len(block), vectors=block)
        calls.append(timed(lambda batch=batch: store.insert(batch, "bench"))[1])
    index = store._state("bench").table.index
    return {"insert_s": sum(calls), "nodes_per_s": n / sum(calls), "call_s_median": float(np.median(calls)), "call_s_max": max(calls),
            "graph_still_a_map": bool(index is not None and index.viewed)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True)
    parser.add_argument("--quantization", default="int8", choices=["int8", "binary", "none"])
    parser.add_argument("--no-map", action="store_true")
    parser.add_argument("--waiting", default="5000", help="nodes written after the open, searched, deleted: one run per count")
    parser.add_argument("--bulk", type=int, default=0, help="then this many new nodes in calls of 10,000, kept, before the timed close")
    args = parser.parse_args()
    args.waiting = [int(n) for n in args.waiting.split(",")]
    from vecbook import LocalVectorStore
    from vecbook.node import VectorNode

    queries = np.load(Path(args.folder) / "queries.npy")
    params = {} if args.quantization == "none" else {"quantization": args.quantization}
    t = time.perf_counter()
    store = LocalVectorStore(store_dir=args.folder, index="hnsw", index_params=params)
    store.search_by_vector(queries[0], "bench", top_k=10)
    out: dict = {"open_to_first_answer_s": time.perf_counter() - t, "load_start": loadavg()}
    out["score_max_abs_diff"], out["scores_check_s"] = timed(lambda: scores_check(store, queries[:20]))
    out["queries_after_open"] = query_figures(store, queries[20:120], np.load(Path(args.folder) / "truth.npy")[20:120])
    rng = np.random.default_rng(7)
    new = [VectorNode(unique_id=f"after-open-{i}", content="", metadata={"i": -1}, vector=rng.standard_normal(DIMS).astype(np.float32))
           for i in range(2)]
    peak = AnonPeak()
    peak.start()
    _, out["first_insert_s"] = timed(lambda: store.insert(new[0], "bench"))
    _, out["second_insert_s"] = timed(lambda: store.insert(new[1], "bench"))
    out["anon_peak_writes_gb"] = peak.stop()
    _, out["delete_both_s"] = timed(lambda: store.delete([n.unique_id for n in new], "bench"))
    for n in args.waiting:
        out[f"with_{n}_waiting"] = waiting_writes(store, queries[20:120], n)
    if not args.no_map:
        from vecbook.widgets.map_state import MapState

        peak = AnonPeak()
        peak.start()
        state, out["map_read_and_pca_s"] = timed(lambda: MapState(store, "bench", cache_dir=False))
        out["map_points"], out["map_total"] = len(state.ids), state.total
        out["anon_peak_map_gb"] = peak.stop()
    if args.bulk:
        out[f"bulk_{args.bulk}"] = bulk_load(store, args.bulk)
    _, out["close_s"] = timed(store.close)
    out["load_end"] = loadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
