"""The JSONL dump format, compatible with flowllm/ReMe dumps.

``{dir}/{workspace_id}.jsonl`` holds one JSON object per line with the keys
``unique_id, workspace_id, content, metadata, vector``. Vectors are written as
the exact decimal value of each float32, so a dump and a load give back
bit-identical vectors. Files are written to a temporary name, fsynced and
renamed, so a crash mid-dump leaves any previous dump intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import DumpFormatError, DumpNotFoundError, ValidationError
from .node import VectorNode

__all__ = ["dump_path", "find_dump", "node_to_dict", "AtomicJsonlWriter", "read_nodes", "fsync_dir"]

NODE_KEYS = ("unique_id", "workspace_id", "content", "metadata", "vector")


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
        self._file = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        return self

    def write_nodes(self, nodes: Iterable[VectorNode], callback_fn: Callable[[VectorNode], dict] | None = None) -> None:
        lines = []
        for node in nodes:
            record = callback_fn(node) if callback_fn else node_to_dict(node)
            if not isinstance(record, dict):
                raise ValidationError(f"callback_fn must return a dict, got {type(record).__name__}")
            lines.append(json.dumps(record, ensure_ascii=False, allow_nan=False))
        if lines:
            self._file.write("\n".join(lines) + "\n")
            self.count += len(lines)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._file.flush()
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
    path = Path(path)
    if not path.is_file():
        raise DumpNotFoundError(f"no dump file at {path}")
    nodes: list[VectorNode] = []
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
            nodes.append(_to_node(record, callback_fn, where))
    return nodes


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
