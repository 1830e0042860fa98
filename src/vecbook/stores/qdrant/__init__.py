"""The ``qdrant`` backend: workspaces as Qdrant collections, on a server or in local mode."""

from .points import collection_name, point_id, workspace_of
from .store import QdrantVectorStore

__all__ = ["QdrantVectorStore", "collection_name", "workspace_of", "point_id"]
