"""Similarity scores: one definition for every backend (higher is better).

- ``cosine``: cos(q, x) in [-1, 1]; 0 when either vector is all zeros.
- ``dot``: q · x.
- ``euclidean``: −‖q − x‖ (0 for an exact match, negative otherwise).

Backends rank candidates however they like; the final score of every result is
recomputed here in float64 from the stored float32 vectors, so the same data
gives the same scores on every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import ValidationError

__all__ = ["DISTANCES", "SAFE_SQ_NORM", "normalize_distance", "exact_scores", "fast_scores"]

DISTANCES = ("cosine", "dot", "euclidean")
_ALIASES = {"cos": "cosine", "ip": "dot", "inner_product": "dot", "dot_product": "dot", "euclid": "euclidean", "l2": "euclidean"}


def normalize_distance(distance: Any) -> str:
    """Accept our names, common aliases and qdrant's ``Distance`` enum members."""
    name = getattr(distance, "value", distance)
    if isinstance(name, str):
        key = name.strip().lower()
        key = _ALIASES.get(key, key)
        if key in DISTANCES:
            return key
    raise ValidationError(f"unknown distance {distance!r}; choose one of {', '.join(DISTANCES)}")


def exact_scores(query: np.ndarray, vectors: np.ndarray, distance: str) -> np.ndarray:
    """Scores of ``vectors`` (k × d) against one ``query`` (d), in float64."""
    q = np.asarray(query, dtype=np.float64)
    x = np.asarray(vectors, dtype=np.float64).reshape(-1, q.shape[0])
    if distance == "euclidean":
        diff = x - q
        return -np.sqrt(np.einsum("ij,ij->i", diff, diff))
    dots = x @ q
    if distance == "dot":
        return dots
    # float32 inputs cannot overflow these float64 products (|x|² ≤ 384 · 3.4e38²)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x) * float(q @ q))
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)


# Rows and queries whose squared norms stay below this cannot overflow float32 scores:
# |q·x| <= |q||x| < 1e36, far below float32's 3.4e38.
SAFE_SQ_NORM = 1e36


def fast_scores(
    queries: np.ndarray,
    vectors: np.ndarray,
    sq_norms: np.ndarray,
    distance: str,
    inv_norms: np.ndarray | None = None,
    safe: bool = False,
) -> np.ndarray:
    """Ranking scores of every row for each query (q × n), monotone in the exact score per query.

    ``sq_norms`` holds the squared norm of each row of ``vectors``; for cosine,
    ``inv_norms`` (float32 1/‖row‖, 0 for zero rows) may be given, and then the
    score is q·x/‖x‖: the query's own norm does not change its ranking. Computed
    in float32; if huge components overflow it, the ranking is redone in float64.
    ``safe=True`` says every squared norm is below ``SAFE_SQ_NORM`` (no overflow: no check).
    """
    if safe and distance == "cosine" and inv_norms is not None:
        scores = queries @ vectors.T
        scores *= inv_norms[None, :]
        return scores
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if distance == "cosine" and inv_norms is not None:
            scores = queries @ vectors.T
            scores *= inv_norms[None, :]
        else:
            scores = _fast_scores(queries, vectors, sq_norms, distance)
    if np.isfinite(scores).all():
        return scores
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        scores = _fast_scores(queries.astype(np.float64), vectors.astype(np.float64), sq_norms.astype(np.float64), distance)
    return np.nan_to_num(scores, nan=-np.inf, posinf=np.finfo(np.float64).max, neginf=-np.finfo(np.float64).max)


def _fast_scores(queries: np.ndarray, vectors: np.ndarray, sq_norms: np.ndarray, distance: str) -> np.ndarray:
    dots = queries @ vectors.T
    if distance == "dot":
        return dots
    q_sq = np.einsum("ij,ij->i", queries, queries)[:, None]
    if distance == "euclidean":
        dots *= 2.0
        dots -= sq_norms[None, :]
        dots -= q_sq
        return dots  # = −‖q − x‖², same order as −‖q − x‖
    denom = np.sqrt(sq_norms)[None, :] * np.sqrt(q_sq)
    denom[denom == 0] = np.inf  # zero vectors score 0
    dots /= denom
    return dots
