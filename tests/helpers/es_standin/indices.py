"""Indices, documents and what a search sees.

Like Elasticsearch, writes go to the live documents at once (get and mget are
realtime), while search, count and points in time see the last *refresh*: a
frozen snapshot. The stand-in never refreshes by itself (real ES does so every
second on searched indices), so a missing refresh shows up as a failing test.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import EsError, bad_request, index_not_found
from .mapping import Mapping, parse_document

SETTINGS = {"number_of_shards", "number_of_replicas", "refresh_interval", "max_result_window", "mapping.exclude_source_vectors", "mapping.total_fields.limit", "hidden"}
_FORBIDDEN = set('\\/*?"<>| ,#')


def check_index_name(name: str) -> None:
    def invalid(why: str) -> EsError:
        return EsError(400, "invalid_index_name_exception", f"Invalid index name [{name}], {why}", index_uuid="_na_", index=name)

    if name in (".", ".."):
        raise invalid("must not be '.' or '..'")
    if name != name.lower():
        raise invalid("must be lowercase")
    if name.startswith(("_", "-", "+")):
        raise invalid("must not start with '_', '-', or '+'")
    bad = sorted(_FORBIDDEN & set(name))
    if bad:
        raise invalid(f"must not contain the following characters [{', '.join(bad)}]")
    if ":" in name:
        raise invalid("must not contain ':'")
    if len(name.encode("utf-8")) > 255:
        raise invalid(f"index name is too long, ({len(name.encode('utf-8'))} > 255)")


def flat_settings(settings: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise bad_request("settings must be an object", type="settings_exception")
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(flat_settings(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    normalized = {}
    for key, value in out.items():
        short = key[len("index.") :] if key.startswith("index.") else key
        if short not in SETTINGS:
            raise bad_request(f"unknown setting [index.{short}] please check that any required plugins are installed, or check the breaking changes documentation for removed settings")
        normalized[f"index.{short}"] = value
    return normalized


@dataclass
class Doc:
    id: str
    source: dict[str, Any]
    values: dict[str, list[Any]]
    vectors: dict[str, np.ndarray]
    version: int
    seq_no: int


class Index:
    def __init__(self, name: str, mapping: Mapping, settings: dict[str, Any]):
        self.name = name
        self.uuid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        self.mapping = mapping
        self.settings = settings
        self.live: dict[str, Doc] = {}
        self.versions: dict[str, int] = {}
        self.seq_no = -1
        self._snapshot = Snapshot(self, [])
        self._dirty = False

    @property
    def exclude_source_vectors(self) -> bool:
        return str(self.settings.get("index.mapping.exclude_source_vectors", True)).lower() != "false"

    @property
    def max_result_window(self) -> int:
        return int(self.settings.get("index.max_result_window", 10_000))

    def write(self, doc_id: str, source: Any, op: str) -> tuple[str, Doc]:
        """Index (or create) one document; returns (result, doc). Raises EsError on a bad document."""
        if op == "create" and doc_id in self.live:
            current = self.live[doc_id].version
            raise EsError(409, "version_conflict_engine_exception", f"[{doc_id}]: version conflict, document already exists (current version [{current}])", index=self.name, index_uuid=self.uuid, shard="0")
        parsed = parse_document(self.mapping, source, doc_id)
        for path, dims in parsed.new_dims.items():
            self.mapping.set_dims(path, dims)
        self.seq_no += 1
        version = self.versions.get(doc_id, 0) + 1
        self.versions[doc_id] = version
        result = "updated" if doc_id in self.live else "created"
        self.live.pop(doc_id, None)  # an update goes to the end, like a new Lucene document
        doc = Doc(doc_id, source, parsed.values, parsed.vectors, version, self.seq_no)
        self.live[doc_id] = doc
        self._dirty = True
        return result, doc

    def remove(self, doc_id: str) -> tuple[str, int, int]:
        self.seq_no += 1
        version = self.versions.get(doc_id, 0) + 1
        if doc_id not in self.live:
            return "not_found", version, self.seq_no
        self.versions[doc_id] = version
        del self.live[doc_id]
        self._dirty = True
        return "deleted", version, self.seq_no

    def refresh(self) -> None:
        if self._dirty:
            self._snapshot = Snapshot(self, list(self.live.values()))
            self._dirty = False

    @property
    def searcher(self) -> Snapshot:
        return self._snapshot


class Snapshot:
    """The documents one refresh made visible, with column indexes built on first use."""

    def __init__(self, index: Index, docs: list[Doc]):
        self.index = index
        self.docs = docs
        self._terms: dict[str, tuple[list[Any], list[np.ndarray], np.ndarray]] = {}
        self._vectors: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
        self.derived: dict[str, Any] = {}  # other per-snapshot caches (text.py: token statistics)

    def __len__(self) -> int:
        return len(self.docs)

    def terms(self, path: str) -> tuple[list[Any], list[np.ndarray], np.ndarray]:
        """(sorted distinct values, doc positions per value, has-a-value mask) of one field."""
        if path not in self._terms:
            postings: dict[Any, list[int]] = {}
            present = np.zeros(len(self.docs), dtype=bool)
            for pos, doc in enumerate(self.docs):
                values = doc.values.get(path)
                if values:
                    present[pos] = True
                    for value in set(values):
                        postings.setdefault(value, []).append(pos)
            keys = sorted(postings)  # keywords by code point (= UTF-8 bytes), numbers numerically
            self._terms[path] = (keys, [np.asarray(postings[k], dtype=np.int64) for k in keys], present)
        return self._terms[path]

    def vectors(self, path: str, dims: int, unit: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(matrix of every doc's vector, zero rows where missing; has-a-vector mask).

        ``unit``: rows normalised, as ES stores vectors of a ``cosine`` field.
        """
        if unit:
            if ("unit", path) not in self._vectors:
                matrix, present = self.vectors(path, dims)
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                self._vectors[("unit", path)] = (matrix / np.where(norms > 0, norms, 1.0), present)
            return self._vectors[("unit", path)]
        if path not in self._vectors:
            matrix = np.zeros((len(self.docs), dims), dtype=np.float32)
            present = np.zeros(len(self.docs), dtype=bool)
            for pos, doc in enumerate(self.docs):
                vector = doc.vectors.get(path)
                if vector is not None:
                    matrix[pos] = vector
                    present[pos] = True
            self._vectors[path] = (matrix, present)
        return self._vectors[path]


