"""Notebook explorer widgets (the ``notebook`` extra: ipywidgets, jupyter-scatter, pandas, umap-learn).

``explore(store)`` opens the linked explorer; ``WorkspaceBrowser``,
``SearchPanel`` and ``EmbeddingMap`` work alone too. Each keeps its state in a
plain-Python object (``.state``) that tests and scripts can drive without a
browser. Importing this package needs none of the extras; using a widget
without them raises ``MissingDependencyError``.
"""

from __future__ import annotations

import importlib

from .introspect import FieldInfo, WorkspaceSchema, introspect_workspace

__all__ = [
    "explore",
    "Explorer",
    "WorkspaceBrowser",
    "SearchPanel",
    "EmbeddingMap",
    "BrowserState",
    "SearchState",
    "MapState",
    "FilterBuilder",
    "FilterClause",
    "introspect_workspace",
    "WorkspaceSchema",
    "FieldInfo",
    "cluster_labels",
    "Clusters",
    "tag_selection",
    "selection_filter",
]

_LAZY = {
    "explore": "explorer",
    "Explorer": "explorer",
    "WorkspaceBrowser": "browser",
    "SearchPanel": "search",
    "EmbeddingMap": "map",
    "BrowserState": "state",
    "SearchState": "state",
    "MapState": "map_state",
    "FilterBuilder": "filter_builder",
    "FilterClause": "filter_builder",
    "cluster_labels": "clusters",
    "Clusters": "clusters",
    "tag_selection": "tagging",
    "selection_filter": "tagging",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
