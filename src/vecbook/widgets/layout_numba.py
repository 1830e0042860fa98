"""Keep umap-learn's compiled numba code on disk, so only the first UMAP in an environment compiles.

pynndescent marks its functions ``cache=True``; umap-learn 0.5 does not, so every
new kernel compiled them again (~20 s of the first UMAP here). Turning numba's
own cache on for those dispatchers before their first call stores the machine
code beside umap's sources (or in ``$NUMBA_CACHE_DIR``); numba checks the source
file's timestamp, so an upgraded umap compiles afresh.
"""

from __future__ import annotations

import os
import sys

__all__ = ["cache_umap_code", "umap_code_cached"]

_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral", "umap.distances", "umap.sparse")
_PROBE = ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch")  # the largest function a fit compiles


def _dispatchers():
    try:
        from numba.core.registry import CPUDispatcher
    except ImportError:  # a stand-in umap without numba
        return
    for name in _MODULES:
        module = sys.modules.get(name)
        for value in vars(module).values() if module is not None else ():
            if isinstance(value, CPUDispatcher):
                yield value


def cache_umap_code() -> int:
    """Turn on numba's disk cache for umap's functions (call after importing umap); returns how many."""
    count = 0
    for dispatcher in _dispatchers():
        if type(dispatcher._cache).__name__ == "NullCache" and not dispatcher.signatures:
            try:
                dispatcher.enable_caching()
                count += 1
            except Exception:  # e.g. no writable cache location: it only compiles as before
                pass
    return count


def umap_code_cached() -> bool | None:
    """Whether umap's main layout function is in numba's disk cache (None: cannot tell)."""
    module = sys.modules.get(_PROBE[0])
    dispatcher = getattr(module, _PROBE[1], None)
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    index = getattr(cache_file, "_index_path", None)
    return None if index is None else os.path.exists(index)
