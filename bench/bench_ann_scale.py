"""A large quantized local store: build it, open it cold, search it (issue 15's 10M × 384 goal).

    python bench/bench_ann_scale.py --n 1M --quantization int8 --ef-construction 64 --folder /tmp/annscale [--raw]

Builds a ``local`` store with ``index="hnsw"`` and ``index_params={"quantization": ...}``
from clustered 384-d unit vectors (``bench/data.py``'s distribution, generated in
chunks so 10M never sits in RAM twice), 10,000 nodes per insert call, then
``close()`` (the final snapshot and the saved graph). ``--raw`` also times
usearch alone adding the same vectors with the same settings (the reference for
"building with the index ≤ 1.2× raw"). A fresh process then opens the store and
reports the time to the first answer (open + an ANN search), RSS, recall@10
against the exact top 10 (computed while generating) and ms per query, sync
``search_by_vector``, 200 queries. Prints one JSON object; ``cat /proc/loadavg``
is in it. ``--ef-construction`` and ``--M`` go to ``index_params`` (the graph's
build breadth and links per node: the build's speed against its recall).

A build may be stopped and go on later (10M takes hours): on SIGINT, SIGTERM
or after ``--stop-after`` seconds it stops between two insert calls, closes the
store and writes ``build-progress.json`` beside it; the same command then opens
the store and goes on from the next row. The build's figures sum its runs, and
each run's own (rows reached, seconds, load, peaks) are in ``build_runs``.

While building, a thread samples every 2 s the disk used (the store folder plus
the writer's unlinked scratch file holding its matrix, see
``engine/matrix.py``) and the process's anonymous RSS; ``peak_disk_gb`` and
``peak_rss_anon_gb`` are their maxima. ``peak_rss_build_gb`` (ru_maxrss) also
counts the scratch's mapped page cache, which the kernel may evict.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data  # noqa: E402
from common import dir_bytes, rss_bytes  # noqa: E402

DIMS, K, CHUNK = 384, 10, 10_000


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[:3].__str__()


def stream(n: int, dims: int = DIMS, seed: int = 0, chunk: int = CHUNK):
    """data.vectors(n, dims) chunk by chunk (the same distribution, one chunk in RAM at a time)."""
    rng = np.random.default_rng(seed)
    centers = data._centers(dims, seed)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = rng.standard_normal((stop - start, dims), dtype=np.float32)
        block *= 0.6 / np.sqrt(dims)
        block += centers[rng.integers(0, len(centers), stop - start)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        yield start, block


class TopK:
    """The exact top K rows per query, merged chunk by chunk."""

    def __init__(self, queries: np.ndarray):
        self.queries = queries
        self.scores = np.full((len(queries), K), -np.inf, dtype=np.float32)
        self.rows = np.zeros((len(queries), K), dtype=np.int64)

    def add(self, start: int, block: np.ndarray) -> None:
        scores = np.hstack([self.scores, self.queries @ block.T])
        rows = np.hstack([self.rows, np.broadcast_to(np.arange(start, start + len(block)), (len(self.queries), len(block)))])
        top = np.argpartition(-scores, K, axis=1)[:, :K]
        self.scores, self.rows = np.take_along_axis(scores, top, 1), np.take_along_axis(rows, top, 1)


def rss_anon_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def scratch_bytes(folder: str) -> int:
    """Disk blocks of unlinked files under ``folder`` this process holds open (the table's scratch)."""
    seen, total = set(), 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
            st = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith(str(Path(folder).resolve())) and st.st_nlink == 0 and st.st_ino not in seen:
            seen.add(st.st_ino)
            total += st.st_blocks * 512
    return total


class Peaks(threading.Thread):
    """Samples disk used (store folder + scratch) and anonymous RSS until stopped."""

    def __init__(self, folder: str):
        super().__init__(daemon=True)
        self.folder, self.disk, self.anon, self.done = folder, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(2.0):
            self.disk = max(self.disk, dir_bytes(self.folder) + scratch_bytes(self.folder))
            self.anon = max(self.anon, rss_anon_bytes())


class Stop:
    """A build asked to stop (SIGINT, SIGTERM or ``--stop-after`` seconds) stops between two insert calls."""

    def __init__(self, after_s: float):
        self.deadline = time.monotonic() + after_s if after_s else float("inf")
        self.signalled = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        print(f"signal {signum}: stopping after the insert under way", file=sys.stderr, flush=True)
        self.signalled = True

    def requested(self) -> bool:
        return self.signalled or time.monotonic() > self.deadline


@dataclasses.dataclass
class Progress:
    """How far a build got, kept beside the store so a stopped build goes on where it stopped."""

    FILE = "build-progress.json"
    path: Path
    n: int
    params: dict
    rows: int = 0
    runs: list = dataclasses.field(default_factory=list)
    first_insert_s: float | None = None  # this run's first insert call

    @classmethod
    def load(cls, args) -> "Progress":
        path = Path(args.folder) / cls.FILE
        if path.exists():
            saved = json.loads(path.read_text())
            if saved["n"] != args.n or saved["index_params"] != index_params(args):
                raise SystemExit(f"{args.folder} holds a build of {saved['n']:,} rows with {saved['index_params']}: use another --folder")
            return cls(path, args.n, index_params(args), saved["rows"], saved["runs"])
        if Path(args.folder).exists() and any(Path(args.folder).iterdir()):
            raise SystemExit(f"{args.folder} is not empty and holds no {cls.FILE}: use an empty or new --folder")
        Path(args.folder).mkdir(parents=True, exist_ok=True)
        return cls(path, args.n, index_params(args))

    def add_run(self, insert_s: float, close_s: float, peaks: "Peaks", load: str) -> None:
        self.runs.append({"rows_after": self.rows, "insert_s": insert_s, "first_insert_s": self.first_insert_s, "close_s": close_s, "load": load,
                          "peak_rss_anon_gb": peaks.anon / 2**30, "peak_disk_gb": peaks.disk / 2**30})
        self.path.write_text(json.dumps({"n": self.n, "index_params": self.params, "rows": self.rows, "runs": self.runs}, indent=1))


def index_params(args) -> dict:
    params = {"quantization": args.quantization}
    if args.ef_construction:
        params["ef_construction"] = args.ef_construction
    if args.M:
        params["M"] = args.M
    return params


def build(args) -> dict:
    from vecbook import LocalVectorStore, NodeColumns

    progress = Progress.load(args)
    store = LocalVectorStore(store_dir=args.folder, index="hnsw", index_params=index_params(args))
    if not progress.rows:
        store.create_workspace("bench")
    stop = Stop(args.stop_after)
    peaks = Peaks(args.folder)
    peaks.start()
    queries = data.queries(args.queries, DIMS)
    truth = TopK(queries)
    insert_s, t0 = 0.0, time.perf_counter()
    for start, block in stream(args.n):
        truth.add(start, block)
        if start < progress.rows:
            continue  # built by an earlier run: generated again for the exact top 10 only
        if stop.requested():
            break
        rows = range(start, start + len(block))
        batch = NodeColumns(ids=[f"id{i}" for i in rows], metadatas=[{"i": i} for i in rows], vectors=block)  # the bulk-load path
        t = time.perf_counter()
        store.insert(batch, "bench")
        insert_s += time.perf_counter() - t
        if progress.first_insert_s is None:  # a resumed build's first write after its cold open
            progress.first_insert_s = time.perf_counter() - t
            print(f"  first insert call of this run ({len(batch):,} nodes after {start:,}): {progress.first_insert_s:.1f} s",
                  file=sys.stderr, flush=True)
        if start % (args.n // 20 or 1) < CHUNK:
            print(f"  {start + len(block):,} nodes, {time.perf_counter() - t0:.0f} s, disk {peaks.disk / 2**30:.1f} GB, "
                  f"anon RSS {peaks.anon / 2**30:.1f} GB, load {loadavg()}", file=sys.stderr, flush=True)
        progress.rows = start + len(block)
    t = time.perf_counter()
    store.close()
    close_s = time.perf_counter() - t
    peaks.done.set()
    peaks.join()
    progress.add_run(insert_s, close_s, peaks, loadavg())
    if progress.rows < args.n:
        print(f"stopped at {progress.rows:,} of {args.n:,} rows (the store is closed and whole); "
              "run the same command again to go on", file=sys.stderr)
        raise SystemExit(3)
    np.save(Path(args.folder) / "queries.npy", queries)
    np.save(Path(args.folder) / "truth.npy", truth.rows)
    insert_s, close_s = sum(r["insert_s"] for r in progress.runs), sum(r["close_s"] for r in progress.runs)
    out = {
        "n": args.n, "index_params": index_params(args), "insert_s": insert_s, "close_s": close_s,
        "build_s": insert_s + close_s, "nodes_per_s": args.n / (insert_s + close_s), "build_runs": progress.runs,
        "peak_rss_build_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "peak_rss_anon_gb": max(r["peak_rss_anon_gb"] for r in progress.runs),
        "peak_disk_gb": max(r["peak_disk_gb"] for r in progress.runs),
        "disk_bytes": dir_bytes(args.folder) - sum((Path(args.folder) / f).stat().st_size for f in ("queries.npy", "truth.npy", Progress.FILE)),
        "load_build": loadavg(),
    }
    out["disk_x_raw"] = out["disk_bytes"] / (args.n * DIMS * 4)
    return out


def raw_build(args) -> dict:
    """usearch alone, same settings, adding the same vectors (codes) in the same chunks."""
    from vecbook.stores.engine.ann import HnswIndex, IndexSpec

    spec = IndexSpec(**index_params(args))
    index = HnswIndex(DIMS, "cosine", spec)
    seconds = 0.0
    for start, block in stream(args.n):
        codes = index._codes(block)
        t = time.perf_counter()
        index._raw.add(np.arange(start, start + len(block), dtype=np.uint64), codes, threads=os.cpu_count())
        seconds += time.perf_counter() - t
    return {"raw_build_s": seconds, "raw_index_bytes": index.nbytes, "load_raw": loadavg()}


def open_and_search(args) -> dict:
    """In a fresh process: open, first answer, RSS, recall and ms per query."""
    from vecbook import LocalVectorStore

    queries, truth = np.load(Path(args.folder) / "queries.npy"), np.load(Path(args.folder) / "truth.npy")
    base = rss_bytes()
    t = time.perf_counter()
    store = LocalVectorStore(store_dir=args.folder, index="hnsw", index_params=index_params(args))
    store.search_by_vector(queries[0], "bench", top_k=K)
    first = time.perf_counter() - t
    rss_open, anon_open = rss_bytes() - base, rss_anon_bytes()
    index = store._state("bench").table.index
    by_ef = {}
    for ef in args.efs:
        index.spec = dataclasses.replace(index.spec, ef_search=ef)  # the search breadth only: same graph
        times, found = [], []
        for q in queries:
            t = time.perf_counter()
            hits = store.search_by_vector(q, "bench", top_k=K)
            times.append(time.perf_counter() - t)
            found.append({int(h.unique_id[2:]) for h in hits})
        by_ef[ef] = {
            "recall@10": float(np.mean([len(f & set(map(int, row))) / K for f, row in zip(found, truth)])),
            "ms_median": float(np.median(times) * 1e3), "ms_p99": float(np.percentile(times, 99) * 1e3),
        }
    t = time.perf_counter()
    verifier = getattr(index, "verifier", None)
    if verifier is not None:
        verifier.join()
    verify_wait = time.perf_counter() - t
    store.close()
    return {
        "open_to_first_answer_s": first, "rss_after_open_gb": rss_open / 2**30, "rss_after_queries_gb": (rss_bytes() - base) / 2**30,
        "rss_anon_after_open_gb": anon_open / 2**30, "rss_anon_after_queries_gb": rss_anon_bytes() / 2**30,
        "index_viewed": bool(index is not None and index.viewed), "by_ef": by_ef,
        "verify_wait_after_queries_s": verify_wait, "load_open": loadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", default="1M")
    parser.add_argument("--quantization", default="int8", choices=["int8", "binary", "none"])
    parser.add_argument("--ef-construction", type=int, default=0, help="index_params['ef_construction'] (default: the store's, 128)")
    parser.add_argument("--M", type=int, default=0, help="index_params['M'] (default: the store's, 16)")
    parser.add_argument("--folder", required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--raw", action="store_true", help="also time usearch alone on the same vectors")
    parser.add_argument("--open-only", action="store_true", help="(internal) the fresh-process part")
    parser.add_argument("--opens", type=int, default=3, help="cold opens, each in a new process")
    parser.add_argument("--stop-after", type=float, default=0, help="stop the build (closed and whole) after this many seconds; "
                        "the same command goes on from there (so do SIGINT and SIGTERM)")
    parser.add_argument("--efs", default="64,200,400", help="search breadths (ef_search) timed after the open")
    args = parser.parse_args()
    args.n = data.parse_size(args.n)
    args.efs = [int(e) for e in args.efs.split(",")]
    args.quantization = None if args.quantization == "none" else args.quantization
    if args.open_only:
        print(json.dumps(open_and_search(args)))
        return
    out = build(args)
    print(json.dumps(out), file=sys.stderr, flush=True)
    if args.raw:
        out.update(raw_build(args))
        out["build_x_raw"] = out["build_s"] / out["raw_build_s"]
    opens = []
    for _ in range(args.opens):
        cmd = [sys.executable, __file__, "--open-only", "--n", str(args.n), "--folder", args.folder, "--queries", str(args.queries),
               "--quantization", args.quantization or "none", "--ef-construction", str(args.ef_construction), "--M", str(args.M), "--efs", ",".join(map(str, args.efs))]
        opens.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    out["opens"] = opens
    raw = args.n * DIMS * 4
    out["rss_after_queries_x_raw"] = max(o["rss_after_queries_gb"] for o in opens) * 2**30 / raw
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
