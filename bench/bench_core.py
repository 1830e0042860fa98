"""Speed of the memory and local backends against the physical limit (now part of the suite).

    python bench/bench_core.py [--n 100000]

Runs ``bench/run.py --only core --sizes N``: exact search against a bare numpy
matmul + argpartition on the same matrix, filtered search, inserts, cold open
and bytes per node. See ``bench/run.py`` for the whole suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=384, help="kept for compatibility; the suite uses 384")
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    sys.exit(run.main(["--only", "core", "--sizes", str(args.n), "--queries", str(args.queries)]))
