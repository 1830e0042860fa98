"""Errors in Elasticsearch's own shape: ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``."""

from __future__ import annotations

from typing import Any


class EsError(Exception):
    """An error the stand-in answers with, as Elasticsearch would."""

    def __init__(self, status: int, type: str, reason: str, **extra: Any):
        super().__init__(f"{status} {type}: {reason}")
        self.status = status
        self.type = type
        self.reason = reason
        self.extra = extra

    def cause(self) -> dict[str, Any]:
        return {"type": self.type, "reason": self.reason, **self.extra}

    def body(self) -> dict[str, Any]:
        cause = self.cause()
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


def bad_request(reason: str, type: str = "illegal_argument_exception", **extra: Any) -> EsError:
    return EsError(400, type, reason, **extra)


def parsing(reason: str) -> EsError:
    return EsError(400, "parsing_exception", reason)


def x_content(reason: str) -> EsError:
    return EsError(400, "x_content_parse_exception", reason)


def index_not_found(name: str) -> EsError:
    return EsError(404, "index_not_found_exception", f"no such index [{name}]", index=name, **{"resource.type": "index_or_alias", "resource.id": name})


def unsupported(what: str) -> EsError:
    """Something real Elasticsearch accepts but the stand-in does not model: fail loudly."""
    return EsError(400, "standin_unsupported_exception", f"the Elasticsearch stand-in does not implement {what}")


def check_keys(obj: Any, allowed: set[str] | frozenset[str], where: str, error=x_content) -> dict[str, Any]:
    """``obj`` must be an object whose keys are all in ``allowed``."""
    if not isinstance(obj, dict):
        raise error(f"[{where}] expected an object, got {type(obj).__name__}")
    for key in obj:
        if key not in allowed:
            raise error(f"[{where}] unknown field [{key}]")
    return obj
