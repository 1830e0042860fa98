"""Events between the widgets' plain-Python states and their views; errors as one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Observable", "describe_error"]


def describe_error(exc: BaseException) -> str:
    """``"FilterError: ..."``: the type tells a backend outage from a bad filter."""
    return f"{type(exc).__name__}: {exc}"


class Observable:
    """Minimal callbacks: ``on("results", fn)``; views and links subscribe, the state emits."""

    def on(self, event: str, callback: Callable[..., Any]) -> None:
        self.__dict__.setdefault("_callbacks", {}).setdefault(event, []).append(callback)

    def _emit(self, event: str, *args: Any) -> None:
        for callback in list(self.__dict__.get("_callbacks", {}).get(event, ())):
            callback(*args)
