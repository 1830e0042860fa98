"""``python -m vecbook``: build the sample workspace on the embedded default and search it
(``demo``); open the explorer tour in JupyterLab from a run folder (``tour``); check and
rebuild a damaged local store (``repair``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecbook", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the sample workspace (local backend + offline model) and run searches")
    demo.add_argument("--store-dir", default="./vecbook_demo", help="where the local store lives (default: %(default)s)")
    demo.add_argument("--query", default="fast HTTP client with async support")
    demo.add_argument("--filter", default='{"rank": {"lte": 500}, "month": {"gte": "2026-01"}}', help="a portable filter, as JSON")
    demo.add_argument("--top-k", type=int, default=5)
    demo.add_argument("--hash-model", action="store_true", help="use the model-free HashEmbeddingModel (for quick checks)")
    tour = sub.add_parser("tour", help="write a fresh, trusted copy of the explorer tour into a run folder and open it in JupyterLab")
    tour.add_argument("--run-dir", default="./vecbook_demo", help="the folder Lab serves; the tour copy and Lab's settings go there (default: %(default)s)")
    tour.add_argument("--port", type=int, default=8888, help="the port to try first (default: %(default)s)")
    tour.add_argument("--no-lab", action="store_true", help="prepare the run folder and print the command, without starting Lab")
    _add_repair_parser(sub)
    args = parser.parse_args(argv)
    commands = {"demo": _demo, "tour": _tour, "repair": _repair}
    return commands[args.command](args)


def _demo(args) -> int:
    from . import HashEmbeddingModel, LocalVectorStore
    from .datasets import SAMPLE_WORKSPACE, build_sample_workspace, load_pypi_sample

    if args.hash_model:
        model = HashEmbeddingModel(dimensions=256)
    else:
        from .embedding.minilm import LocalEmbeddingModel

        model = LocalEmbeddingModel()
    store = LocalVectorStore(embedding_model=model, store_dir=args.store_dir)
    workspace = SAMPLE_WORKSPACE if not args.hash_model else SAMPLE_WORKSPACE + "_hash"
    total = len(load_pypi_sample())
    have = store.count(workspace) if store.exist_workspace(workspace) else 0
    if have < total:  # the one slow step: say what it is before it starts
        what = "the hashing model" if args.hash_model else "the offline MiniLM model (10-20 s on 2 cores)"
        print(f"embedding {total - have:,} package summaries into {args.store_dir} with {what}; later runs reopen them ...", flush=True)
    started = time.perf_counter()
    count = build_sample_workspace(store, workspace)
    print(f"workspace {workspace!r} in {args.store_dir}: {count} packages ready in {time.perf_counter() - started:.1f} s")
    filter_dict = json.loads(args.filter) if args.filter else None
    for label, flt in (("no filter", None), (f"filter {json.dumps(filter_dict)}", filter_dict)):
        started = time.perf_counter()
        results = store.search(args.query, workspace, top_k=args.top_k, filter_dict=flt)
        took = (time.perf_counter() - started) * 1000
        print(f"\n{args.query!r} — {label} — {len(results)} results in {took:.1f} ms")
        for node in results:
            md = node.metadata
            print(f"  {node.score:.3f}  #{md['rank']:<5} {md['name']:<28} {md.get('month', '-'):<8} {node.content[:70]}")
    store.close()
    return 0


def _tour(args) -> int:
    from .widgets.lab import prepare_lab_run

    run = prepare_lab_run(args.run_dir)
    command = run.command(args.port)
    print(f"explorer tour: a fresh copy at {run.notebook} (the notebook in notebooks/ is left as it is)", flush=True)
    if args.no_lab:
        print(" ".join(command))
        return 0
    print(f"starting JupyterLab (a few seconds): open the URL it prints below, http://127.0.0.1:<port>{run.url_path}?token=...; "
          "Ctrl-C stops it", flush=True)
    os.execv(command[0], command)  # Lab takes over this process: Ctrl-C and exit codes are its own
    return 0  # not reached


# ---- repair: a self-contained subcommand (the local backend's recovery path) ----------------------


def _add_repair_parser(sub) -> None:
    repair = sub.add_parser(
        "repair",
        help="check a local store's workspaces and rebuild damaged ones from what is readable",
        description="Check every file of the workspaces of a local store (LocalVectorStore). A damaged workspace is "
        "rebuilt from its intact snapshot rows and log frames; its damaged files are kept in STORE_DIR/.damaged/. "
        "A healthy workspace is left as it is. Exit status: 0 all healthy or repaired, 1 something could not be done.",
    )
    repair.add_argument("store_dir", help="the local store's folder (store_dir=)")
    repair.add_argument("workspaces", nargs="*", help="workspace ids (default: every workspace in the store)")
    repair.add_argument("--json", action="store_true", help="print one JSON report per workspace")


def _repair(args) -> int:
    from pathlib import Path

    from . import LocalVectorStore, VecbookError

    if not Path(args.store_dir).is_dir():
        print(f"vecbook repair: {args.store_dir} is not a folder", file=sys.stderr)
        return 1
    store = LocalVectorStore(store_dir=args.store_dir)
    status = 0
    try:
        for workspace in args.workspaces or store.list_workspaces():
            try:
                report = store.repair(workspace)
            except VecbookError as exc:
                print(f"{workspace}: could not be repaired: {type(exc).__name__}: {exc}", file=sys.stderr)
                status = 1
                continue
            print(json.dumps(report) if args.json else _repair_summary(report))
    finally:
        store.close()
    return status


def _repair_summary(report: dict) -> str:
    ws = report["workspace"]
    if not report["repaired"]:
        return f"{ws}: healthy, {report['nodes']} nodes"
    lines = [f"{ws}: repaired, {report['nodes']} nodes kept; the damaged files are kept in {report['backup']}"]
    if report["lost_nodes"]:
        lines.append(f"  {report['lost_nodes']} node(s) of the snapshot lost")
    if report["skipped_log_bytes"]:
        lines.append(f"  {report['skipped_log_bytes']} bytes of the log skipped (the writes stored there are lost)")
    lines.extend(f"  - {problem}" for problem in report["problems"])
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
