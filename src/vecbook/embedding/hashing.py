"""HashEmbeddingModel: deterministic, model-free vectors for tests and demos."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from .base import BaseEmbeddingModel

__all__ = ["HashEmbeddingModel"]

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbeddingModel(BaseEmbeddingModel):
    """Feature hashing of words and word bigrams into ``dimensions`` signed buckets.

    The same text always gives the same unit vector, in any process; texts that
    share words get a positive cosine. No model, no network: for tests and demos.
    """

    def __init__(self, dimensions: int = 64, **kwargs):
        kwargs.setdefault("cache_size", 0)  # hashing is cheaper than a cache lookup
        kwargs.setdefault("max_concurrency", 1)
        super().__init__(model_name=f"hash-{dimensions}", dimensions=dimensions, **kwargs)

    def _features(self, text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        dims = self.dimensions
        out = np.zeros((len(texts), dims), dtype=np.float32)
        for row, text in enumerate(texts):
            features = self._features(text) or [""]
            for feature in features:
                digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % dims
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=4).digest(), "little") % dims] = 1.0
            else:
                out[row] /= norm
        return out

    async def async_embed_batch(self, texts: list[str]) -> np.ndarray:
        return self.embed_batch(texts)  # microseconds of work: no thread hop
