"""Exact copies of float32 vectors as base64 text, for engines that change the vectors they index.

Chroma and Qdrant normalise the vectors of cosine collections, and Elasticsearch's
``dense_vector`` is not returned bit for bit: where vecbook must give back exactly
what was inserted, it stores the little-endian float32 bytes as base64 text beside
the record. Decoding a page of records decodes every copy into one array, so each
node's vector is a writable row of it, at the cost of one numpy call per page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

import numpy as np

__all__ = ["decode_copies", "decode_copy", "encode_copy", "unit_rows"]


def encode_copy(vector: np.ndarray) -> str:
    """The base64 text of a vector's float32 little-endian bytes."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_copy(text: str) -> np.ndarray:
    """One vector back from :func:`encode_copy` (a writable float32 array)."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def decode_copies(texts: Sequence[str | None]) -> list[np.ndarray | None]:
    """:func:`decode_copy` of each text (``None`` stays ``None``), in one numpy call when they agree in length."""
    out: list[np.ndarray | None] = [None] * len(texts)
    present = [i for i, t in enumerate(texts) if isinstance(t, str)]
    if not present:
        return out
    try:
        raw = [binascii.a2b_base64(texts[i]) for i in present]  # type: ignore[arg-type]
    except (binascii.Error, ValueError):
        raw = None
    if raw is None or len({len(r) for r in raw}) != 1 or not raw[0] or len(raw[0]) % 4:
        for i in present:  # lengths differ (records written by others): one at a time
            out[i] = decode_copy(texts[i])  # type: ignore[arg-type]
        return out
    rows = np.frombuffer(b"".join(raw), dtype="<f4").astype(np.float32).reshape(len(raw), -1)
    for i, row in zip(present, rows):
        out[i] = row
    return out


def unit_rows(vectors: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Each row scaled to unit length unless its squared norm is within ``tolerance`` of 1
    (or 0), and the mask of rows that were changed. Norms are computed in float64."""
    wide = vectors.astype(np.float64)
    sq_norms = np.einsum("ij,ij->i", wide, wide)
    changed = (np.abs(sq_norms - 1.0) > tolerance) & (sq_norms > 0)
    if not changed.any():
        return vectors, changed
    out = vectors.copy()
    out[changed] = (wide[changed] / np.sqrt(sq_norms[changed])[:, None]).astype(np.float32)
    return out, changed
