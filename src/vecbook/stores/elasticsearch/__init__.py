"""The ``elasticsearch`` backend: one Elasticsearch index per workspace."""

from .documents import index_name, workspace_of
from .store import EsVectorStore

__all__ = ["EsVectorStore", "index_name", "workspace_of"]
