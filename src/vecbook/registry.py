"""Backends by name, imported only when asked for."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import MissingDependencyError, ValidationError

__all__ = ["BACKENDS", "backend_class", "create_vector_store"]

# name -> (module, class, the extra that installs its client, the client's import name)
BACKENDS: dict[str, tuple[str, str, str | None, str | None]] = {
    "memory": ("vecbook.stores.memory", "MemoryVectorStore", None, None),
    "local": ("vecbook.stores.local", "LocalVectorStore", None, None),
    "chroma": ("vecbook.stores.chroma", "ChromaVectorStore", "chroma", "chromadb"),
    "qdrant": ("vecbook.stores.qdrant", "QdrantVectorStore", "qdrant", "qdrant_client"),
    "elasticsearch": ("vecbook.stores.elasticsearch", "EsVectorStore", "elasticsearch", "elasticsearch"),
}


def backend_class(backend: str) -> type:
    """The store class for a backend name; a missing extra raises MissingDependencyError."""
    try:
        module_name, class_name, extra, client = BACKENDS[backend]
    except (KeyError, TypeError):
        raise ValidationError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}") from None
    if client is not None:
        try:
            importlib.import_module(client)
        except ImportError:
            raise MissingDependencyError(client, extra, feature=f"the {backend!r} backend") from None
    return getattr(importlib.import_module(module_name), class_name)


def create_vector_store(backend: str = "local", **kwargs: Any):
    """Create a store by backend name: memory, local, chroma, qdrant or elasticsearch."""
    return backend_class(backend)(**kwargs)
