"""The ``memory`` backend: workspaces in RAM."""

from .store import MemoryVectorStore

__all__ = ["MemoryVectorStore"]
