"""The JSONL dump format, compatible with flowllm/ReMe dumps.

``{dir}/{workspace_id}.jsonl`` holds one JSON object per line with the keys
``unique_id, workspace_id, content, metadata, vector``. Vectors are written as
the exact decimal value of each float32, so a dump and a load give back
bit-identical vectors. Files are written to a temporary name, fsynced and
renamed, so a crash mid-dump leaves any previous dump intact.

A dump may start with a header line that describes it, one JSON object with the
single key ``vecbook_dump``::

    {"vecbook_dump": {"format": 1, "vecbook_version": "0.1.0", "workspace_id": "notes",
                      "embedding_model": "all-MiniLM-L6-v2", "dimensions": 384, "distance": "cosine"}}

``embedding_model`` is the store's model name only (never a key, URL or other
setting of the model), or null. ``dump_workspace`` writes it unless told
``header=False`` (a file in the guide's exact format, for readers that take every
line as a node, such as flowllm); ``load_workspace`` checks it
(:func:`check_header`) and reads files without one, flowllm/ReMe dumps included,
as they are.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ._file_writes import write_all
from .errors import DumpFormatError, DumpMismatchError, DumpNotFoundError, ValidationError
from .node import VectorNode

__all__ = [
    "dump_path",
    "find_dump",
    "node_to_dict",
    "AtomicJsonlWriter",
    "read_nodes",
    "read_dump",
    "read_header",
    "make_header",
    "check_header",
    "fsync_dir",
    "HEADER_KEY",
]

NODE_KEYS = ("unique_id", "workspace_id", "content", "metadata", "vector")
HEADER_KEY = "vecbook_dump"
HEADER_FORMAT = 1


def make_header(workspace_id: str, dimensions: int | None, distance: str | None, embedding_model: Any) -> dict[str, Any]:
    """The header line of a dump: what produced the vectors (the model's name only, never its settings)."""
    from . import __version__

    name = getattr(embedding_model, "model_name", None) or (type(embedding_model).__name__ if embedding_model is not None else None)
    return {
        HEADER_KEY: {
            "format": HEADER_FORMAT,
            "vecbook_version": __version__,
            "workspace_id": workspace_id,
            "embedding_model": name,
            "dimensions": dimensions,
            "distance": distance,
        }
    }


def _header_of(record: Any) -> dict[str, Any] | None:
    if isinstance(record, dict) and len(record) == 1 and isinstance(record.get(HEADER_KEY), dict):
        return record[HEADER_KEY]
    return None


def check_header(header: dict[str, Any], source: Path, embedding_model: Any) -> None:
    """Raise DumpMismatchError if the dump's vectors came from another model or have another length
    than ``embedding_model`` (the loading store's; None: nothing to compare) makes."""
    if embedding_model is None:
        return
    problems = []
    dims, model_dims = header.get("dimensions"), getattr(embedding_model, "dimensions", None)
    if dims is not None and model_dims is not None and dims != model_dims:
        problems.append(f"its vectors have {dims} dimensions, the store's model makes {model_dims}")
    name, model_name = header.get("embedding_model"), getattr(embedding_model, "model_name", None)
    if name and model_name and name != model_name:
        problems.append(f"its vectors come from {name!r}, the store embeds with {model_name!r}")
    if problems:
        raise DumpMismatchError(
            f"{source}: {'; '.join(problems)}, so text searches would compare unrelated vectors; "
            "load it with a store using that model, or pass check_header=False to load it anyway"
        )


def dump_path(directory: Path, workspace_id: str) -> Path:
    return Path(directory) / f"{workspace_id}.jsonl"


def find_dump(path: Path, workspace_id: str, only_named: bool = False) -> Path:
    """The dump file to load into ``workspace_id`` from ``path``.

    ``path`` may be the file itself; or a folder holding ``{workspace_id}.jsonl``; or,
    unless ``only_named``, a folder holding exactly one dump, whatever its name (a
    dump of one workspace loaded under another name). Raises DumpNotFoundError
    naming what was looked for, and listing the candidates if there are several.
    """
    path = Path(path)
    if path.is_file():
        return path
    named = dump_path(path, workspace_id)
    if named.is_file():
        return named
    if only_named:
        raise DumpNotFoundError(f"no dump file at {named}")
    if not path.is_dir():
        raise DumpNotFoundError(f"no dump at {path}: neither a dump file nor a folder")
    candidates = sorted(p for p in path.glob("*.jsonl") if p.is_file() and not p.name.startswith("."))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise DumpNotFoundError(f"no dump in {path}: expected {named.name} or a single .jsonl file")
    names = ", ".join(p.name for p in candidates[:20]) + (", …" if len(candidates) > 20 else "")
    raise DumpNotFoundError(
        f"{path} holds {len(candidates)} dumps and none is named {named.name}: {names}; pass the file itself as path="
    )


def node_to_dict(node: VectorNode) -> dict[str, Any]:
    return {
        "unique_id": node.unique_id,
        "workspace_id": node.workspace_id,
        "content": node.content,
        "metadata": node.metadata,
        "vector": None if node.vector is None else node.vector.tolist(),
    }


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicJsonlWriter:
    """Write lines to a temp file beside ``target``; on success fsync and rename over it."""

    def __init__(self, target: Path):
        self.target = Path(target)
        self.count = 0
        self._file = None

    def __enter__(self) -> AtomicJsonlWriter:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.target.name}.", suffix=".tmp", dir=self.target.parent)
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, "wb", buffering=0)  # lines go by write_all: a megabyte per call
        return self

    def write_header(self, header: dict[str, Any]) -> None:
        """The first line: a dump header (:func:`make_header`); not counted as a node."""
        write_all(self._file.fileno(), (json.dumps(header, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8"))

    def write_nodes(self, nodes: Iterable[VectorNode], callback_fn: Callable[[VectorNode], dict] | None = None) -> None:
        lines = []
        for node in nodes:
            record = callback_fn(node) if callback_fn else node_to_dict(node)
            if not isinstance(record, dict):
                raise ValidationError(f"callback_fn must return a dict, got {type(record).__name__}")
            lines.append(json.dumps(record, ensure_ascii=False, allow_nan=False))
        if lines:
            write_all(self._file.fileno(), ("\n".join(lines) + "\n").encode("utf-8"))
            self.count += len(lines)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                os.fsync(self._file.fileno())
            self._file.close()
            if exc_type is None:
                os.replace(self._tmp, self.target)
                fsync_dir(self.target.parent)
        finally:
            if self._tmp.exists():
                self._tmp.unlink()


def read_nodes(path: Path, callback_fn: Callable[[dict], VectorNode] | None = None) -> list[VectorNode]:
    """Read and check a whole dump; a bad line raises DumpFormatError naming file and line."""
    return read_dump(path, callback_fn)[1]


def read_header(path: Path) -> dict[str, Any] | None:
    """The header of a dump file (see the module docstring), or None if it has none."""
    path = Path(path)
    if not path.is_file():
        raise DumpNotFoundError(f"no dump file at {path}")
    with path.open("r", encoding="utf-8", newline="\n") as lines:
        for line in lines:
            if line.strip():
                try:
                    return _header_of(json.loads(line))
                except json.JSONDecodeError:
                    return None
    return None


def read_dump(path: Path, callback_fn: Callable[[dict], VectorNode] | None = None) -> tuple[dict[str, Any] | None, list[VectorNode]]:
    """The header (None if the file has none) and the nodes of a whole dump, checked;
    a bad line raises DumpFormatError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DumpNotFoundError(f"no dump file at {path}")
    nodes: list[VectorNode] = []
    header = None
    first = True
    with path.open("r", encoding="utf-8", newline="\n") as lines:
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {lineno}"
            if not line.endswith("\n") and _truncated(line):
                raise DumpFormatError(f"{where}: the file ends in the middle of a record (truncated dump?)")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DumpFormatError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if first:
                first = False
                header = _header_of(record)
                if header is not None:
                    continue
            nodes.append(_to_node(record, callback_fn, where))
    return header, nodes


def _truncated(line: str) -> bool:
    try:
        json.loads(line)
        return False
    except json.JSONDecodeError:
        return True


def _to_node(record: Any, callback_fn: Callable[[dict], VectorNode] | None, where: str) -> VectorNode:
    if not isinstance(record, dict):
        raise DumpFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    try:
        node = callback_fn(record) if callback_fn else VectorNode(**{k: record[k] for k in NODE_KEYS if k in record})
    except DumpFormatError:
        raise
    except Exception as exc:
        raise DumpFormatError(f"{where}: not a valid node: {exc}") from None
    if not isinstance(node, VectorNode):
        raise DumpFormatError(f"{where}: callback_fn returned {type(node).__name__}, not a VectorNode")
    return node
