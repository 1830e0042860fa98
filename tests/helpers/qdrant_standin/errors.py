"""Errors in Qdrant's shape: ``{"status": {"error": "<message>"}, "time": 0.0}`` with Qdrant's HTTP status.

Statuses and message prefixes follow Qdrant's ``StorageError`` (lib/storage/src/
content_manager/errors.rs) and its HTTP mapping (src/actix/helpers.rs): BadInput and
AlreadyExists print "Wrong input: ...", AlreadyExists is a 409, NotFound a 404 "Not
found: ...", BadRequest a 400 "Bad request: ...". Bodies that do not parse are 400
"Format error in JSON body: ...", values out of range 422 "Validation error in JSON
body: ..." (src/actix/mod.rs ``validation_error_handler``).
"""

from __future__ import annotations

from typing import Any


class QdrantError(Exception):
    """An error the stand-in answers with, as Qdrant would."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"status": {"error": self.message}, "time": 0.0}


def not_found(collection: str) -> QdrantError:
    return QdrantError(404, f"Not found: Collection `{collection}` doesn't exist!")


def already_exists(collection: str) -> QdrantError:
    return QdrantError(409, f"Wrong input: Collection `{collection}` already exists!")


def format_error(reason: str) -> QdrantError:
    return QdrantError(400, f"Format error in JSON body: {reason}")


def validation_error(reason: str) -> QdrantError:
    return QdrantError(422, f"Validation error in JSON body: {reason}")


def bad_request(reason: str) -> QdrantError:
    return QdrantError(400, f"Bad request: {reason}")


def unsupported(what: str) -> QdrantError:
    """Something real Qdrant answers but the stand-in does not model: fail loudly."""
    return QdrantError(400, f"Bad request: the Qdrant stand-in does not implement {what}")


def from_engine(exc: ValueError, collection: str | None) -> QdrantError:
    """The server's error for one the local-mode engine raised (all of them are ValueErrors)."""
    message = str(exc)
    if collection is not None and message == f"Collection {collection} not found":
        return not_found(collection)
    if collection is not None and message == f"Collection {collection} already exists":
        return already_exists(collection)
    if " value " in message and "is invalid" in message:  # "limit value 0 is invalid. Must be 1 or larger."
        return validation_error(message)
    if message.startswith("Wrong input: "):
        return QdrantError(400, message)
    return QdrantError(400, f"Wrong input: {message}")
