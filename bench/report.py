"""Render results JSON of bench/run.py as the markdown tables of docs/performance.md.

    python bench/report.py bench/results/NAME.json [more.json ...] > tables.md

Several files are merged (a later file's figure for the same system, measure and
size wins), so a section re-run on its own can replace the figures of a full run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import format_value, size


def load(paths: list[str]) -> tuple[dict, dict]:
    figures: dict[tuple, dict] = {}
    machine: dict = {}
    for path in paths:
        doc = json.loads(Path(path).read_text())
        machine = {**doc["machine"], "load_samples": machine.get("load_samples", []) + doc["machine"].get("load_samples", [])}
        for r in doc["records"]:
            figures[(r["section"], r["system"], r["measure"], r["n"])] = r
    return machine, figures


class Table:
    def __init__(self, figures: dict):
        self.f = figures

    def get(self, section: str, system: str, measure: str, n: int) -> dict | None:
        for (sec, sys_, meas, size_), r in self.f.items():
            if sec == section and sys_ == system and meas.startswith(measure) and size_ == n:
                return r
        return None

    def cell(self, section, system, measure, n, ratio: bool = True, spread: bool = False) -> str:
        r = self.get(section, system, measure, n)
        if r is None or r["value"] != r["value"]:  # missing or NaN
            return "–"
        text = f"{r['value']:.4f}" if measure == "recall" else format_value(r["value"])
        if spread and r.get("spread"):
            text += f" ({format_value(r['spread'][0])}–{format_value(r['spread'][1])})"
        if ratio and r.get("ratio") is not None:
            text += f" · {r['ratio']:.2f}×"
        if r.get("ok") is False:
            text += " ✗"
        return text

    def sizes(self, section: str) -> list[int]:
        return sorted({n for (sec, _, _, n) in self.f if sec == section})


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render(machine: dict, figures: dict) -> str:
    t = Table(figures)
    out = []
    core = t.sizes("core")
    out.append("#### Exact search, top 10 (ms per query; × the numpy reference, query by query)\n")
    out.append(markdown(
        ["n", "numpy reference", "memory", "local", "memory batch_search of 50 (per query)"],
        [[size(n), t.cell("core", "numpy reference", "exact search", n, spread=True), t.cell("core", "vecbook memory", "exact search", n, spread=True),
          t.cell("core", "vecbook local", "exact search", n, spread=True), t.cell("core", "vecbook memory", "batch_search", n)] for n in core],
    ))
    out.append("#### Filtered search, top 10 (ms per query; × the same backend unfiltered)\n")
    out.append(markdown(
        ["n", "backend", "unfiltered", "selective: `{\"bucket\": 7}` (1 %)", "broad: `{\"rank\": {\"gte\": n/10}}` (90 %)"],
        [[size(n), b, t.cell("core", f"vecbook {b}", "exact search", n, ratio=False), t.cell("core", f"vecbook {b}", "filtered search, selective", n),
          t.cell("core", f"vecbook {b}", "filtered search, broad", n)] for n in core for b in ("memory", "local")],
    ))
    out.append("#### Writes, cold open, bytes per node (raw float32 of 384 dims = 1,536 B)\n")
    out.append(markdown(
        ["n", "memory insert (nodes/s)", "local insert (nodes/s)", "local single-node insert (ms)", "memory: selective filter right after a write (ms)", "local cold open (ms)", "disk (B/node · × raw)", "RAM after open (B/node · × raw)"],
        [[size(n), t.cell("core", "vecbook memory", "insert", n), t.cell("core", "vecbook local", "insert", n),
          t.cell("core", "vecbook local", "single-node insert", n, spread=True), t.cell("core", "vecbook memory", "selective filter right after", n, spread=True),
          t.cell("core", "vecbook local", "cold open", n, spread=True),
          t.cell("core", "vecbook local", "bytes on disk", n), t.cell("core", "vecbook local", "RAM per node", n)] for n in core],
    ))
    rows = []
    for kind in ("clustered", "iid"):
        sec = f"ann-{kind}"
        for n in t.sizes(sec):
            for system in ("vecbook memory+hnsw", "vecbook local+hnsw"):
                if t.get(sec, system, "recall", n) is None:
                    continue
                extra = t.get(sec, system, "search", n) or {}
                exact = extra.get("extra", {}).get("exact_ms")
                rows.append([kind, size(n), system.replace("vecbook ", ""), t.cell(sec, system, "insert incl. index build", n), t.cell(sec, system, "recall", n),
                             t.cell(sec, system, "search", n, ratio=False, spread=True), "–" if exact is None else format_value(exact),
                             "–" if extra.get("ratio") is None else f"{extra['ratio']:.0f}×",
                             t.cell(sec, system, "cold open", n, ratio=False), t.cell(sec, system, "bytes on disk", n),
                             t.cell(sec, system, "RAM per node", n) if t.get(sec, system, "RAM per node", n) else t.cell(sec, system, "index RAM", n)])
    out.append("#### Approximate index (`index=\"hnsw\"`), top 10\n")
    out.append(markdown(
        ["vectors", "n", "store", "insert + build (nodes/s)", "recall@10", "ms/query (range)", "exact numpy (ms)", "faster than exact", "cold open (ms)", "disk (B/node · × raw)", "RAM (B/node · × raw)"],
        rows,
    ))
    emb = sorted({r["measure"] for (sec, _, _, _), r in figures.items() if sec == "embedding"})
    rows = []
    for measure in emb:
        n = next(r["n"] for (sec, _, m, _), r in figures.items() if sec == "embedding" and m == measure)
        ideal = next((r["baseline"] for (sec, _, m, _), r in figures.items() if sec == "embedding" and m == measure), "")
        rows.append([measure.split(", ", 1)[1], ideal.replace("ideal ", ""),
                     t.cell("embedding", "openai-compatible sync", measure, n), t.cell("embedding", "openai-compatible async", measure, n),
                     t.cell("embedding", "bare openai.AsyncOpenAI", measure, n)])
    if rows:
        out.append(f"#### Embedding throughput, {n} texts, 50 ms server latency (texts/s · × the ideal)\n")
        out.append(markdown(["batch × in flight", "ideal", "vecbook sync", "vecbook async", "bare openai.AsyncOpenAI"], rows))
    rows = []
    for n in sorted(set(t.sizes("peers")) | set(core)):
        rows.append([size(n), "vecbook memory", t.cell("core", "vecbook memory", "insert", n), t.cell("core", "vecbook memory", "exact search", n), "1.00",
                     t.cell("core", "vecbook memory", "filtered search, selective", n, ratio=False), t.cell("core", "vecbook memory", "filtered search, broad", n, ratio=False),
                     "–", "–", "–"])
        rows.append([size(n), "vecbook local", t.cell("core", "vecbook local", "insert", n), t.cell("core", "vecbook local", "exact search", n), "1.00",
                     t.cell("core", "vecbook local", "filtered search, selective", n, ratio=False), t.cell("core", "vecbook local", "filtered search, broad", n, ratio=False),
                     t.cell("core", "vecbook local", "RAM per node", n), t.cell("core", "vecbook local", "bytes on disk", n), t.cell("core", "vecbook local", "cold open", n, ratio=False)])
        for peer in ("chroma", "qdrant", "flowllm-memory", "flowllm-local"):
            if t.get("peers", peer, "search", n) is None:
                continue
            rows.append([size(n), peer, t.cell("peers", peer, "insert", n), t.cell("peers", peer, "search", n), t.cell("peers", peer, "recall", n),
                         t.cell("peers", peer, "filtered search, selective", n, ratio=False), t.cell("peers", peer, "filtered search, broad", n, ratio=False),
                         t.cell("peers", peer, "RAM per node", n), t.cell("peers", peer, "bytes on disk", n), t.cell("peers", peer, "cold open", n, ratio=False)])
    out.append("#### Peers on the same data (search: ms per query · × numpy in the same process)\n")
    out.append(markdown(
        ["n", "system", "insert (nodes/s)", "search, top 10", "recall@10", "selective filter (ms)", "broad filter (ms)", "RAM (B/node · × raw)", "disk (B/node · × raw)", "cold open (ms)"],
        rows,
    ))
    return "\n".join(out)


KEY = [  # (section, system, measure prefix, n) of the figures worth seeing run by run
    ("core", "vecbook memory", "exact search", 10_000),
    ("core", "vecbook local", "exact search", 10_000),
    ("core", "vecbook memory", "exact search", 100_000),
    ("core", "vecbook local", "exact search", 100_000),
    ("core", "vecbook memory", "exact search", 1_000_000),
    ("core", "vecbook local", "exact search", 1_000_000),
    ("core", "vecbook memory", "filtered search, broad", 1_000_000),
    ("ann-clustered", "vecbook memory+hnsw", "search", 1_000_000),
    ("ann-clustered", "vecbook local+hnsw", "search", 1_000_000),
    ("ann-clustered", "vecbook memory+hnsw", "recall", 1_000_000),
    ("ann-clustered", "vecbook local+hnsw", "recall", 1_000_000),
    ("embedding", "openai-compatible async", "2000 texts, batch 10", 2000),
    ("embedding", "openai-compatible async", "2000 texts, batch 32", 2000),
    ("embedding", "openai-compatible async", "2000 texts, batch 100", 2000),
]


def across_runs(paths: list[str]) -> str:
    """One column per results file: the key figures (ratio where there is one), with the run's load."""
    runs = []
    for path in paths:
        doc = json.loads(Path(path).read_text())
        loads = doc["machine"].get("load_samples") or [doc["machine"].get("load_at_start", 0)]
        runs.append((Path(path).stem, f"{min(loads):.1f}–{max(loads):.1f}", Table({(r["section"], r["system"], r["measure"], r["n"]): r for r in doc["records"]})))
    header = ["figure"] + [f"{name} (load {load})" for name, load, _ in runs]
    rows = []
    for section, system, measure, n in KEY:
        cells, baseline = [], ""
        for _, _, table in runs:
            r = table.get(section, system, measure, n)
            if r is None:
                cells.append("")
            elif r.get("ratio") is not None:
                cells.append(f"{r['ratio']:.2f}×")
                baseline = "ideal" if section == "embedding" else r["baseline"]
            else:
                cells.append(f"{r['value']:.4f}" if measure == "recall" else format_value(r["value"]))
        if any(cells):
            what = {"search": "× faster than exact", "recall": "recall@10"}.get(measure, f"{measure} (× {baseline})")
            label = f"{size(n)} {system.replace('vecbook ', '')}" if section != "embedding" else system
            rows.append([f"{label}: {what}"] + cells)
    return markdown(header, rows)


if __name__ == "__main__":
    if sys.argv[1] == "--runs":
        print(across_runs(sys.argv[2:]))
        sys.exit()
    machine, figures = load(sys.argv[1:])
    print(f"<!-- machine: {json.dumps(machine)} -->\n")
    print(render(machine, figures))
