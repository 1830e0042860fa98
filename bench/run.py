"""The vecbook benchmark suite: one command, tables on stdout, every figure in JSON.

    python bench/run.py [--quick] [--sizes 10k,100k,1M] [--only core,ann,embed,peers] [--json bench/results/NAME.json]
    python bench/run.py --scale 10m [--scale-quantization int8|binary|none] [--scale-ef-construction 64] [--scale-folder DIR [--scale-stop-after S]]

Run it with vecbook's ``ann`` and ``openai`` extras importable (or from a checkout
with ``PYTHONPATH=src:.``). Sections:

- ``core``: exact search of memory and local against a bare numpy matmul +
  argpartition on the same matrix (target ≤ 1.3×); filtered search, selective
  (1 %) and broad (90 %), against unfiltered (target ≤ 2×); insert throughput;
  cold open of the local store in a new process; bytes on disk and in RAM per node.
- ``ann``: index="hnsw": build rate, recall@10 against exact (target ≥ 0.95 on
  clustered data), speed against exact (target ≥ 20×), persisted and reloaded by local.
- ``embed``: OpenAICompatibleEmbeddingModel against the test server with 50 ms
  latency, against the ideal for its batch size and concurrency (target ≤ 1.5×).
- ``peers``: Chroma, Qdrant local mode, LanceDB, sqlite-vec and flowllm 0.1.7 on the
  same data, each in a venv of its own made on first use (see sec_peers.py); sizes capped
  per peer (flowllm at 10k, Chroma and Qdrant at 100k, LanceDB and sqlite-vec at 1M;
  ``--quick``: all at 10k). ``--only core,lancedb,sqlite-vec`` runs vecbook and those two
  peers in one run and prints vecbook local's ratio to each.

``--quick`` takes ~3 minutes (10k and 100k; the first run also installs the
peers' venvs); the full run adds 1M and takes ~26 minutes on 2 cores. Timings
are medians of queries interleaved across the systems compared (so load from
other processes hits them alike) over 3 rounds; brackets show the range of the
round medians.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tests.helpers, for the embedding server

import common  # noqa: E402
import data  # noqa: E402

SECTIONS = ("core", "ann", "embed", "peers")
DIMS = 384


def sizes(text: str) -> list[int]:
    """``10k,100k,1M`` → node counts; ``none`` (or 0) → no sizes."""
    return [n for n in (data.parse_size(s) for s in text.split(",") if s.strip() and s.strip().lower() != "none") if n > 0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k only, fewer queries: a few minutes")
    parser.add_argument("--sizes", help="node counts for core and peers, e.g. 10k,100k,1M")
    parser.add_argument("--only", help=f"comma-separated sections ({', '.join(SECTIONS)}) or peer names")
    parser.add_argument("--ann-sizes", help="memory+hnsw sizes on clustered data (default 100k)")
    parser.add_argument("--ann-local-sizes", help="local+hnsw sizes, persisted and reopened (default 1M; quick: 10k; 'none' to skip)")
    parser.add_argument("--ann-iid-sizes", help="memory+hnsw sizes on i.i.d. data, the worst case (default 100k; quick: 10k)")
    parser.add_argument("--queries", type=int, help="queries per round for timed searches")
    parser.add_argument("--json", help="where to write the figures (default bench/results/<date>.json)")
    parser.add_argument("--scale", help="only the large quantized local store (bench_ann_scale.py), e.g. 10m: build, cold open, recall, ms/query, RAM, disk")
    parser.add_argument("--scale-quantization", default="int8", choices=["int8", "binary", "none"])
    parser.add_argument("--scale-ef-construction", type=int, default=0, help="index_params['ef_construction'] of the scale run (default: the store's)")
    parser.add_argument("--scale-folder", help="where to build it (default a temporary folder, removed afterwards); a build stopped there goes on")
    parser.add_argument("--scale-stop-after", type=float, default=0, help="stop the build after this many seconds, closed and whole (needs --scale-folder to go on)")
    args = parser.parse_args(argv)
    if args.scale:
        return scale(args)

    only = set(args.only.split(",")) if args.only else None
    peer_filter = None if only is None or "peers" in only else {o for o in only if o not in SECTIONS}
    wanted = {s for s in SECTIONS if only is None or s in only or (s == "peers" and peer_filter)}
    core_sizes = sizes(args.sizes) if args.sizes else ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    ann_sizes = sizes(args.ann_sizes) if args.ann_sizes else [100_000]
    ann_local = sizes(args.ann_local_sizes) if args.ann_local_sizes else ([10_000] if args.quick else [1_000_000])
    ann_iid = sizes(args.ann_iid_sizes) if args.ann_iid_sizes else ([10_000] if args.quick else [100_000])

    results = common.Results()
    started = time.time()
    info = common.machine()
    print(f"vecbook {info['vecbook']} | numpy {info['numpy']} | python {info['python']} | {info['cpu']} x{info['cores']} | {info['ram_gib']} GiB | load {info['load_at_start']:.1f}")
    loads = [info["load_at_start"]]

    def section_sizes() -> list[tuple[int, str]]:
        todo = set()
        if "core" in wanted or "peers" in wanted:
            todo |= {(n, "clustered") for n in core_sizes}
        if "ann" in wanted:
            todo |= {(n, "clustered") for n in ann_sizes + ann_local} | {(n, "iid") for n in ann_iid}
        return sorted(todo)

    if "embed" in wanted:
        import sec_embed

        print("\n== embedding throughput (test server, 50 ms latency)")
        sec_embed.run(results, texts=1000 if args.quick else 2000, repeat=2 if args.quick else 3)

    for n, kind in section_sizes():
        queries = data.queries(200, DIMS, kind)
        vectors = data.vectors(n, DIMS, kind)
        count = args.queries or (20 if n >= 1_000_000 else 30 if args.quick else 50)
        loads.append(common.load_average())
        print(f"\n== n={common.size(n)} {kind} vectors (load {loads[-1]:.1f})")
        if kind == "clustered" and "core" in wanted and n in core_sizes:
            import sec_core

            sec_core.run(n, vectors, queries, results, count, args.quick)
        if "ann" in wanted and ((kind == "clustered" and n in ann_sizes) or (kind == "iid" and n in ann_iid)):
            import sec_ann

            sec_ann.run(n, vectors, queries, kind, results, count, local=False)
        if "ann" in wanted and kind == "clustered" and n in ann_local:
            import sec_ann

            sec_ann.run(n, vectors, queries, kind, results, count, local=True)
        if kind == "clustered" and "peers" in wanted and n in core_sizes:
            import sec_peers

            sec_peers.run(n, vectors, queries, results, peer_filter, {p: 10_000 for p in sec_peers.PEERS} if args.quick else {})
            sec_peers.versus(results, n)
        del vectors

    loads.append(common.load_average())
    info["load_samples"] = loads
    info["minutes"] = round((time.time() - started) / 60, 1)
    target = Path(args.json) if args.json else common.BENCH_DIR / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"machine": info, "args": vars(args), "records": [r.as_dict() for r in results.records]}, indent=1, default=float))
    misses = [r for r in results.records if r.ok is False]
    print(f"\n{len(results.records)} figures in {info['minutes']} min, load {min(loads):.1f}-{max(loads):.1f}; written to {target}")
    for r in misses:
        print("  MISSED: " + common.format_row(r))
    return 0


def scale(args) -> int:
    """``--scale N``: bench_ann_scale.py in a process of its own (10M × 384 needs the RAM to itself)."""
    import subprocess
    import tempfile

    folder = args.scale_folder or tempfile.mkdtemp(prefix="vecbook-bench-scale-")
    cmd = [sys.executable, str(Path(__file__).with_name("bench_ann_scale.py")), "--n", args.scale, "--folder", folder, "--quantization", args.scale_quantization,
           "--ef-construction", str(args.scale_ef_construction), "--stop-after", str(args.scale_stop_after)]
    try:
        done = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, text=True)  # progress on stderr as it comes
    finally:
        if not args.scale_folder:
            common.rmtree(folder)
    print(done.stdout)
    if done.returncode == 0 and args.json:
        Path(args.json).write_text(done.stdout)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