@dataclass
class Pit:
    id: str
    index: str
    snapshot: Snapshot
    expires: float


class Cluster:
    """Every index and open point in time."""

    def __init__(self):
        self.indices: dict[str, Index] = {}
        self.pits: dict[str, Pit] = {}

    def get(self, name: str) -> Index:
        index = self.indices.get(name)
        if index is None:
            raise index_not_found(name)
        return index

    def resolve(self, expression: str, ignore_unavailable: bool = False, allow_no_indices: bool = True) -> list[Index]:
        """Indices named by a comma-separated list of names and wildcards (hidden ones excluded)."""
        found: dict[str, Index] = {}
        for part in expression.split(","):
            if part in ("_all", "*"):
                part = "*"
            if "*" in part:
                for name in sorted(self.indices):
                    if fnmatch.fnmatchcase(name, part) and not name.startswith("."):
                        found[name] = self.indices[name]
            elif part in self.indices:
                found[part] = self.indices[part]
            elif not ignore_unavailable:
                raise index_not_found(part)
        if not found and not allow_no_indices:
            raise index_not_found(expression)
        return list(found.values())

    def create(self, name: str, body: dict[str, Any]) -> Index:
        check_index_name(name)
        if name in self.indices:
            index = self.indices[name]
            raise EsError(400, "resource_already_exists_exception", f"index [{name}/{index.uuid}] already exists", index_uuid=index.uuid, index=name)
        settings = flat_settings(body.get("settings", {}))
        mapping = Mapping.parse(body.get("mappings"))
        index = self.indices[name] = Index(name, mapping, settings)
        return index

    def delete(self, name: str) -> None:
        del self.indices[name]
        for pit_id in [p.id for p in self.pits.values() if p.index == name]:
            del self.pits[pit_id]

    # ---- points in time ----------------------------------------------------------------------

    def open_pit(self, index: Index, keep_alive: str) -> str:
        pit_id = base64.urlsafe_b64encode(os.urandom(48)).decode()
        self.pits[pit_id] = Pit(pit_id, index.name, index.searcher, time.monotonic() + parse_time(keep_alive))
        return pit_id

    def pit(self, pit_id: str, keep_alive: str | None) -> Pit:
        self._expire()
        pit = self.pits.get(pit_id)
        if pit is None:
            raise EsError(404, "search_context_missing_exception", f"No search context found for id [{pit_id[:20]}]")
        if keep_alive is not None:
            pit.expires = time.monotonic() + parse_time(keep_alive)
        return pit

    def close_pit(self, pit_id: str) -> bool:
        self._expire()
        return self.pits.pop(pit_id, None) is not None

    def _expire(self) -> None:
        now = time.monotonic()
        for pit_id in [p.id for p in self.pits.values() if p.expires < now]:
            del self.pits[pit_id]


_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "micros": 1e-6, "nanos": 1e-9}


def parse_time(value: Any) -> float:
    match = re.fullmatch(r"(\d+)(d|h|m|s|ms|micros|nanos)", str(value).strip())
    if not match:
        raise bad_request(f"failed to parse setting [keep_alive] with value [{value}] as a time value: unit is missing or unrecognized")
    return int(match.group(1)) * _UNITS[match.group(2)]
