"""``python -m vecbook``: build the sample workspace on the embedded default and search it."""

from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args(argv)
    return _demo(args)


def _demo(args) -> int:
    from . import HashEmbeddingModel, LocalVectorStore
    from .datasets import SAMPLE_WORKSPACE, build_sample_workspace

    if args.hash_model:
        model = HashEmbeddingModel(dimensions=256)
    else:
        from .embedding.minilm import LocalEmbeddingModel

        model = LocalEmbeddingModel()
    store = LocalVectorStore(embedding_model=model, store_dir=args.store_dir)
    workspace = SAMPLE_WORKSPACE if not args.hash_model else SAMPLE_WORKSPACE + "_hash"
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


if __name__ == "__main__":
    sys.exit(main())
