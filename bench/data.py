"""Synthetic data for the benchmarks: vectors, metadata and queries, reproducible by seed.

Two kinds of vectors, both normalised:

- ``clustered``: a mixture of Gaussians (like real embeddings, which bunch by topic);
  the realistic case for an approximate index, and the one its targets refer to.
- ``iid``: independent Gaussian coordinates; every point is nearly equidistant
  from every other, the pathological worst case for any approximate index.

Queries come from the same distribution as the data but are not data points.
Metadata gives the filters something to select: ``bucket`` (1 % per value),
``category`` (10 %), ``rank`` (0..n-1, for ranges) and ``month`` (ISO strings).
"""

from __future__ import annotations

import numpy as np

KINDS = ("clustered", "iid")
SELECTIVE = {"bucket": 7}  # 1 % of nodes



def vectors(n: int, dims: int, kind: str = "clustered", seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """``n`` unit float32 vectors; made in chunks so 1M × 384 needs no float64 temporaries."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dims), dtype=np.float32)
    centers = _centers(dims, seed) if kind == "clustered" else None
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = rng.standard_normal((stop - start, dims), dtype=np.float32)
        if centers is not None:
            block *= 0.6 / np.sqrt(dims)  # within-cluster spread: cos to the centre ~0.85
            block += centers[rng.integers(0, len(centers), stop - start)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def queries(count: int, dims: int, kind: str = "clustered", seed: int = 0) -> np.ndarray:
    """Queries from the data's distribution (same centres, other draws)."""
    rng = np.random.default_rng(seed + 10_000)
    if kind != "clustered":
        q = rng.standard_normal((count, dims), dtype=np.float32)
    else:
        centers = _centers(dims, seed)
        q = rng.standard_normal((count, dims), dtype=np.float32) * np.float32(0.6 / np.sqrt(dims))
        q += centers[rng.integers(0, len(centers), count)]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _centers(dims: int, seed: int, count: int = 2048) -> np.ndarray:
    c = np.random.default_rng(seed + 1).standard_normal((count, dims), dtype=np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def metadata(n: int) -> list[dict]:
    return [
        {"bucket": i % 100, "category": f"c{i % 10}", "rank": i, "month": f"20{10 + i % 16}-{1 + i % 12:02d}"}
        for i in range(n)
    ]


def ids(n: int) -> list[str]:
    return [f"id{i}" for i in range(n)]


def contents(n: int) -> list[str]:
    return [f"text {i}" for i in range(n)]


def size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def broad(n: int) -> dict:
    """A range filter that keeps 90 % of ``n`` nodes (every peer can express a range)."""
    return {"rank": {"gte": n // 10}}


# ---- the backend-overhead benchmarks (bench_chroma/qdrant/es.py) ----------------------------

TERM = {"category": "c3"}  # 10 % of nodes


def band(n: int) -> dict:
    """A numeric range that keeps 50 % of ``n`` nodes (``rank`` in [n/10, 6n/10))."""
    return {"rank": {"gte": n // 10, "lt": 6 * n // 10}}
