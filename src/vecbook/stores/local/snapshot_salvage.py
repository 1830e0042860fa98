"""Salvaging a snapshot (``snapshot_files.py`` describes its files): the rows whose bytes are intact (``repair``'s reader)."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import local as tunables
from ..engine.batch import NodeBatch
from .files import META

__all__ = ["Salvaged", "salvage_snapshot"]


@dataclass
class Salvaged:
    """What :func:`salvage_snapshot` could read: the intact rows, and what was lost."""

    batch: NodeBatch
    problems: list[str] = field(default_factory=list)
    lost_rows: int = 0
    lost_ids: list[str] = field(default_factory=list)


def salvage_snapshot(prefix: Path, info: dict[str, Any] | None, dimensions: int | None) -> Salvaged:
    """The rows of a snapshot whose JSON line and vector chunks are intact (``repair``'s reader).

    ``info`` None: no checksums are known (``meta.json`` lost, or format 1); rows are
    kept where the files parse and hold their vectors.
    """
    json_path, f32_path = prefix.with_suffix(".json"), prefix.with_suffix(".f32")
    lines = json_path.read_bytes().split(b"\n")
    raw = f32_path.read_bytes()
    if info is not None:
        raw = raw[: info["f32"]["size"]]  # what a later generation appended is not this snapshot's
    if lines[-1] == b"":
        lines.pop()
    problems: list[str] = []
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if isinstance(header, dict) and "ids" in header:
        return _salvage_legacy(header, raw, dimensions, problems, prefix)
    if not isinstance(header, dict):
        problems.append(f"{json_path}: the header line is damaged")
        header = {}
    chunk_rows = header.get("chunk_rows") or tunables.SNAPSHOT_LINE_ROWS
    rows_total = header.get("rows") if isinstance(header.get("rows"), int) else None
    parts = [_salvage_line(line, number, info["json"]["crcs"] if info else None, json_path, problems)
             for number, line in enumerate(lines[1:], start=1)]
    dims = dimensions or header.get("dimensions") or _width(parts, len(raw))
    if not dims and raw:
        problems.append(f"{f32_path}: the width of its vectors is unknown ({META} and the header line are damaged); its rows are dropped")
        parts = []
    good_chunk = _intact_chunks(raw, info["f32"] if info else None)
    if not all(good_chunk):
        problems.append(f"{f32_path}: {good_chunk.count(False)} chunk(s) of vectors fail their checksum")
    row_bytes = dims * 4
    holes = _holes(info, header)
    kept: list[tuple[str, Any, Any, int]] = []
    lost_ids: list[str] = []
    lost_rows = 0
    for number, part in enumerate(parts, start=1):
        first_row = (number - 1) * chunk_rows
        if part is None:
            lost_rows += chunk_rows if rows_total is None else max(0, min(chunk_rows, rows_total - first_row))
            continue
        for i, row_values in enumerate(zip(*part)):
            row = first_row + i
            if row in holes or not row_values[0]:
                continue  # deleted before the snapshot was written (an empty id: a hole even if meta.json is lost)
            if _row_intact(row, row_bytes, len(raw), info["f32"]["chunk"] if info else 1 << 62, good_chunk):
                kept.append((*row_values, row))
            else:
                lost_ids.append(row_values[0])
    if lost_ids:
        problems.append(f"{f32_path}: the vectors of {len(lost_ids)} node(s) are damaged or missing; those nodes are dropped")
    kept = _last_of_each_id(kept)
    rows = np.array([k[3] for k in kept], dtype=np.int64)
    matrix = np.frombuffer(raw, dtype="<f4", count=(len(raw) // row_bytes) * dims if row_bytes else 0).reshape(-1, dims) if row_bytes else None
    vectors = matrix[rows].copy() if matrix is not None else np.zeros((len(kept), dims), dtype=np.float32)
    batch = NodeBatch([k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept], vectors)
    return Salvaged(batch, problems, lost_rows + len(lost_ids), lost_ids)


def _width(parts: list[tuple | None], size: int) -> int:
    """The vectors' width when nothing records it: the vector file's size over the rows of the lines,
    if every line parsed (0 if not known)."""
    rows = sum(len(part[0]) for part in parts if part is not None)
    if None in parts or not rows or size % (4 * rows):
        return 0
    return size // (4 * rows)


def _last_of_each_id(kept: list[tuple[str, Any, Any, int]]) -> list[tuple[str, Any, Any, int]]:
    """One row per id, its last: a node written again moves to a later row, leaving its old one a
    hole that may keep its id (a hole can go unrecognised if meta.json and the header line are both lost)."""
    last = {row_values[0]: i for i, row_values in enumerate(kept)}
    return kept if len(last) == len(kept) else [kept[i] for i in sorted(last.values())]


def _holes(info: dict[str, Any] | None, header: dict[str, Any]) -> set[int]:
    """The snapshot's holes (rows deleted before it was written): from ``meta.json``, or, without it, its header line."""
    listed = info.get("dead", []) if info else header.get("dead", [])
    return {row for row in listed if type(row) is int} if isinstance(listed, list) else set()


def _intact_chunks(raw: bytes, expected: dict[str, Any] | None) -> list[bool]:
    """For each checksummed chunk of vectors: whether it is intact (all True without checksums)."""
    if expected is None:
        return [True]  # one chunk as big as any file
    chunk, view = expected["chunk"], memoryview(raw)
    return [zlib.crc32(view[n * chunk : (n + 1) * chunk]) == crc for n, crc in enumerate(expected["crcs"])]


def _row_intact(row: int, row_bytes: int, size: int, chunk: int, good_chunk: list[bool]) -> bool:
    start, stop = row * row_bytes, (row + 1) * row_bytes
    if stop > size:
        return False
    if row_bytes == 0:
        return True
    last = (stop - 1) // chunk
    return last < len(good_chunk) and all(good_chunk[start // chunk : last + 1])


def _salvage_line(line: bytes, number: int, sums: list[int] | None, path: Path, problems: list[str]) -> tuple | None:
    """(ids, contents, metadatas) of one JSON line, or None (noted in ``problems``) if it is damaged."""
    if sums is not None and (number >= len(sums) or zlib.crc32(line) != sums[number]):
        problems.append(f"{path}: line {number + 1} fails its checksum; its rows are dropped")
        return None
    try:
        ids, contents, metadatas = json.loads(line)
        if not (isinstance(ids, list) and len(ids) == len(contents) == len(metadatas)):
            raise ValueError("columns of different lengths")
        return ids, contents, metadatas
    except (ValueError, TypeError) as exc:
        problems.append(f"{path}: line {number + 1} cannot be parsed ({exc}); its rows are dropped")
        return None


def _salvage_legacy(columns: dict, raw: bytes, dimensions: int | None, problems: list[str], prefix: Path) -> Salvaged:
    """A format-1 snapshot: all of it if its parts agree, else nothing (it has no checksums to tell more)."""
    try:
        ids, contents, metadatas = columns["ids"], columns["contents"], columns["metadatas"]
        dims = dimensions or columns.get("dimensions") or 0
        n = len(ids)
        if not (len(contents) == len(metadatas) == n and len(raw) == n * dims * 4):
            raise ValueError(f"{n} ids, {len(contents)} contents, {len(metadatas)} metadata, {len(raw)} bytes of vectors")
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"snapshot {prefix} is inconsistent ({exc}); it is dropped")
        return Salvaged(NodeBatch([], [], [], np.zeros((0, dimensions or 0), dtype=np.float32)), problems)
    vectors = np.frombuffer(raw, dtype="<f4").reshape(n, dims).copy()
    return Salvaged(NodeBatch(ids, contents, metadatas, vectors), problems)
