"""vecbook: vector stores from Jupyter.

One API (:class:`BaseVectorStore`) over five backends chosen by name, with
embedding models, a portable filter language and JSONL dumps.
"""

from .embedding import BaseEmbeddingModel, HashEmbeddingModel
from .errors import (
    BackendUnavailableError,
    CorruptedFileError,
    DimensionMismatchError,
    DumpFormatError,
    DumpMismatchError,
    DumpNotFoundError,
    EmbeddingError,
    FilterError,
    InvalidWorkspaceIdError,
    LockTimeoutError,
    MissingDependencyError,
    PartialWriteError,
    RetryableEmbeddingError,
    StoreClosedError,
    StoreCorruptedError,
    StoreInUseError,
    StorageError,
    SymlinkError,
    ValidationError,
    VecbookError,
    WorkspaceExistsError,
    WorkspaceNotFoundError,
)
from .columns import NodeColumns
from .node import VectorNode
from .registry import create_vector_store
from .stores.base import BaseVectorStore
from .stores.introspection import FieldRange, FieldSummary, MetadataField, ValueCount
from .stores.local import LocalVectorStore
from .stores.memory import MemoryVectorStore

__version__ = "0.1.0"

_LAZY = {
    "OpenAICompatibleEmbeddingModel": "vecbook.embedding.openai",
    "LocalEmbeddingModel": "vecbook.embedding.minilm",
    "ChromaVectorStore": "vecbook.stores.chroma",
    "QdrantVectorStore": "vecbook.stores.qdrant",
    "EsVectorStore": "vecbook.stores.elasticsearch",
}

__all__ = [
    "VectorNode",
    "NodeColumns",
    "BaseVectorStore",
    "MemoryVectorStore",
    "LocalVectorStore",
    "create_vector_store",
    "BaseEmbeddingModel",
    "HashEmbeddingModel",
    "VecbookError",
    "WorkspaceNotFoundError",
    "WorkspaceExistsError",
    "InvalidWorkspaceIdError",
    "ValidationError",
    "DimensionMismatchError",
    "FilterError",
    "DumpFormatError",
    "DumpNotFoundError",
    "DumpMismatchError",
    "MetadataField",
    "ValueCount",
    "FieldRange",
    "FieldSummary",
    "EmbeddingError",
    "RetryableEmbeddingError",
    "BackendUnavailableError",
    "MissingDependencyError",
    "PartialWriteError",
    "StoreClosedError",
    "StoreInUseError",
    "StoreCorruptedError",
    "CorruptedFileError",
    "StorageError",
    "SymlinkError",
    "LockTimeoutError",
    *_LAZY,
]


def __getattr__(name: str):
    # Classes whose modules need an optional extra are imported on first use.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vecbook' has no attribute {name!r}")
