"""The ``chroma`` backend: workspaces as Chroma collections, embedded or on a server."""

from .layout import collection_name, workspace_of
from .store import ChromaVectorStore

__all__ = ["ChromaVectorStore", "collection_name", "workspace_of"]
