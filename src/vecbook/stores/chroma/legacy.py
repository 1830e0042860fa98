"""Reading what earlier vecbook versions wrote: format 1–3 collections.

Formats 1 and 2 kept every node's metadata as JSON (``%j``), which ``filters.py`` reads.
Format 3 dropped ``%j`` where a node's *shape*, registered in the side collection
``{collection}-s``, could rebuild the metadata from its filter keys: the record's
``%s`` names the shape, whose document holds ``{"k": [filter keys], "l": layout}``;
a layout is a list of ``[key, code]`` pairs in order, the code ``s``/``b``/``i``/``f``/``n``
(str, bool, int, float, None) or, for a dict, its own layout. Old filter keys are
segments joined by ``.`` with ``%`` ``$`` ``#`` escaped (keys with dots were not indexed).

Collections of these formats are read and written (new records in format 4's
encoding); their filters are answered by post-filtering (their index differs from
record to record), and ``copy_workspace`` moves one to format 4. ``delete_workspace``
also deletes the side collection.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["side_name", "read_layouts", "rebuild"]


def side_name(collection: str) -> str:
    """The side collection of ``collection`` (``-s`` is no escape a workspace name can contain)."""
    return collection + "-s"


def _old_key(path: tuple[str, ...]) -> str:
    key = ".".join(s.replace("%", "%25").replace("$", "%24").replace("#", "%23") for s in path)
    return "chroma%3Adocument" if key == "chroma:document" else key


def _compile(layout: list, prefix: tuple[str, ...] = ()) -> list[tuple[str, Any, str]]:
    return [
        (key, _compile(code, (*prefix, key)), "d") if isinstance(code, list) else (key, _old_key((*prefix, key)), code)
        for key, code in layout
    ]


def read_layouts(found: dict[str, Any]) -> dict[str, list]:
    """Shape id -> compiled layout, from a ``get`` of a side collection (with documents)."""
    layouts = {}
    for sid, document in zip(found["ids"], found.get("documents") or []):
        layout = json.loads(document).get("l") if document else None
        if layout is not None:
            layouts[sid] = _compile(layout)
    return layouts


def rebuild(stored: dict[str, Any], readers: list[tuple[str, Any, str]]) -> dict[str, Any]:
    """The metadata a compiled layout describes, from its stored filter keys (KeyError if one is missing)."""
    out: dict[str, Any] = {}
    for key, where, code in readers:
        if code == "d":
            out[key] = rebuild(stored, where)
        elif code == "n":
            out[key] = None
        else:
            out[key] = int(stored[where]) if code == "i" else stored[where]
    return out
