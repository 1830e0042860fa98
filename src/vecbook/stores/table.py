"""The old import path of :mod:`vecbook.stores.engine.table` (scripts written before the stores/ layout use it)."""

from .engine.table import NodeTable

__all__ = ["NodeTable"]
