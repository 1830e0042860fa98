"""A selection of nodes back into the store and into code.

``tag_selection(store, workspace_id, ids, "label", "spam")`` writes a metadata
field on the selected nodes (``store.update_metadata``), so the tag works in
filters and as a map colour at once. ``selection_filter(store, workspace_id, ids)``
gives a portable ``filter_dict`` that selects exactly those nodes, to paste into code.

The filter language addresses metadata, not node ids (docs/filters.md), so a
selection becomes a filter through a metadata field that tells the selected nodes
apart (``{"name": ["flask", "django"]}``); the filter is checked against the store
before it is returned. Where no field does, tag the selection and filter on the tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import FilterError, ValidationError
from ..filters import field_key
from ._collect import collect
from .filter_builder import format_filter
from .introspect import metadata_paths

__all__ = ["selection_code", "selection_filter", "tag_selection"]

# Fields named like these are tried first as the selection's key.
_KEY_NAMES = ("id", "key", "name", "slug", "uuid", "path", "url", "doc_id", "source")
# Most candidate fields checked against the store (each check is one filtered read).
_MAX_CHECKS = 3


def tag_selection(store, workspace_id: str, ids: Iterable[str], label_field: str, value: Any) -> int:
    """Set ``metadata[label_field] = value`` on the nodes ``ids``; returns how many nodes were written.

    Goes through ``store.update_metadata(workspace_id, patch, node_ids=ids)``; the other metadata stays.
    """
    ids = list(dict.fromkeys(str(i) for i in ids))
    if not ids:
        raise ValidationError("select the nodes to tag first (the selection is empty)")
    if not isinstance(label_field, str) or not label_field.strip():
        raise ValidationError(f"label_field must be a non-empty string, got {label_field!r}")
    update = getattr(store, "update_metadata", None)
    if update is None:
        raise NotImplementedError(f"{type(store).__name__} has no update_metadata(): this vecbook cannot write tags back")
    return update(workspace_id, {label_field: value}, node_ids=ids)


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _candidates(metadatas: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Paths holding a scalar on every selected node, distinct across them; key-like names first."""
    flats = [metadata_paths(m) for m in metadatas]
    common = set(flats[0]) if flats else set()
    for flat in flats[1:]:
        common &= set(flat)
    paths = []
    for path in sorted(common):
        values = [flat[path] for flat in flats]
        if all(_scalar(v) for v in values) and len({(type(v).__name__, v) for v in values}) == len(values):
            paths.append(path)
    return sorted(paths, key=lambda p: (p[-1].lower() not in _KEY_NAMES, len(p), p))


def selection_filter(store, workspace_id: str, ids: Iterable[str], key_field: str | Sequence[str] | None = None,
                     max_ids: int = 10_000) -> dict:
    """A portable filter dict matching exactly the nodes ``ids`` (checked against the store).

    ``key_field`` names the metadata field to use (a dotted key or a path); by default the
    first field that tells the selected nodes apart and matches no other node. Raises
    FilterError when no field does (tag the selection and filter on the tag instead).
    """
    ids = list(dict.fromkeys(str(i) for i in ids))
    if not ids:
        raise FilterError("the selection is empty: there is nothing to filter for")
    if len(ids) > max_ids:
        raise FilterError(f"{len(ids):,} nodes are too many to list in a filter (at most {max_ids:,}); "
                          f"tag them with tag_selection() and filter on the tag")
    nodes = store.get(ids, workspace_id)
    missing = set(ids) - {n.unique_id for n in nodes}
    if missing:
        raise FilterError(f"{len(missing)} selected node(s) are no longer in {workspace_id!r}, e.g. {min(missing)!r}")
    by_id = {n.unique_id: n.metadata for n in nodes}
    metadatas = [by_id[i] for i in ids]
    if key_field is not None:
        path = tuple(key_field.split(".")) if isinstance(key_field, str) else tuple(key_field)
        paths = [path]
    else:
        paths = _candidates(metadatas)[:_MAX_CHECKS]
    wanted, tried = set(ids), []
    for path in paths:
        values = [metadata_paths(m).get(path) for m in metadatas]
        if any(not _scalar(v) for v in values):
            tried.append(f"{field_key(path)} is missing or not a single value on some selected nodes")
            continue
        candidate = {field_key(path): list(dict.fromkeys(values))}
        matched = set(collect(store, workspace_id, lambda n: n.unique_id, filter_dict=candidate))
        if matched == wanted:
            return candidate
        tried.append(f"{field_key(path)} also matches {len(matched - wanted):,} node(s) outside the selection")
    why = "; ".join(tried) if tried else "no metadata field holds a distinct value on every selected node"
    raise FilterError(
        f"no metadata field singles out these {len(ids)} node(s) ({why}). The filter language addresses "
        f"metadata, not ids: tag them, tag_selection(store, {workspace_id!r}, ids, 'label', 'mine'), "
        f"then filter with {{'label': 'mine'}}; or read them by id with store.get(ids, {workspace_id!r})")


def selection_code(store, workspace_id: str, ids: Iterable[str], key_field: str | None = None) -> str:
    """A line of Python selecting these nodes: ``filter_dict={...}`` when a field singles them out,
    else ``nodes = store.get([...], workspace_id)``."""
    ids = list(ids)
    try:
        return format_filter(selection_filter(store, workspace_id, ids, key_field=key_field))
    except FilterError:
        return f"nodes = store.get({ids!r}, {workspace_id!r})"
