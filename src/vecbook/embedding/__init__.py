"""Embedding models: the base class and the models vecbook ships."""

from .base import BaseEmbeddingModel
from .hashing import HashEmbeddingModel

__all__ = ["BaseEmbeddingModel", "HashEmbeddingModel", "OpenAICompatibleEmbeddingModel", "LocalEmbeddingModel"]


def __getattr__(name: str):
    # Imported lazily: each pulls in an optional extra.
    if name == "OpenAICompatibleEmbeddingModel":
        from .openai import OpenAICompatibleEmbeddingModel

        return OpenAICompatibleEmbeddingModel
    if name == "LocalEmbeddingModel":
        from .minilm import LocalEmbeddingModel

        return LocalEmbeddingModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
