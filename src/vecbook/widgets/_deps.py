"""Lazy imports of the ``notebook`` extra, with an install hint when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import MissingDependencyError

# import name -> PyPI name
_PACKAGES = {"ipywidgets": "ipywidgets", "pandas": "pandas", "umap": "umap-learn", "anywidget": "anywidget", "jscatter": "jupyter-scatter", "sklearn": "scikit-learn"}


def require(module: str, feature: str = "") -> ModuleType:
    """Import ``module`` (ipywidgets, jscatter, pandas, umap or a submodule) or raise MissingDependencyError."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # a broken install of something else: show the real error
        raise MissingDependencyError(_PACKAGES.get(top, top), "notebook", feature=feature or f"vecbook.widgets ({module})") from exc


def widgets() -> ModuleType:
    return require("ipywidgets", "the vecbook notebook widgets")


def pandas() -> ModuleType:
    return require("pandas", "vecbook.widgets tables")


def jscatter() -> ModuleType:
    """jupyter-scatter (an anywidget over regl-scatterplot), the map's renderer."""
    require("anywidget", "EmbeddingMap (jupyter-scatter)")
    return require("jscatter", "EmbeddingMap")

