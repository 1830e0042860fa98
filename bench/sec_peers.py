"""Peers on the same workload, each through its own client in its own venv.

Chroma (embedded, on disk), Qdrant (local mode, in memory), LanceDB and sqlite-vec
(embedded, on disk: the local store's peers at 1M) and the older
flowllm ``LocalVectorStore``/``MemoryVectorStore`` (the peer to beat). The
venvs are made by the benchmark on first use under ``$VECBOOK_BENCH_VENVS``
(default ``/tmp/vecbook-bench-venvs``) with pinned versions from PyPI, then reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from common import BENCH_DIR, Record, Results, exact_truth, recall_at_k, rmtree, run_json

import data

VENVS = Path(os.environ.get("VECBOOK_BENCH_VENVS", "/tmp/vecbook-bench-venvs"))
# name: (pip requirement, module that proves the install, driver, largest n it is run at)
PEERS = {
    "chroma": ("chromadb==1.5.9", "chromadb", "peer_chroma.py", 100_000),
    "qdrant": ("qdrant-client==1.20.0", "qdrant_client", "peer_qdrant.py", 100_000),
    "lancedb": ("lancedb==0.40.0", "lancedb", "peer_lancedb.py", 1_000_000),
    "sqlite-vec": ("sqlite-vec==0.1.9 sqlean.py==3.50.4.5", "sqlite_vec", "peer_sqlite_vec.py", 1_000_000),
    "flowllm-memory": ("flowllm==0.1.7", "flowllm.storage.vector_store", "peer_flowllm.py", 10_000),
    "flowllm-local": ("flowllm==0.1.7", "flowllm.storage.vector_store", "peer_flowllm.py", 10_000),
}
QUERIES = {"chroma": 30, "qdrant": 10, "lancedb": 30, "sqlite-vec": 10, "flowllm-memory": 5, "flowllm-local": 3}
REOPENED = ("chroma", "lancedb", "sqlite-vec")  # on disk: a new process reopens what the run wrote


def venv_python(requirement: str, module: str) -> Path:
    """A venv holding ``requirement`` (space-separated pins; made and installed on first use)."""
    folder = VENVS / requirement.replace("==", "-").replace(" ", "+")
    python = folder / "bin" / "python"
    probe = [str(python), "-c", f"import {module.split('.')[0]}"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"  creating {folder} ({requirement}; a few minutes on first use)", flush=True)
    subprocess.run(["python3", "-m", "venv", str(folder)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirement.split(), "numpy"], check=True)
    return python


def export(folder: Path, vectors: np.ndarray, queries: np.ndarray, metas: list[dict]) -> None:
    np.save(folder / "vectors.npy", vectors)
    np.save(folder / "queries.npy", queries)
    (folder / "metadata.json").write_text(json.dumps(metas))


def run(n: int, vectors: np.ndarray, queries: np.ndarray, results: Results, only: set[str] | None, max_n: dict[str, int]) -> None:
    names = [p for p in PEERS if (only is None or p in only or p.split("-")[0] in only) and n <= max_n.get(p, PEERS[p][3])]
    if not names:
        return
    truth = exact_truth(vectors, queries)
    workdir = Path(tempfile.mkdtemp(prefix="vecbook-bench-peers-"))
    try:
        export(workdir, vectors, queries, data.metadata(n))
        for name in names:
            requirement, module, driver, _ = PEERS[name]
            try:
                python = venv_python(requirement, module)
                store = workdir / f"store-{name}"
                argv = [str(python), str(BENCH_DIR / "peers" / driver), str(workdir), str(store), str(QUERIES[name])]
                if name.startswith("flowllm"):
                    argv.append(name.split("-")[1])
                out = run_json(argv, timeout=3600, env=_peer_env())
                report(name, n, out, truth, results, 4 * vectors.shape[1])
                if name in REOPENED:
                    opened = [run_json(argv + ["open"], timeout=1800, env=_peer_env()) for _ in range(2)]
                    secs = sorted(o["open_s"] for o in opened)
                    results.add(Record("peers", name, "cold open (new process)", n, secs[0] * 1e3, "ms", spread=(secs[0] * 1e3, secs[-1] * 1e3)))
            except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
                print(f"  !! {name} at n={n} failed: {exc}", flush=True)
                results.add(Record("peers", name, "failed", n, float("nan"), "", note=str(exc)[:200]))
            finally:
                rmtree(workdir / f"store-{name}")
    finally:
        rmtree(workdir)


def _peer_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["ANONYMIZED_TELEMETRY"] = "False"
    env["FLOW_USE_FRAMEWORK"] = "true"  # flowllm: skip importing its flow/op machinery
    return env


def report(name: str, n: int, out: dict, truth: np.ndarray, results: Results, raw: int) -> None:
    s = "peers"
    results.add(Record(s, name, "insert, pre-embedded (1k/call)" if name in ("lancedb", "sqlite-vec") else "insert, pre-embedded", n, n / out["insert_s"], "nodes/s"))
    search = out["search"]
    results.add(Record(s, name, "search, top 10", n, search["median_ms"], "ms/query", ratio=search["ratio_vs_numpy"], baseline="numpy", spread=(search["min_ms"], search["max_ms"])))
    results.add(Record(s, name, "recall@10 vs exact", n, recall_at_k(search["ids"], truth[: len(search["ids"])]), ""))
    for kind in ("selective", "broad"):
        f = out[kind]
        results.add(Record(s, name, f"filtered search, {kind}", n, f["median_ms"], "ms/query", ratio=f["median_ms"] / search["median_ms"], baseline="unfiltered"))
    results.add(Record(s, name, "RAM per node (RSS growth)", n, out["rss_delta"] / n, "B", ratio=out["rss_delta"] / n / raw, baseline="raw f32"))
    if "written_bytes" in out:  # a bulk load costs about what it copies into the page cache (docs/performance.md)
        written = out["written_bytes"] / n
        results.add(Record(s, name, "bytes written per node (bulk load)", n, written, "B", ratio=written / raw, baseline="raw f32"))
    if "disk_bytes" in out:
        results.add(Record(s, name, "bytes on disk per node", n, out["disk_bytes"] / n, "B", ratio=out["disk_bytes"] / n / raw, baseline="raw f32"))
    if "ann" in out:
        ann = out["ann"]
        results.add(Record(s, name, "ANN search (IVF_PQ, refine_factor 10)", n, ann["median_ms"], "ms/query", spread=(ann["min_ms"], ann["max_ms"]), extra={"index_s": out.get("index_s")}))
        results.add(Record(s, name, "ANN recall@10 vs exact", n, recall_at_k(ann["ids"], truth[: len(ann["ids"])]), ""))
    if "single_insert_ms" in out:
        results.add(Record(s, name, "single-node insert", n, out["single_insert_ms"], "ms"))


# vecbook local's figures (sec_core) to set against the peer's, and whether a higher value is better
VERSUS = {
    "insert, pre-embedded (1k/call)": [("insert, pre-embedded (1k/call)", True), ("insert, columns (1k/call)", True)],
    "bytes written per node (bulk load)": [("bytes written per node (bulk load)", False)],
    "cold open (new process)": [("cold open to first answer (new process)", False)],
    "search, top 10": [("exact search, top 10", False)],
}


def versus(results: Results, n: int) -> None:
    """Print vecbook local against each peer measured at ``n`` in this run: ratios, >1 = vecbook ahead."""
    mine = {r.measure: r.value for r in results.records if r.system == "vecbook local" and r.n == n}
    for r in [r for r in results.records if r.section == "peers" and r.n == n and r.measure in VERSUS]:
        for own_measure, higher_better in VERSUS[r.measure]:
            own = mine.get(own_measure)
            if not (own and r.value == r.value and r.value):
                continue
            ratio = own / r.value if higher_better else r.value / own
            measure = r.measure if own_measure == r.measure else f"{r.measure}; vecbook: {own_measure}"
            results.add(Record("peers", f"vecbook local vs {r.system}", measure, n, ratio, "x", note=">1: vecbook ahead"))
