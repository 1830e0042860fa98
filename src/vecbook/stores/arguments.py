"""The gate every public store method passes: a closed store, and keyword arguments it does not take.

Public methods take exactly the arguments they document. A misspelt or foreign
keyword (``filter=`` for ``filter_dict=``, LangChain's spelling) raises
``TypeError`` naming it, with the nearest accepted name, instead of being ignored.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import StoreClosedError

__all__ = ["public", "check_open"]

F = TypeVar("F", bound=Callable[..., Any])

# Spellings other libraries use for vecbook's arguments.
_ALIASES = {
    "filter": "filter_dict",
    "filters": "filter_dict",
    "where": "filter_dict",
    "query_filter": "filter_dict",
    "k": "top_k",
    "n_results": "top_k",
    "limit": "top_k",
    "ids": "node_ids",
    "id": "node_ids",
    "workspace": "workspace_id",
    "collection_name": "workspace_id",
    "index_name": "workspace_id",
    "dims": "dimensions",
    "dimension": "dimensions",
}


def public(method: F) -> F:
    """Wrap a public ``async_`` method: refuse a closed store and name unknown keyword arguments."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        check_open(self)
        try:
            return method(self, *args, **kwargs)
        except TypeError as exc:
            try:
                inspect.signature(method).bind(self, *args, **kwargs)
            except TypeError:
                raise _argument_error(method, exc, kwargs) from None
            raise  # raised by the method itself, not by its arguments

    return call  # type: ignore[return-value]


def check_open(store: Any) -> None:
    """Raise StoreClosedError if ``store`` was closed (or cannot be used in this process)."""
    if store._closed:
        why = store._closed if isinstance(store._closed, str) else "is closed"
        raise StoreClosedError(f"this {type(store).__name__} {why}; create a new store to go on")


def _argument_error(method: Callable[..., Any], exc: TypeError, kwargs: dict) -> TypeError:
    name = method.__name__.removeprefix("async_")
    params = [p for p in inspect.signature(method).parameters if p != "self"]
    unknown = [key for key in kwargs if key not in params]
    if not unknown:
        return TypeError(f"{name}(): {_reason(exc)}")
    hints = []
    for key in unknown:
        near = _ALIASES.get(key) if _ALIASES.get(key) in params else None
        near = near or next(iter(difflib.get_close_matches(key, params, n=1)), None)
        hints.append(f"{key!r}" + (f" (did you mean {near!r}?)" if near else ""))
    return TypeError(f"{name}() got unexpected keyword argument(s) {', '.join(hints)}; it takes: {', '.join(params)}")


def _reason(exc: TypeError) -> str:
    text = str(exc)
    return text.split("() ", 1)[1] if "() " in text else text
