"""Shared pieces of the benchmark suite: timing, records, tables, machine facts."""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import data
from peers._peer import rss_bytes, written_bytes  # noqa: F401 - process facts, shared with the peers' drivers (numpy only)

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
K = 10


@dataclass
class Record:
    """One measured figure. ``ratio`` is against ``baseline`` (if any); ``spread`` is (low, high)."""

    section: str
    system: str
    measure: str
    n: int
    value: float
    unit: str
    ratio: float | None = None
    baseline: str | None = None
    target: str | None = None
    ok: bool | None = None
    spread: tuple[float, float] | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class Results:
    """Collects records and prints each as it comes, so a long run shows progress."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def add(self, record: Record) -> Record:
        self.records.append(record)
        print("  " + format_row(record), flush=True)
        return record


def format_value(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_row(r: Record) -> str:
    ratio = f"{r.ratio:.2f}x {r.baseline}" if r.ratio is not None else ""
    spread = f"[{format_value(r.spread[0])}–{format_value(r.spread[1])}]" if r.spread else ""
    verdict = "" if r.ok is None else ("ok" if r.ok else "MISS")
    target = f"target {r.target} {verdict}" if r.target else ""
    return f"{r.system:<22} {r.measure:<34} {size(r.n):>5} {format_value(r.value):>10} {r.unit:<9} {spread:<22} {ratio:<22} {target} {r.note}".rstrip()


def size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# ---- timing ----------------------------------------------------------------------------


def median_time(fn: Callable[[], object], repeat: int, warmup: int = 1) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples), samples


def interleaved(systems: dict[str, Callable[[int], object]], count: int, rounds: int = 3) -> dict[str, dict]:
    """Time ``systems[name](i)`` for query i = 0..count-1, the systems taking turns per query.

    Taking turns means a burst of load from other processes hits every system
    alike, so per-query ratios stay meaningful on a busy machine. Returns per
    system: the median seconds per call over all rounds, the round medians, and
    every sample (for ratios against another system, query by query).
    """
    names = list(systems)
    samples: dict[str, list[float]] = {name: [] for name in names}
    round_medians: dict[str, list[float]] = {name: [] for name in names}
    for name in names:
        systems[name](0)  # warm-up
    for r in range(rounds):
        this_round: dict[str, list[float]] = {name: [] for name in names}
        for i in range(count):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                t = time.perf_counter()
                systems[name](i)
                this_round[name].append(time.perf_counter() - t)
        for name in names:
            samples[name].extend(this_round[name])
            round_medians[name].append(statistics.median(this_round[name]))
    return {name: {"median": statistics.median(samples[name]), "rounds": round_medians[name], "samples": samples[name]} for name in names}


def paired_ratio(timings: dict[str, dict], name: str, baseline: str) -> tuple[float, tuple[float, float]]:
    """Median of the per-query ratios name/baseline, and the range of the per-round medians."""
    a, b = np.asarray(timings[name]["samples"]), np.asarray(timings[baseline]["samples"])
    ratios = a / b
    rounds = len(timings[name]["rounds"])
    per_round = [float(np.median(part)) for part in np.array_split(ratios, rounds)]
    return float(np.median(ratios)), (min(per_round), max(per_round))


def spread_ms(timing: dict) -> tuple[float, float]:
    return min(timing["rounds"]) * 1e3, max(timing["rounds"]) * 1e3


def recall_at_k(found: Sequence[Sequence], truth: np.ndarray) -> float:
    return float(np.mean([len(set(map(int, f)) & set(map(int, t))) / len(t) for f, t in zip(found, truth)]))


def exact_truth(matrix: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    """Row numbers of the exact top k by cosine (the data are unit vectors), in chunks of queries."""
    out = []
    for start in range(0, len(queries), 64):
        scores = queries[start : start + 64] @ matrix.T
        out.append(np.argpartition(-scores, k, axis=1)[:, :k])
    return np.vstack(out)


# ---- machine and process facts -----------------------------------------------------------


def dir_bytes(path: str | Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def load_average() -> float:
    return os.getloadavg()[0]


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    import vecbook

    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "vecbook": vecbook.__version__,
        "platform": platform.platform(),
        "load_at_start": load_average(),
    }
    from importlib.metadata import PackageNotFoundError, version

    try:
        info["usearch"] = version("usearch")  # the index's library (ann extra) and the map's (notebook extra)
    except PackageNotFoundError:
        pass
    return info


def run_json(argv: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run a helper process that prints one JSON object on its last line of stdout."""
    import json

    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv[:3]))} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), str(BENCH_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def rmtree(path: str | Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


PYTHON = sys.executable


# ---- vecbook against a backend's raw client (bench_chroma/qdrant/es.py) ----------------------


def alternating(
    systems: dict[str, Callable[[], object]], rounds: int, warmup: int = 0, setup: dict[str, Callable[[], object]] | None = None
) -> dict[str, list[float]]:
    """Seconds per call of each ``systems[name]()``, ``rounds`` times, the systems taking turns
    (the first to go changes every round), so load from other processes hits them alike.
    ``setup[name]()``, if given, runs untimed before each call."""
    names = list(systems)
    for _ in range(warmup):
        for name in names:
            systems[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if setup:
                setup[name]()
            t = time.perf_counter()
            systems[name]()
            samples[name].append(time.perf_counter() - t)
    return samples


def overhead_table(
    results: Results,
    section: str,
    n: int,
    raw: object,
    ours: object,
    queries: np.ndarray,
    count: int,
    rounds: int,
    filters: dict[str, dict | None],
    batch: int = 0,
    target: float = 1.2,
    insert: bool = True,
) -> list[Record]:
    """vecbook's time over the raw client's for the same operations, as records.

    ``raw`` and ``ours`` offer ``reset()`` (an empty collection, untimed), ``insert()``
    (the whole data set into it), ``search(vector, name)`` (one query, top 10, filter
    ``filters[name]``) and ``batch(matrix, name)``. Inserts alternate sides over
    ``rounds``; single queries alternate per query (:func:`interleaved`); the
    ratio is the median of paired ratios, its bracket the range of per-round medians.
    ``insert=False`` skips the insert (both sides must hold the data already).
    """
    out: list[Record] = []
    load = load_average()

    def record(measure: str, per: int, t_raw: list[float], t_ours: list[float], ratios: np.ndarray, spread: tuple[float, float], unit: str) -> None:
        ratio = float(np.median(ratios))
        lo, hi = spread
        note = f"raw {per / statistics.median(t_raw):,.0f} {unit}; vecbook/raw per round {lo:.2f}-{hi:.2f}; load {load:.1f}"
        out.append(results.add(Record(section, "vecbook", measure, n, per / statistics.median(t_ours), unit, ratio, "raw", f"<= {target}x", ratio <= target, note=note)))

    if insert:
        samples = alternating({"raw": raw.insert, "vecbook": ours.insert}, rounds, setup={"raw": raw.reset, "vecbook": ours.reset})  # type: ignore[attr-defined]
        ratios = np.asarray(samples["vecbook"]) / np.asarray(samples["raw"])
        record("insert", n, samples["raw"], samples["vecbook"], ratios, (float(ratios.min()), float(ratios.max())), "nodes/s")
    for name in filters:
        label = "search" if filters[name] is None else f"search, {name} filter"
        load = load_average()
        timings = interleaved(
            {"raw": lambda i: raw.search(queries[i % len(queries)], name), "vecbook": lambda i: ours.search(queries[i % len(queries)], name)},  # type: ignore[attr-defined]
            count,
            rounds,
        )
        ratio, spread = paired_ratio(timings, "vecbook", "raw")
        record(label, 1, timings["raw"]["samples"], timings["vecbook"]["samples"], np.asarray([ratio]), spread, "q/s")
    if batch:
        for name in filters:
            load = load_average()
            matrix = queries[:batch]
            # A batch is one call: three times the rounds, or its ratio swings with the machine's load.
            samples = alternating({"raw": lambda: raw.batch(matrix, name), "vecbook": lambda: ours.batch(matrix, name)}, 3 * rounds, warmup=1)  # type: ignore[attr-defined]
            ratios = np.asarray(samples["vecbook"]) / np.asarray(samples["raw"])
            label = f"batch of {batch}" + ("" if filters[name] is None else f", {name} filter")
            record(label, batch, samples["raw"], samples["vecbook"], ratios, (float(ratios.min()), float(ratios.max())), "q/s")
    return out


def overhead_summary(records: Sequence[Record]) -> None:
    """The records of :func:`overhead_table` as one table."""
    print(f"  {'operation':<28}{'vecbook':>14}{'vecbook/raw':>13}  per round, load")
    for r in records:
        print(f"  {r.measure:<28}{format_value(r.value):>10} {r.unit:<6}{r.ratio:>8.2f}x {'' if r.ok else 'MISS'}  {r.note.split('; ', 1)[1]}")


class VecbookSide:
    """The vecbook side of an overhead table: a store's public API, workspace "bench"."""

    def __init__(self, store, vectors: np.ndarray, metadatas: list[dict], filters: dict):
        from vecbook import VectorNode  # the bench's callers put vecbook on the path first

        self.store, self.dims, self.filters = store, vectors.shape[1], filters
        ids, contents = data.ids(len(vectors)), data.contents(len(vectors))
        self.nodes = [VectorNode(unique_id=ids[i], content=contents[i], metadata=metadatas[i], vector=vectors[i]) for i in range(len(ids))]

    def reset(self) -> None:
        self.store.delete_workspace("bench")
        self.store.create_workspace("bench", dimensions=self.dims)

    def insert(self) -> None:
        self.store.insert(self.nodes, "bench")

    def search(self, query: np.ndarray, name: str) -> None:
        self.store.search_by_vector(query, "bench", top_k=K, filter_dict=self.filters[name])

    def batch(self, queries: np.ndarray, name: str) -> None:
        self.store.batch_search(queries, "bench", top_k=K, filter_dict=self.filters[name])
