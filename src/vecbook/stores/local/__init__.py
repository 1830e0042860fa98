"""The ``local`` backend: workspaces in plain files under a directory, no server."""

from .store import LocalVectorStore

__all__ = ["LocalVectorStore"]
