"""Colours of the map: distinct categorical colours with a legend, numbers on linear/log/quantile scales."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CATEGORY_COLORS", "MISSING", "OTHER", "SCALES", "NUMERIC_MAP", "category_colors", "scaled"]

# Kelly's / Glasbey-style colours of maximal contrast (the first ones the most distinct); no two greys.
CATEGORY_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                   "#bcbd22", "#393b79", "#f0027f", "#00a087"]
MISSING = "#d9d9d9"  # pale: a point with no value for the field
OTHER = "#7f7f7f"  # mid grey: the categories past the twelfth, together
SCALES = ("linear", "log", "quantile")
NUMERIC_MAP = "viridis"


def category_colors(labels: list[str]) -> list[str]:
    """One colour per label: the palette in order, grey for "other", pale for "(missing)"."""
    out, i = [], 0
    for label in labels:
        if label == "(missing)":
            out.append(MISSING)
        elif label == "other":
            out.append(OTHER)
        else:
            out.append(CATEGORY_COLORS[i % len(CATEGORY_COLORS)])
            i += 1
    return out


def scaled(values: np.ndarray, scale: str) -> dict[str, Any]:
    """Numbers mapped to [0, 1] on ``scale``; NaN (missing) stays NaN.

    ``log``: log10 of the value (of ``value - min + 1`` when some values are <= 0),
    so a long-tailed count spreads over the colour map; ``quantile``: the fraction
    of values at or below each value, so every colour holds about as many points.
    Returns ``{"t": float32 array, "ticks": [(position, label), ...]}``.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    v = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(v)
    t = np.full(len(v), np.nan)
    if not ok.any():
        return {"t": t.astype(np.float32), "ticks": []}
    lo, hi = float(v[ok].min()), float(v[ok].max())
    if scale == "quantile":
        ranked = np.sort(v[ok])
        t[ok] = np.searchsorted(ranked, v[ok], side="right") / len(ranked)
        qs = [0.0, 0.25, 0.5, 0.75, 1.0]
        return {"t": t.astype(np.float32), "ticks": [(q, _fmt(float(np.quantile(ranked, q)))) for q in qs]}
    if scale == "log":
        shift = 0.0 if lo > 0 else 1.0 - lo
        w = np.log10(v[ok] + shift)
        a, b = float(w.min()), float(w.max())
        t[ok] = (w - a) / (b - a) if b > a else 0.5
        ticks = [(0.0, _fmt(lo)), (1.0, _fmt(hi))]
        mid = 10 ** ((a + b) / 2) - shift
        ticks.insert(1, (0.5, _fmt(mid)))
        return {"t": t.astype(np.float32), "ticks": ticks}
    t[ok] = (v[ok] - lo) / (hi - lo) if hi > lo else 0.5
    return {"t": t.astype(np.float32), "ticks": [(0.0, _fmt(lo)), (0.5, _fmt((lo + hi) / 2)), (1.0, _fmt(hi))]}


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 or float(x).is_integer() else f"{x:.3g}"
